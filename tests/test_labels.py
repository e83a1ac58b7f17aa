"""Labelling a run's audio for steering: by track, by folder, by a CSV of sections; bad CSVs
are one-line errors naming the file, the line and what is wrong."""

from __future__ import annotations

import pytest

from conftest import sine, write
from inspire.audio import labels
from inspire.audio.dataset import PrepareSettings, load_prepared, prepare
from inspire.errors import DatasetError, UserInputError

SR = 16000


@pytest.fixture
def prep(tmp_path):
    """Four tracks in two folders (3 s each); the lone held-out track is the one prepare picks."""
    for folder, name, f in [("pads", "nebula", 220.0), ("pads", "drift", 247.0), ("hits", "through-space", 330.0),
                            ("hits", "kick", 440.0)]:
        write(tmp_path / "src" / folder / f"{name}.wav", sine(f, 3.0, SR), SR)
    prepare([tmp_path / "src"], tmp_path / "run", PrepareSettings(val_fraction=0.25), progress=False)
    return load_prepared(tmp_path / "run")


def _track(prep, name):
    return next(t for t in prep.tracks if t.name == name)


def test_by_track_names_the_training_tracks(prep):
    lab = labels.resolve(prep, "track")
    train = [t.name for t in prep.tracks if t.split == "train"]
    held = [t.name for t in prep.tracks if t.split == "val"]
    assert lab.by == "track" and list(lab.names) == train and len(held) == 1
    for i, name in enumerate(lab.names):
        t = _track(prep, name)
        assert lab.rows(t.id, 100, 400).tolist() == [i + 1] * 300
    assert lab.rows(_track(prep, held[0]).id, 0, 10).tolist() == [0] * 10  # held out: no label learnt
    assert labels.Labelling.from_json(lab.to_json()) == lab
    assert labels.resolve(prep, "none") == labels.Labelling()


def test_by_folder(prep):
    lab = labels.resolve(prep, "folder")
    assert set(lab.names) <= {"pads", "hits"}
    for t in prep.tracks:
        row = lab.rows(t.id, 0, 1)[0]
        assert row == 0 or lab.names[row - 1] == ("pads" if t.name in ("nebula", "drift") else "hits")


def test_by_csv_sections(prep, tmp_path):
    train = [t for t in prep.tracks if t.split == "train"]
    a, b = train[0], train[1]
    csv = tmp_path / "sections.csv"
    csv.write_text(
        "file,start,end,label\n"
        f"{a.name}.wav,0,1.5,intro\n"
        f"{a.name}.wav,0:01.5,end,body\n"
        f"# a comment\n"
        f"{b.source},1,2,intro\n"
    )
    lab = labels.resolve(prep, str(csv))
    assert lab.by == "csv" and lab.names == ("intro", "body") and lab.source["sha256"]
    rows = lab.rows(a.id, 0, a.samples)
    assert rows[: 24000].tolist() == [1] * 24000 and rows[24000:].tolist() == [2] * (a.samples - 24000)
    rows_b = lab.rows(b.id, 0, b.samples)
    assert rows_b[:SR].sum() == 0 and set(rows_b[SR : 2 * SR].tolist()) == {1} and rows_b[2 * SR :].sum() == 0
    assert lab.row_of(b.id, 0, b.samples) == 0 and lab.row_of(a.id, 0, 20000) == 1
    secs = lab.seconds(prep)
    assert secs["intro"] == pytest.approx(2.5) and secs["body"] == pytest.approx(a.samples / SR - 1.5)


@pytest.mark.parametrize(
    "body, words",
    [
        ("{a},0,1,x\n{a},0.5,2,y\n", "lines 1 and 2 overlap"),
        ("{a},0,9,x\n", "beyond the end"),
        ("{a},2,1,x\n", "must end after it starts"),
        ("nosuch.wav,0,1,x\n", "unknown file 'nosuch.wav' (the run's tracks:"),
        ("{a},0,1\n", "expected 4 columns"),
        ("{a},zero,1,x\n", "'zero' is not a time"),
        ("{a},0,1,None\n", "none is reserved"),
        ("{a},0,1,\n", "label is empty"),
    ],
)
def test_bad_csv_is_a_one_line_error(prep, tmp_path, body, words):
    csv = tmp_path / "bad.csv"
    csv.write_text(body.format(a=prep.tracks[0].name + ".wav"))
    with pytest.raises(UserInputError) as e:
        labels.resolve(prep, str(csv))
    msg = str(e.value)
    assert words in msg and str(csv) in msg and "\n" not in msg


def test_missing_csv_and_reserved_track_names(prep, tmp_path):
    """Labelling by track is the default, so a track whose name cannot be a label ("none" is
    "no label") is labelled by its id instead of stopping training; a folder so named stops."""
    with pytest.raises(UserInputError, match="no such file"):
        labels.resolve(prep, str(tmp_path / "nope.csv"))
    for i, folder in enumerate(("None", "kit")):
        write(tmp_path / "src2" / folder / "None.wav", sine(100.0 + i, 4.0, SR), SR)
        write(tmp_path / "src2" / folder / "other.wav", sine(150.0 + i, 4.0, SR), SR)
    prepare([tmp_path / "src2"], tmp_path / "run2", PrepareSettings(val_fraction=0.25), progress=False)
    prep2 = load_prepared(tmp_path / "run2")
    names = labels.resolve(prep2, "track").names
    assert not any(n.lower() == "none" for n in names)
    trained = {t.id for t in prep2.tracks if t.name == "None" and any(s.split == "train" for s in t.segments)}
    assert trained and trained <= set(names)
    with pytest.raises(DatasetError, match="reserved for 'no label'"):
        labels.resolve(prep2, "folder")


def test_same_name_in_two_folders_is_told_apart_by_id(tmp_path):
    for folder in ("a", "b", "c"):
        write(tmp_path / "src" / folder / "take.wav", sine(200.0 + len(folder) * 50 + ord(folder), 2.0, SR), SR)
    prepare([tmp_path / "src"], tmp_path / "run", PrepareSettings(val_fraction=0.3), progress=False)
    prep = load_prepared(tmp_path / "run")
    lab = labels.resolve(prep, "track")
    assert all(n.startswith("take-") for n in lab.names) and len(set(lab.names)) == len(lab.names) == 2
