"""A training run's extra test sets (``extra_test.NAME``), built from the ``conf/dataset/*.yaml``
description that ``evaluate.py dataset=NAME`` reads too, so a corpus is described once."""

from __future__ import annotations

from typing import Any

import lightning as L

from ser.data.datamodule import RavdessDataModule


def extra_test_datamodule(key: str, description: Any, batch_size: int,
                          num_workers: int) -> L.LightningDataModule:
    """The test-only datamodule of a ``conf/dataset/*.yaml`` description (an ``extra_test`` set).

    The same files describe a corpus to ``evaluate.py dataset=NAME`` and to a training run's
    ``extra_test.NAME`` (``defaults: - /dataset@extra_test.ravdess: ravdess``), so a corpus is
    described once; batching follows the training data's evaluation batches.
    """
    name = description.get("name")
    if name != "ravdess":
        raise ValueError(f"extra_test.{key}: dataset {name!r} cannot be a training run's extra test set "
                         "(only ravdess: the Indonesian test split is already scored, and "
                         "kaggle_test has no labels); use evaluate.py dataset=NAME")
    if description.get("noise_snr_db") is not None:
        raise ValueError(f"extra_test.{key}.noise_snr_db: an evaluate.py option (noisy repeats of "
                         "the set); set it to null here")
    return RavdessDataModule(description["root"], actors=description["actors"],
                             batch_size=batch_size, num_workers=num_workers)


__all__ = ["extra_test_datamodule"]
