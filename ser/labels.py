"""The six emotion classes and how other corpora's emotions map onto them.

The order is a contract: it is the output order of the original project's published checkpoint,
so its state dict loads as is. Never reorder.
"""

from __future__ import annotations

LABELS: tuple[str, ...] = ("marah", "jijik", "takut", "bahagia", "netral", "sedih")
LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))

ENGLISH: dict[str, str] = {
    "marah": "anger",
    "jijik": "disgust",
    "takut": "fear",
    "bahagia": "happiness",
    "netral": "neutral",
    "sedih": "sadness",
}

# RAVDESS emotion code -> (RAVDESS name, our label or None where the six classes have no match).
RAVDESS_EMOTIONS: dict[int, tuple[str, str | None]] = {
    1: ("neutral", "netral"),
    2: ("calm", None),
    3: ("happy", "bahagia"),
    4: ("sad", "sedih"),
    5: ("angry", "marah"),
    6: ("fearful", "takut"),
    7: ("disgust", "jijik"),
    8: ("surprised", None),
}
RAVDESS_UNMAPPED: tuple[str, ...] = ("calm", "surprised")

# Intensity words used in the Indonesian Kaggle file names.
KAGGLE_INTENSITIES: tuple[str, ...] = ("rendah", "sedang", "tinggi", "no_data", "tidak_ditentukan")


def label_id(label: str) -> int:
    """The class id of ``label``; a clear error for anything outside the six classes."""
    try:
        return LABEL2ID[label]
    except KeyError:
        raise ValueError(f"unknown label {label!r}; expected one of {', '.join(LABELS)}") from None
