"""Prediction history behind ``ser serve``: one record per answered request, in SQLite by
default or PostgreSQL for several servers, with the uploads optionally kept by content hash."""
