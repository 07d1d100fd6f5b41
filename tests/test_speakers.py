"""Speakers of the Kaggle data derived exactly from CREMA-D's file list and RAVDESS's id blocks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ser.data.kaggle import parse_kaggle_name
from ser.data.speakers import crema_files, kaggle_speaker

ORIGINAL_README = Path(__file__).resolve().parents[2] / "shared" / "original-README.md"
CREMA_EMOTION = {"ANG": "marah", "DIS": "jijik", "FEA": "takut", "HAP": "bahagia",
                 "NEU": "netral", "SAD": "sedih"}
CREMA_LEVEL = {"XX": "no_data", "LO": "rendah", "MD": "sedang", "HI": "tinggi"}
# RAVDESS speech, sorted, per actor: emotion 1 (neutral) 4 files, 2..8 8 files each.
RAVDESS_ORDER = ([("netral", "sedang")] * 4 + [(None, None)] * 8 +
                 [(label, level) for label in ("bahagia", "sedih", "marah", "takut", "jijik")
                  for level in ("sedang",) * 4 + ("tinggi",) * 4] + [(None, None)] * 8)


def readme_names() -> list[str]:
    if not ORIGINAL_README.is_file():
        pytest.skip(f"{ORIGINAL_README} not found (the shared folder beside the repository)")
    return re.findall(r"File: ([12]_\d{5}_[a-z]+_[a-z_]+\.wav)", ORIGINAL_README.read_text())


def test_the_original_readmes_names_agree_with_their_derived_speakers():
    names = readme_names()
    assert len(names) == 18
    for name in names:
        parsed = parse_kaggle_name(name)
        speaker = kaggle_speaker(parsed.source, parsed.file_id)
        if parsed.source == 1:
            actor, _sentence, emotion, level = crema_files()[parsed.file_id][:-4].split("_")
            assert speaker.speaker == f"crema-{actor}" and speaker.corpus == "crema-d"
            assert CREMA_EMOTION[emotion] == parsed.emotion, name
            if parsed.intensity != "no_data":
                assert CREMA_LEVEL[level] == parsed.intensity, name
        else:
            offset = parsed.file_id - 7442
            assert speaker.speaker == f"ravdess-{offset // 60 + 1:02d}"
            label, level = RAVDESS_ORDER[offset % 60]
            assert (label, level) == (parsed.emotion, parsed.intensity), name
            assert speaker.gender == ("male" if (offset // 60 + 1) % 2 else "female")


def test_known_speakers_and_sexes():
    assert kaggle_speaker(1, 4253).speaker == "crema-1053"  # 1053_IEO_ANG_MD (DESIGN.md)
    assert kaggle_speaker(1, 0) .speaker == "crema-1001"
    assert kaggle_speaker(1, 0).gender == "male"  # CREMA-D demographics: 1001 male
    assert kaggle_speaker(1, 1).gender == "male"
    assert kaggle_speaker(2, 7910).speaker == "ravdess-08"
    assert kaggle_speaker(2, 7910).gender == "female"
    assert kaggle_speaker(2, 7442 + 24 * 60) is None  # past the 24 actors
    assert kaggle_speaker(1, 7442) is None and kaggle_speaker(3, 5) is None
    assert len({kaggle_speaker(1, i).speaker for i in range(7442)}) == 91
