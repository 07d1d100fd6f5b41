"""The Indonesian Kaggle speech-emotion corpus: file index, metadata from names, validation.

Layout of the competition ``speech-emotion-recognition-dl-genap-2024-2025``::

    ROOT/train.csv   columns id,label        ROOT/train/<id>
    ROOT/test.csv    column  id              ROOT/test/<id>

The ``label`` column is the truth. Training file names carry metadata,
``{source}_{id5}_{emotion}_{intensity}.wav`` (e.g. ``2_07910_jijik_tinggi.wav``); it is parsed for
speakers (:mod:`ser.data.speakers`: exact, from CREMA-D's file list and RAVDESS's id blocks) and
reports, and :func:`validate_kaggle` checks that the name agrees with the label. A name that does
not parse is allowed: its metadata is None, its speaker is unknown (it forms a speaker of its own
in a speaker split), and validation reports it as a warning (the row is used with its CSV label).

Ids are paths relative to ``ROOT/train`` or ``ROOT/test``; an id that leaves its folder (``..``,
an absolute path) is refused as ``unsafe_path``, so a CSV can never make the toolkit read
elsewhere.

:func:`load_kaggle` returns only rows that can be used (file present, one of the six labels for
train, first of duplicated ids) and logs how many it left out; :func:`validate_kaggle` lists every
problem, each with what to fix, so one run of ``ser inspect`` shows them all.

Where each part lives: ``index`` (:func:`load_kaggle`, :func:`validate_kaggle`), ``names`` (what
a file name says), ``paths`` (ids confined to their folder), ``reading`` (one split's CSV and
folder), ``row_checks`` (the problems of each row).
"""

from ser.data.kaggle.index import COLUMNS, SPLITS, load_kaggle, validate_kaggle
from ser.data.kaggle.names import KaggleName, parse_kaggle_name, speaker_of
from ser.data.kaggle.paths import safe_id
from ser.data.kaggle.reading import COMPETITION
from ser.data.problems import Problem

__all__ = ["COLUMNS", "COMPETITION", "SPLITS", "KaggleName", "Problem", "load_kaggle",
           "parse_kaggle_name", "safe_id", "speaker_of", "validate_kaggle"]
