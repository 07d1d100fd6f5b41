"""Synthetic speech-emotion corpora in the Kaggle and RAVDESS layouts, spoken by espeak-ng.

Why: the real corpora cannot be downloaded on the machines this project is built on (DESIGN.md §3),
yet tests, the offline demo and the benchmarks need files that look like them (the same folder
layouts, names and speakers, mixed sample rates, a few stereo files) and that hold speech whose
emotion a model can learn and carry from one language to another.

The speech is text to speech (:mod:`ser.data.tts`): Indonesian sentences for the Kaggle layout and
RAVDESS's two English sentences for the RAVDESS layout. Every speaker is its own espeak-ng voice
(pitch register, vocal-tract length, breathiness, jitter, speaking rate, synthesiser source) made
from its speaker id, and the speakers are the real ones of each file name: a source-1 Kaggle id is
the CREMA-D actor of that line of CREMA-D's file list, a source-2 id or a RAVDESS actor folder the
RAVDESS actor (:mod:`ser.data.speakers`), with their sex. So a speaker-disjoint split of the
synthetic data is as meaningful as on the real data. Each emotion is a set of prosodic deviations
from neutral (:data:`PROSODY`: pitch level and range, rate, pauses, loudness, voice quality, final
intonation, spectral tilt) scaled by the clip's intensity and the speaker's expressiveness, with
per-clip variation so that the classes overlap. What carries over from one layout to the other is
prosody: the languages, sentences and room noise differ.

Every file is rendered from its own random stream, seeded by (seed, layout, file key) (espeak-ng's
own noise too, through libc's ``srand``), so the same seed gives byte-identical files whatever the
size, the order of writing or the number of workers. Writing is atomic: a corpus is built in a
temporary folder under a lock and moved into place when complete, so concurrent runs asking for
the same corpus (two demos started together) wait for one another instead of clashing.

The modules, one job each: :mod:`.prosody` (what makes an emotion), :mod:`.languages` (language,
sentences and room of each layout), :mod:`.voices` (the speakers), :mod:`.seeds` (the random
streams), :mod:`.effects` (noise, tilt, tremor), :mod:`.rendering` (one clip from its
:class:`ClipSpec`), :mod:`.profiles` (the sizes), :mod:`.layouts` (the files of each layout),
:mod:`.writer` (:func:`write_synthetic_corpora`).
"""

from ser.data.synthetic.layouts import KaggleItem, kaggle_catalogue
from ser.data.synthetic.profiles import PROFILES, SIZES, SizeProfile
from ser.data.synthetic.prosody import PROSODY, Prosody
from ser.data.synthetic.rendering import ClipSpec, render_clip
from ser.data.synthetic.voices import Speaker, make_speaker
from ser.data.synthetic.writer import LOCK, MARKER, VERSION, write_synthetic_corpora

__all__ = ["LOCK", "MARKER", "PROFILES", "PROSODY", "SIZES", "VERSION", "ClipSpec", "KaggleItem",
           "Prosody", "SizeProfile", "Speaker", "kaggle_catalogue", "make_speaker", "render_clip",
           "write_synthetic_corpora"]
