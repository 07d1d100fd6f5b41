"""``ser inspect``: what a corpus folder holds and what is wrong with it, before any training.

Recognises the two layouts the project reads — Kaggle (train.csv/test.csv with train/ and test/)
and RAVDESS (Actor_XX folders, in the root or one level down) — and reports exact file counts per
class, intensity, sample rate and channel count, durations, and every problem found, plus a
class-distribution chart. Audio is described from the file headers only (no decoding), on a
thread pool, so 8,500 files take seconds; a file whose header cannot be read is a problem with its
reason, never the end of the report. (Header reads do not catch damage inside the audio data;
training and evaluation report such files when they decode them.)

``fatal`` means the corpus is unusable as it is: the root is missing, the layout is not one of the
two, or not a single indexed file has a readable header. Problems alone, even errors, are not fatal:
the loaders leave the affected rows out and go on, and the report lists them so they can be fixed.

Where each part lives: ``run`` (:func:`inspect_corpus`, the figure), ``layouts`` (the tables and
problems of each layout), ``headers`` (what the audio headers say: :func:`audio_table` for
notebooks), ``report`` (:class:`InspectReport`), ``text`` (the report as text). Layout detection
and header reads are :mod:`ser.data.corpora`'s.
"""

from ser.corpus_report.headers import AUDIO_COLUMNS, audio_table, summarise_audio
from ser.corpus_report.layouts import speaker_tables
from ser.corpus_report.report import AudioSummary, InspectReport, Part
from ser.corpus_report.run import FIGURE_NAME, inspect_corpus
from ser.data.corpora import KAGGLE, RAVDESS, detect_layout

__all__ = ["AUDIO_COLUMNS", "FIGURE_NAME", "KAGGLE", "RAVDESS", "AudioSummary", "InspectReport",
           "Part", "audio_table", "detect_layout", "inspect_corpus", "speaker_tables",
           "summarise_audio"]
