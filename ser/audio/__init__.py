"""Audio input: any readable file (or bytes) in, 16 kHz mono float32 out, or a named error.

Everything that decodes audio in the project goes through :func:`load_audio`, so that a broken
file fails the same way, with the same words, in training, evaluation, prediction and serving.
soundfile (libsndfile) decodes wav, flac, ogg and mp3 from the file's content, not its extension;
soxr resamples (torchaudio's CPU wheel is not available here, see DESIGN.md §3).

Decoding is bounded before it starts: the header's sample rate, channel count and length are
checked against :class:`AudioLimits` (defaults suit speech: 8-192 kHz, at most 8 channels, at
most 10 minutes decoded at once), so a small upload that claims hours of 8-channel audio, or a
100 Hz file that resampling would blow up 160-fold, is refused with a named error instead of
costing gigabytes. The data is then read block by block, mixed down and resampled as it
streams, so memory holds the 16 kHz mono result plus one block, whatever the file's channels
and rate; a header that understates the length cannot push the read past the limit either.

Where each part lives: ``errors`` (:class:`AudioError`), ``limits`` (:class:`AudioLimits`),
``formats`` (extensions, what the first bytes say), ``opening`` (a path, bytes or file object
to an open file, or the OS's refusal in words), ``header`` (:func:`audio_info`), ``decoding``
(:func:`load_audio`, :func:`to_mono`); :mod:`ser.truncation` says whether a file was cut short.
"""

from ser.audio.decoding import MIN_SAMPLES, TARGET_SR, load_audio, to_mono
from ser.audio.errors import LIMIT_KINDS, AudioError
from ser.audio.formats import AUDIO_EXTENSIONS
from ser.audio.header import AudioInfo, audio_info
from ser.audio.limits import DEFAULT_LIMITS, NO_LIMITS, AudioLimits
from ser.audio.opening import AudioSource, open_readable
from ser.truncation import truncation_warning

__all__ = ["AUDIO_EXTENSIONS", "DEFAULT_LIMITS", "LIMIT_KINDS", "MIN_SAMPLES", "NO_LIMITS",
           "TARGET_SR", "AudioError", "AudioInfo", "AudioLimits", "AudioSource", "audio_info",
           "load_audio", "open_readable", "to_mono", "truncation_warning"]
