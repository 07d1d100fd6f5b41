"""Text to speech with espeak-ng, called through ctypes, for the synthetic corpora.

Why espeak-ng: it speaks Indonesian and English, and the PyPI package ``espeakng-loader`` ships the
library and its voice data, so ``pip install ser[synth]`` is all it takes (no system package, no
download at run time). It is a formant synthesiser whose pitch, range, rate, pauses and voice
quality (breath, jitter, roughness, formant scaling) can all be set per utterance: enough to give
every speaker its own voice and every emotion its own prosody.

Licence: espeak-ng is GPL-3.0-or-later; ``espeakng-loader`` (MIT) redistributes its binary. The
toolkit (MIT) neither ships nor links it at build time: it is an optional extra loaded at run time
by ``ser synth`` only, and the audio it writes is not covered by the GPL. Whoever redistributes a
bundle that contains the library (an image, a frozen app) must meet the GPL for that part.

espeak-ng keeps its state per process, so one :class:`Espeak` per process; the synthetic corpus
writer gives each worker process its own.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import multiprocessing.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
# espeak_PARAMETER
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


class TTSUnavailable(RuntimeError):
    """espeak-ng cannot be loaded: the ``synth`` extra is not installed or its library is broken."""


@dataclass(frozen=True)
class Voice:
    """One utterance's voice: an espeak language plus the variant settings (see espeak-ng's
    docs/voices.md) that make a speaker, and the emotion's changes to them."""

    language: str  # espeak voice, e.g. "id" or "en-us"
    gender: str  # male | female
    pitch_hz: tuple[float, float]  # the variant's pitch base and top, Hz
    formant_scale: tuple[float, ...]  # frequency factor (percent) of formants 0..8
    breath: int  # aspiration noise on the higher formants, 0..~40
    roughness: int  # 0..7: irregular pulses (creak)
    voicing: int  # voiced source strength, percent
    consonants: int  # consonant strength, percent
    klatt: int  # 0: espeak's own source (keeps state between utterances); 1-6: Klatt sources

    def variant_text(self, name: str) -> str:
        lines = ["language variant", f"name {name}", f"gender {self.gender}",
                 f"pitch {int(round(self.pitch_hz[0]))} {int(round(self.pitch_hz[1]))}"]
        lines += [f"formant {i} {int(round(f))} 100 100" for i, f in enumerate(self.formant_scale)]
        # espeak-ng's flutter (default 64) keeps a phase from one utterance to the next, so the
        # same call would give other samples: off; tremor is added afterwards
        # (ser.data.synthetic.rendering).
        lines.append("flutter 0")
        lines += [f"breath {' '.join(str(self.breath if i > 1 else 0) for i in range(8))}",
                  f"roughness {self.roughness}",
                  f"voicing {self.voicing}", f"consonants {self.consonants} {self.consonants}"]
        lines.append(f"klatt {self.klatt}")  # always: a variant without it keeps the last one's
        return "\n".join(lines) + "\n"


def _data_overlay(data: Path, into: Path) -> Path:
    """A copy of espeak's data folder made of symlinks, with an empty folder for our variants."""
    root = into / "espeak-ng-data"
    root.mkdir()
    for entry in data.iterdir():
        if entry.name != "voices":
            (root / entry.name).symlink_to(entry)
    (root / "voices").mkdir()
    for entry in (data / "voices").iterdir():
        if entry.name != "!v":
            (root / "voices" / entry.name).symlink_to(entry)
    (root / "voices" / "!v").mkdir()
    return root


class Espeak:
    """The espeak-ng library of ``espeakng-loader`` in synchronous mode: ``speak`` returns samples."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise TTSUnavailable(
                "writing synthetic speech needs espeak-ng: pip install 'ser[synth]' "
                "(the espeakng-loader package ships the library and its voices)") from exc
        try:
            self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise TTSUnavailable(f"cannot load {espeakng_loader.get_library_path()}: {exc}") from exc
        self._tmp = Path(tempfile.mkdtemp(prefix="ser-espeak-"))
        # removed at exit: atexit in the main process, multiprocessing's finalizers in workers
        # (pool workers leave through os._exit, which skips atexit)
        atexit.register(shutil.rmtree, self._tmp, True)
        multiprocessing.util.Finalize(None, shutil.rmtree, args=(self._tmp, True), exitpriority=0)
        self._data = _data_overlay(Path(espeakng_loader.get_data_path()), self._tmp)
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept alive as long as the library may call it
        self._initialise()
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"))
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self._libc.srand.argtypes = [ctypes.c_uint]
        self._count = 0

    def _initialise(self) -> None:
        self.sample_rate = int(self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                                           str(self._data).encode(), 0))
        if self.sample_rate <= 0:
            raise TTSUnavailable(f"espeak-ng failed to initialise with data at {self._data}")
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n: int, _events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        return 0

    def speak(self, text: str, voice: Voice, *, rate_wpm: float, pitch: float, pitch_range: float,
              word_gap: float = 0.0, volume: float = 100.0, seed: int = 1) -> np.ndarray:
        """``text`` in ``voice`` as float32 samples at :attr:`sample_rate`.

        ``pitch`` and ``pitch_range`` are espeak's 0-100 scales on top of the variant's Hz;
        ``word_gap`` is seconds of extra pause between words. ``seed`` seeds espeak-ng's noise
        (its own generator and libc's ``rand``), so the same call gives the same samples.
        """
        self._count += 1
        name = f"v{os.getpid()}_{self._count}"  # a new name: espeak reloads the variant
        (self._data / "voices" / "!v" / name).write_text(voice.variant_text(name))
        try:
            if self._lib.espeak_SetVoiceByName(f"{voice.language}+{name}".encode()) != 0:
                raise RuntimeError(f"espeak-ng has no voice {voice.language!r}")
            for param, value in ((_RATE, rate_wpm), (_PITCH, pitch), (_RANGE, pitch_range),
                                 (_WORDGAP, word_gap * 100), (_VOLUME, volume)):
                self._lib.espeak_SetParameter(param, int(round(value)), 0)
            self._chunks = []
            self._lib.espeak_ng_SetRandSeed(seed)
            self._libc.srand(seed)
            data = text.encode("utf-8")
            err = self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                         None, None)
            if err != 0 or self._lib.espeak_Synchronize() != 0:
                raise RuntimeError(f"espeak-ng failed to speak {text!r} (error {err})")
        finally:
            (self._data / "voices" / "!v" / name).unlink(missing_ok=True)
        if not self._chunks:
            raise RuntimeError(f"espeak-ng returned no audio for {text!r}")
        return np.concatenate(self._chunks).astype(np.float32) / 32768.0

    def close(self) -> None:
        self._lib.espeak_Terminate()
        shutil.rmtree(self._tmp, ignore_errors=True)


_ENGINE: Espeak | None = None


def engine() -> Espeak:
    """This process's espeak-ng (made on first use)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Espeak()
    return _ENGINE
