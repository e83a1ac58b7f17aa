"""The clip record: round trips (unknown keys kept), upgrades from release 0.1, marks checked,
hand-made sidecars, what is not a sidecar, the folder manifest, and a real lock under
concurrent writers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inspire import clips
from inspire.errors import InspireError, UserInputError

SR = 16000
RELEASE = Path(__file__).parent / "data" / "release-0.1" / "clips"
SRC = Path(clips.__file__).resolve().parents[1]


def _audio(path: Path, seconds: float = 1.0, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(round(seconds * sr)), np.float32), sr, subtype="PCM_16")
    return path


def _record(cid: str = "0001-abcd1234", **kw) -> clips.ClipRecord:
    base = dict(seed=3, index=1, stream_seed=99, seconds=1.0, samples=SR, sample_rate=SR, quantization="mu-law",
                levels=256, checkpoint={"path": "/r/best.pt", "sha256": "ab" * 32, "step": 7},
                temperature={"spec": "1.0", "times_s": [0.0, 1.0], "values": [1.0, 1.0]}, software="inspire test")
    return clips.ClipRecord(id=cid, **{**base, **kw})


# ------------------------------------------------------------------------------ round trips


def test_write_then_read_gives_the_same_record(tmp_path):
    marks = clips.Marks("keep", True, [[0.1, 0.4], (0.5, 0.9)])
    rec = _record(marks=marks, curation={"verdict": "discard", "score": 0.1})
    _audio(tmp_path / "0001-abcd1234.wav")
    path = clips.write(rec, tmp_path)
    assert path == tmp_path / "0001-abcd1234.json"
    back = clips.read(path)
    assert back == rec and clips.read(tmp_path / "0001-abcd1234.wav") == rec
    assert back.marks.regions == ((0.1, 0.4), (0.5, 0.9))
    d = json.loads(path.read_text())
    assert d["format_version"] == clips.FORMAT_VERSION == 2
    assert d["marks"] == {"verdict": "keep", "star": True, "regions": [[0.1, 0.4], [0.5, 0.9]]}
    assert list(d)[:4] == ["format_version", "id", "file", "run"] and d["prime"] is None  # every field, null if unknown


def test_unknown_keys_from_a_newer_version_survive_a_round_trip(tmp_path):
    _audio(tmp_path / "c.wav")
    newer = {**clips.to_dict(_record("c")), "format_version": 7, "mood": {"valence": 0.3}, "tags": ["dark"],
             "marks": {"verdict": None, "star": False, "regions": [], "colour": "red"}}
    (tmp_path / "c.json").write_text(json.dumps(newer))
    rec = clips.read(tmp_path / "c.json")
    assert rec.extra == {"mood": {"valence": 0.3}, "tags": ["dark"]} and rec.marks.extra == {"colour": "red"}
    clips.update(tmp_path / "c.wav", lambda r: replace(r, marks=replace(r.marks, star=True)))
    d = json.loads((tmp_path / "c.json").read_text())
    assert d["mood"] == {"valence": 0.3} and d["tags"] == ["dark"]
    assert d["marks"] == {"verdict": None, "star": True, "regions": [], "colour": "red"}
    assert {k: v for k, v in d.items() if k not in ("format_version", "marks")} == \
        {k: v for k, v in newer.items() if k not in ("format_version", "marks")}


def test_release_0_1_sidecars_read_and_upgrade_without_losing_anything(tmp_path):
    for side in sorted(RELEASE.glob("0*.json")):
        old = json.loads(side.read_text())
        assert old["format_version"] == 1 and "marks" not in old
        rec = clips.read(side)
        assert rec.id == side.stem == old["id"] and rec.file == old["file"]
        assert rec.marks == clips.Marks() and rec.extra == {}
        for key in ("seed", "index", "stream_seed", "samples", "seconds", "sample_rate", "prime", "created"):
            assert getattr(rec, key) == old[key]
        assert rec.temperature == old["temperature"] and rec.checkpoint == old["checkpoint"]
        assert rec.curation == old["curation"] and rec.auto_verdict == "keep" == rec.verdict
        assert rec.duration_s == pytest.approx(1.2)
        shutil.copy(side, tmp_path / side.name)
        shutil.copy(side.with_suffix(".wav"), tmp_path / side.with_suffix(".wav").name)
        clips.update(tmp_path / side.name, lambda r: r)
        new = json.loads((tmp_path / side.name).read_text())
        assert new["format_version"] == 2 and new["marks"] == {"verdict": None, "star": False, "regions": []}
        assert {k: v for k, v in new.items() if k not in ("format_version", "marks")} == \
            {k: v for k, v in old.items() if k != "format_version"}


def test_a_hand_made_sidecar_names_its_clip_by_the_audio_beside_it(tmp_path):
    _audio(tmp_path / "take 3.flac")
    (tmp_path / "take 3.json").write_text(json.dumps({"seed": 7, "temperature": {"spec": "0.9"}}))
    for path in (tmp_path / "take 3.json", tmp_path / "take 3.flac"):
        rec = clips.read(path)
        assert (rec.id, rec.file, rec.seed, rec.seconds) == ("take 3", "take 3.flac", 7, None)
    clips.update(tmp_path / "take 3.json", lambda r: replace(r, curation={"verdict": "keep"}))
    assert json.loads((tmp_path / "take 3.json").read_text())["file"] == "take 3.flac"
    assert clips.scan(tmp_path)[0].curation == {"verdict": "keep"}


# --------------------------------------------------------------------- what is not a sidecar


@pytest.mark.parametrize("name, content, words", [
    ("manifest.json", {"format_version": 1, "clips": []}, "manifest.json, not a clip sidecar"),
    ("curation.json", {"generation": "not a sidecar"}, "curation.json, not a clip sidecar"),
    ("piece.json", {"format_version": 1, "kind": "inspire-piece", "parts": []}, "kind 'inspire-piece'"),
    ("list.json", [1, 2], "expected a JSON object"),
    ("folder.json", {"clips": [{"id": "a"}]}, "a folder's list of clips"),
])
def test_files_that_are_not_clip_sidecars_say_so(tmp_path, name, content, words):
    (tmp_path / name).write_text(json.dumps(content))
    with pytest.raises(clips.NotAClipError, match=words) as err:
        clips.read(tmp_path / name)
    assert err.value.kind == content.get("kind") if isinstance(content, dict) else err.value.kind is None


def test_missing_broken_and_mistyped_sidecars_are_one_line_errors(tmp_path):
    with pytest.raises(clips.NoSidecarError, match="no such sidecar"):
        clips.read(tmp_path / "nothing.wav")
    (tmp_path / "broken.json").write_text("{ not json")
    with pytest.raises(clips.NotAClipError, match="broken.json: not a readable sidecar"):
        clips.read(tmp_path / "broken.json")
    (tmp_path / "typed.json").write_text(json.dumps({"id": "typed", "seed": "seven"}))
    with pytest.raises(UserInputError, match=r"typed.json: seed must be a whole number \(or null\), got 'seven'"):
        clips.read(tmp_path / "typed.json")
    (tmp_path / "v.json").write_text(json.dumps({"format_version": "two"}))
    with pytest.raises(UserInputError, match="v.json: format_version must be a whole number"):
        clips.read(tmp_path / "v.json")
    (tmp_path / "m.json").write_text(json.dumps({"marks": {"verdict": "maybe"}}))
    with pytest.raises(UserInputError, match="m.json: marks: verdict must be 'keep', 'discard' or null, got 'maybe'"):
        clips.read(tmp_path / "m.json")


# ---------------------------------------------------------------------------------- marks


@pytest.mark.parametrize("kw, words", [
    (dict(verdict="yes"), "verdict must be 'keep', 'discard' or null"),
    (dict(star="yes"), "star must be true or false"),
    (dict(regions=[[2.0, 1.0]]), r"region 1 \[2, 1\]: start must be before end"),
    (dict(regions=[[0.0, 1.0], [1.0, 1.0]]), r"region 2 \[1, 1\]: start must be before end"),
    (dict(regions=[[-0.5, 1.0]]), "starts before the clip"),
    (dict(regions=[[0.0, float("nan")]]), "must be numbers of seconds"),
    (dict(regions=[[0.0, 1.0, 2.0]]), "must be a pair"),
    (dict(regions="0-1"), "must be a list of"),
])
def test_marks_are_validated(kw, words):
    with pytest.raises(UserInputError, match=words) as err:
        clips.Marks(**kw)
    assert isinstance(err.value, InspireError) and "\n" not in str(err.value)


def test_regions_must_lie_inside_the_clip(tmp_path):
    _audio(tmp_path / "a.wav", 1.0)
    words = r"a.json: marks: region 1 \[0.5, 1.5\] ends after the clip's end \(1.000 s\)"
    with pytest.raises(UserInputError, match=words):
        clips.write(_record("a", marks=clips.Marks(regions=[(0.5, 1.5)])), tmp_path)
    assert not (tmp_path / "a.json").exists()
    # An included prime comes first in the file: the clip is that much longer.
    primed = _record("a", seconds=1.0, prime={"source": "corpus", "seconds": 0.5, "included": True})
    _audio(tmp_path / "a.wav", 1.5)
    clips.write(replace(primed, marks=clips.Marks(regions=[(0.5, 1.5)])), tmp_path)
    # Without a length in the record, the audio file is measured.
    _audio(tmp_path / "b.wav", 2.0)
    clips.write(clips.ClipRecord("b", marks=clips.Marks(regions=[(1.0, 2.0)])), tmp_path)
    with pytest.raises(UserInputError, match="ends after the clip's end"):
        clips.update(tmp_path / "b.wav", lambda r: replace(r, marks=clips.Marks(regions=[(1.0, 2.5)])))
    assert clips.read(tmp_path / "b.json").marks.regions == ((1.0, 2.0),)  # the failed update wrote nothing


def test_a_persons_verdict_overrides_curations():
    rec = _record(curation={"verdict": "keep"})
    assert rec.verdict == "keep"
    assert replace(rec, marks=clips.Marks("discard")).verdict == "discard"
    assert replace(rec, curation=None).verdict is None


# ------------------------------------------------------------------------------- update


def test_update_creates_a_sidecar_only_when_asked(tmp_path):
    _audio(tmp_path / "x.wav", 0.5)
    with pytest.raises(clips.NoSidecarError):
        clips.update(tmp_path / "x.wav", lambda r: r)
    assert not (tmp_path / "x.json").exists()
    rec = clips.update(tmp_path / "x.wav", lambda r: replace(r, marks=clips.Marks("keep")), create=True)
    assert (rec.id, rec.file, rec.seconds, rec.sample_rate, rec.samples) == ("x", "x.wav", 0.5, SR, SR // 2)
    assert clips.read(tmp_path / "x.wav") == rec


_WRITER = """
import sys, time
from dataclasses import replace
from inspire import clips
path, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def add(r):
    time.sleep(0.002)  # widen the read-modify-write window: without the lock, writes get lost
    if who == "studio":
        return replace(r, marks=replace(r.marks, regions=r.marks.regions + ((len(r.marks.regions) * 0.01, 0.5),)))
    return replace(r, extra={**r.extra, "hits": r.extra.get("hits", []) + [who]})
for _ in range(n):
    clips.update(path, add)
"""


def test_concurrent_writers_lose_nothing(tmp_path):
    _audio(tmp_path / "c.wav", 1.0)
    clips.write(_record("c", seconds=1.0), tmp_path)
    n = 25
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path / "c.json"), who, str(n)],
                              env={"PYTHONPATH": str(SRC)}) for who in ("studio", "curate", "shard")]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    rec = clips.read(tmp_path / "c.json")
    assert len(rec.marks.regions) == n
    assert sorted(rec.extra["hits"]) == ["curate"] * n + ["shard"] * n
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.wav"]  # no lock file left behind


def test_the_lock_nests_in_one_thread(tmp_path):
    _audio(tmp_path / "n.wav")
    clips.write(_record("n"), tmp_path)

    def fn(r):
        clips.write(replace(r, seed=8), tmp_path)  # takes the same lock again: must not deadlock
        return replace(clips.read(tmp_path / "n.json"), index=9)

    assert (clips.update(tmp_path / "n.json", fn).seed, clips.read(tmp_path / "n.wav").index) == (8, 9)


# ------------------------------------------------------------------- scan, manifest, move


def test_scan_lists_finished_clips_only(tmp_path):
    for cid in ["0002-b", "0000-a", "0001-c"]:
        _audio(tmp_path / f"{cid}.wav")
        clips.write(_record(cid, index=int(cid[:4])), tmp_path)
    (tmp_path / "0001-c.wav").unlink()  # not finished: its audio is gone
    _audio(tmp_path / "loose.wav")  # no sidecar
    (tmp_path / "manifest.json").write_text(json.dumps({"clips": []}))
    (tmp_path / "junk.json").write_text("{")
    (tmp_path / "piece.json").write_text(json.dumps({"kind": "inspire-piece"}))
    _audio(tmp_path / "piece.wav")
    assert [r.id for r in clips.scan(tmp_path)] == ["0000-a", "0002-b"]


def test_manifest_rebuilt_from_release_sidecars_is_the_releases(tmp_path):
    for f in RELEASE.iterdir():
        shutil.copy(f, tmp_path / f.name)
    old = json.loads((RELEASE / "manifest.json").read_text())
    assert clips.read_manifest(tmp_path) == old
    header = {k: v for k, v in old.items() if k not in ("format_version", "clips")}
    (tmp_path / "manifest.json").unlink()
    assert clips.read_manifest(tmp_path) is None
    assert clips.rebuild_manifest(tmp_path, header) == old
    assert json.loads((tmp_path / "manifest.json").read_text()) == old


def test_move_takes_the_sidecar_along(tmp_path):
    _audio(tmp_path / "m.wav")
    clips.write(_record("m", marks=clips.Marks("discard")), tmp_path)
    moved = clips.move(tmp_path / "m.wav", tmp_path / "discarded")
    assert moved == tmp_path / "discarded" / "m.wav" and moved.is_file() and not (tmp_path / "m.wav").exists()
    assert clips.read(moved).marks.verdict == "discard" and not (tmp_path / "m.json").exists()


def test_clips_imports_no_torch_and_no_audio_libraries():
    code = "import sys\nfrom inspire import clips\nassert not {'torch', 'soundfile', 'numpy'} & set(sys.modules)\n"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC)})
