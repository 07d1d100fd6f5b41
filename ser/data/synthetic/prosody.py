"""What makes an emotion in the synthetic corpora: deviations from neutral, scaled by intensity.

Each emotion is a set of prosodic deviations from neutral (pitch level and range, rate, pauses,
loudness, voice quality, final intonation, spectral tilt); a clip scales them by its intensity and
its speaker's expressiveness. Prosody is what the two layouts share, so it is what a model can
carry from the Kaggle layout to RAVDESS.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

_RATIO_FIELDS = ("rate_x", "range_x")  # scaled on a log scale


@dataclass(frozen=True)
class Prosody:
    """One emotion's voice settings at intensity 1 (see :meth:`scaled`)."""

    pitch: float  # espeak pitch, 0-100 (50: the speaker's own register)
    range_x: float  # pitch excursion, times neutral
    rate_x: float  # words per minute, times the speaker's own
    gap_s: float  # extra pause between words, seconds
    loud_db: float  # level, dB from neutral
    breath: float  # aspiration noise added to the speaker's own (espeak breath units)
    flutter: float  # tremor depth added to the speaker's own, percent of f0 (peak)
    roughness: float  # irregular pulses (creak) added, 0..7
    effort: float  # voicing and consonant strength, times neutral (pressed / lax voice)
    formant_pct: float  # formant frequency shift, percent (spread lips of a smile raise them)
    tilt_db: float  # spectral tilt above 500 Hz, dB/octave (positive: brighter)
    rise: float  # probability of a rising end (a question contour)
    exclaim: float  # probability of an exclamation contour

    def scaled(self, k: float) -> Prosody:
        """Neutral plus ``k`` times this emotion's deviation (log scale for the ratios)."""
        values = {}
        for f in fields(self):
            own, base = getattr(self, f.name), getattr(NEUTRAL, f.name)
            if f.name in _RATIO_FIELDS:
                values[f.name] = base * (own / base) ** k
            else:
                values[f.name] = base + k * (own - base)
        values["rise"] = min(1.0, max(0.0, values["rise"]))
        values["exclaim"] = min(1.0, max(0.0, values["exclaim"]))
        return Prosody(**values)


NEUTRAL = Prosody(pitch=50.0, range_x=1.0, rate_x=1.0, gap_s=0.0, loud_db=0.0, breath=0.0,
                  flutter=0.0, roughness=0.0, effort=1.0, formant_pct=0.0, tilt_db=0.0, rise=0.0,
                  exclaim=0.0)

# Directions follow the vocal-affect literature (e.g. Juslin & Laukka 2003; Scherer 2003): anger
# and happiness high, wide and fast, anger pressed and loud; sadness low, narrow, slow, soft and
# breathy; fear high, fast, narrow, with tremor and rising ends; disgust low, slow and creaky.
PROSODY: dict[str, Prosody] = {
    "netral": NEUTRAL,
    "marah": replace(NEUTRAL, pitch=62, range_x=1.35, rate_x=1.18, loud_db=7.0, breath=-3,
                     roughness=1, effort=1.4, formant_pct=2, tilt_db=5.0, exclaim=0.9),
    "jijik": replace(NEUTRAL, pitch=38, range_x=1.3, rate_x=0.80, gap_s=0.07, loud_db=1.0,
                     breath=4, flutter=0.8, roughness=5, effort=0.95, formant_pct=-3,
                     tilt_db=-1.0),
    "takut": replace(NEUTRAL, pitch=80, range_x=0.55, rate_x=1.25, gap_s=0.03, loud_db=2.0,
                     breath=16, flutter=4.5, effort=0.8, tilt_db=-2.0, rise=0.8),
    "bahagia": replace(NEUTRAL, pitch=70, range_x=2.0, rate_x=1.05, loud_db=4.0, breath=2,
                       effort=1.1, formant_pct=6, tilt_db=1.5, exclaim=0.5),
    "sedih": replace(NEUTRAL, pitch=34, range_x=0.45, rate_x=0.78, gap_s=0.07, loud_db=-6.0,
                     breath=16, flutter=1.5, roughness=2, effort=0.7, tilt_db=-5.0),
    # RAVDESS only: calm is neutral but softer and slower; surprised has the widest pitch range.
    "calm": replace(NEUTRAL, pitch=44, range_x=0.8, rate_x=0.88, gap_s=0.05, loud_db=-4.0,
                    breath=5, effort=0.85, tilt_db=-2.0),
    "surprised": replace(NEUTRAL, pitch=68, range_x=2.2, rate_x=1.0, loud_db=4.0, breath=2,
                         effort=1.1, formant_pct=2, tilt_db=1.0, rise=0.9),
}

# Intensity word (Kaggle names) or RAVDESS code -> how far from neutral. The unspecified intensity
# (no_data, tidak_ditentukan) draws a scale per clip from NO_DATA_SCALE.
KAGGLE_INTENSITY_SCALE = {"rendah": 0.7, "sedang": 1.0, "tinggi": 1.3}
NO_DATA_SCALE = (0.85, 1.15)
RAVDESS_INTENSITY_SCALE = {1: 0.85, 2: 1.35}
