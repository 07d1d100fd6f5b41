"""What the two synthetic layouts do NOT share: language, sentences and room noise.

So that what carries over from the Kaggle layout to RAVDESS is prosody only.
"""

from __future__ import annotations

from dataclasses import dataclass

# CREMA-D's 12 sentences (the code in its file names), said in Indonesian.
CREMA_SENTENCES = {
    "DFA": "jangan lupa bawa jaket", "IEO": "sekarang sudah jam sebelas",
    "IOM": "saya sedang menuju ke rapat", "ITH": "saya rasa saya ada janji dengan dokter",
    "ITS": "saya rasa saya pernah melihat ini", "IWL": "saya ingin jam weker yang baru",
    "IWW": "saya ingin tahu ini tentang apa", "MTI": "mungkin besok akan dingin",
    "TAI": "pesawatnya hampir penuh", "TIE": "itulah yang sebenarnya terjadi",
    "TSI": "permukaannya licin", "WSI": "kita akan berhenti beberapa menit lagi",
}
# RAVDESS statements 01 and 02: in Indonesian for the Kaggle layout, as recorded for RAVDESS.
RAVDESS_SENTENCES_ID = ("anak-anak sedang berbicara di dekat pintu",
                        "anjing-anjing sedang duduk di dekat pintu")
RAVDESS_SENTENCES_EN = ("kids are talking by the door", "dogs are sitting by the door")


@dataclass(frozen=True)
class Room:
    language: str  # espeak voice
    noise_alpha: float  # background noise spectrum ~ 1/f**alpha (0 white, 1 pink)
    noise_dbfs: tuple[float, float]
    hum_hz: float  # mains hum, 0 for none


ROOMS = {"indonesian": Room("id", 1.0, (-58.0, -48.0), 50.0),
         "ravdess": Room("en-us", 0.0, (-68.0, -60.0), 0.0)}
