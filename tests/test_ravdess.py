"""The RAVDESS index: name parsing, actor selection, what is skipped and counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.data.ravdess import (
    COLUMNS,
    DEFAULT_ACTORS,
    RavdessName,
    load_ravdess,
    parse_ravdess_name,
    resolve_actors,
)


def write_wav(path: Path, sr: int = 48000, seconds: float = 0.1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(sr * seconds), dtype=np.float32), sr)


def name(emotion: int, actor: int, channel: int = 1, intensity: int = 1, statement: int = 1,
         repetition: int = 1) -> str:
    fields = (3, channel, emotion, intensity, statement, repetition, actor)
    return "-".join(f"{f:02d}" for f in fields) + ".wav"


def make_ravdess(root: Path, actors=(1, 2, 3, 8), emotions=(1, 2, 3, 8)) -> Path:
    """Per actor: the given emotions at normal intensity, plus one strong angry clip."""
    for actor in actors:
        folder = root / f"Actor_{actor:02d}"
        for emotion in emotions:
            write_wav(folder / name(emotion, actor))
        write_wav(folder / name(5, actor, intensity=2, statement=2, repetition=2))
    return root


def test_parse_good_name():
    parsed = parse_ravdess_name("03-01-06-02-01-02-11.wav")
    assert parsed == RavdessName(3, 1, 6, 2, 1, 2, 11)
    assert (parsed.emotion, parsed.label, parsed.intensity, parsed.gender) == (
        "fearful", "takut", "strong", "male")
    assert parsed.statement_text == "Kids are talking by the door"
    assert parse_ravdess_name("/x/Actor_08/03-01-02-01-02-01-08.wav").gender == "female"


@pytest.mark.parametrize("bad", [
    "03-01-09-01-01-01-01.wav",  # emotion 09
    "03-01-01-03-01-01-01.wav",  # intensity 03
    "03-03-01-01-01-01-01.wav",  # vocal channel 03
    "03-01-01-01-01-01-00.wav",  # actor 00
    "03-01-01-01-01-01.wav",     # six fields
    "notes.txt",
    "03-01-01-01-01-01-01.mp4",
])
def test_parse_bad_names_gives_none(bad):
    assert parse_ravdess_name(bad) is None


def test_calm_and_surprised_have_no_label():
    assert parse_ravdess_name(name(2, 1)).label is None
    assert parse_ravdess_name(name(8, 1)).label is None
    assert parse_ravdess_name(name(1, 1)).label == "netral"


def test_default_actors_and_frame(tmp_path):
    root = make_ravdess(tmp_path / "rav", actors=(1, 2, 3, 8, 22))
    index = load_ravdess(root)
    frame = index.frame
    assert list(frame.columns) == list(COLUMNS)
    assert sorted(frame["actor"].unique()) == [1, 2, 8, 22]  # 3 is not a default actor
    assert index.actors == DEFAULT_ACTORS
    assert len(frame) == 4 * 5
    # sorted by actor then file name, so runs see the same order
    assert frame["path"].tolist() == sorted(frame["path"], key=lambda p: (int(p[-6:-4]), p))
    assert frame["speaker"].iloc[0] == "ravdess-01"
    by_actor = frame.drop_duplicates("actor").set_index("actor")["gender"].to_dict()
    assert by_actor == {1: "male", 2: "female", 8: "female", 22: "female"}
    calm = frame[frame["emotion"].isin(["calm", "surprised"])]
    assert len(calm) == 8 and calm["label"].tolist() == [None] * 8
    strong = frame[frame["intensity"] == "strong"]
    assert set(strong["emotion"]) == {"angry"} and set(strong["label"]) == {"marah"}
    assert set(strong["statement"]) == {2} and set(strong["repetition"]) == {2}


@pytest.mark.parametrize("actors, expected", [
    ("all", [1, 2, 3, 8]),
    (["all"], [1, 2, 3, 8]),
    ([3, 1], [1, 3]),
    (["2", "8"], [2, 8]),
    ("1,3", [1, 3]),
    (8, [8]),
])
def test_actor_selection(tmp_path, actors, expected):
    root = make_ravdess(tmp_path / "rav")
    assert sorted(load_ravdess(root, actors).frame["actor"].unique()) == expected


def test_bad_actor_selections_are_refused(tmp_path):
    root = make_ravdess(tmp_path / "rav")
    with pytest.raises(ValueError, match="none of the actors"):
        load_ravdess(root, [20, 21])
    with pytest.raises(ValueError, match="actors must be"):
        load_ravdess(root, "some")
    with pytest.raises(ValueError, match="empty"):
        resolve_actors([])


def test_song_and_unparsed_files_are_skipped_and_counted(tmp_path):
    root = make_ravdess(tmp_path / "rav", actors=(1, 2))
    write_wav(root / "Actor_01" / name(3, 1, channel=2))
    write_wav(root / "Actor_02" / name(3, 2, channel=2))
    write_wav(root / "Actor_05" / name(3, 5, channel=2))  # song of an actor not asked for
    (root / "Actor_01" / "readme.txt").write_text("hello")
    write_wav(root / "Actor_02" / "03-01-09-01-01-01-02.wav")
    (root / "Actor_02" / ".DS_Store").write_text("x")  # hidden files are ignored
    index = load_ravdess(root, [1, 2])
    assert len(index.frame) == 10
    assert index.skipped_song == 2
    assert sorted(Path(p).name for p in index.skipped_unparsed) == [
        "03-01-09-01-01-01-02.wav", "readme.txt"]
    assert load_ravdess(root, "all").skipped_song == 3


def test_root_may_be_the_parent_of_the_actor_folders(tmp_path):
    make_ravdess(tmp_path / "download" / "Audio_Speech_Actors_01-24")
    index = load_ravdess(tmp_path / "download", "all")
    assert len(index.frame) == 4 * 5
    assert index.root == tmp_path / "download" / "Audio_Speech_Actors_01-24"


def test_file_in_the_wrong_actor_folder_is_kept_by_its_name_and_warned(tmp_path):
    root = make_ravdess(tmp_path / "rav", actors=(1, 2))
    write_wav(root / "Actor_01" / name(4, 2))
    index = load_ravdess(root, [2])
    assert len(index.frame) == 6
    assert any("Actor_01" in w and "actor 02" in w for w in index.warnings)


def test_missing_root_and_missing_actor_folders_say_where_to_get_ravdess(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*zenodo.*1188976"):
        load_ravdess(tmp_path / "nowhere")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no Actor_XX folders.*Audio_Speech_Actors_01-24"):
        load_ravdess(tmp_path / "empty")
