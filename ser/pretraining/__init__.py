"""Label-free pretraining of the tiny backbone (a warm start for the offline demo)."""
