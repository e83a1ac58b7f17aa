"""What release 0.1 wrote still loads and still means the same (tests/data/release-0.1/, made by
that release's command line: see make_fixtures.py there): clip sidecars, the folder manifest,
curation.json, an arrangement and the piece rendered from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from inspire import clips
from inspire.compose import compose
from inspire.compose.arrangement import read_arrangement
from inspire.curate.curate import load_curation

RELEASE = Path(__file__).parent / "data" / "release-0.1"
IDS = ["0000-81dd0aee", "0001-bcf74498"]


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(RELEASE / "clips", tmp_path / "clips")
    shutil.copytree(RELEASE / "piece", tmp_path / "piece")
    return tmp_path


def test_sidecars_and_manifest_load():
    records = clips.scan(RELEASE / "clips")
    assert [r.id for r in records] == IDS
    manifest = clips.read_manifest(RELEASE / "clips")
    assert manifest["format_version"] == 1 and [c["id"] for c in manifest["clips"]] == IDS
    for rec, entry in zip(records, manifest["clips"], strict=True):
        assert (rec.file, rec.seed, rec.index, rec.temperature["spec"], rec.seconds) == \
            (entry["file"], entry["seed"], entry["index"], entry["temperature_spec"], entry["seconds"])
        assert rec.curation["verdict"] == "keep" and rec.marks == clips.Marks()
        assert rec.checkpoint["step"] == 20 and rec.sample_rate == 16000 and rec.prime is None


def test_curation_loads():
    cur = load_curation(RELEASE / "clips")
    assert cur["format_version"] == 1
    assert sorted(c["id"] for c in cur["clips"]) == IDS
    by_id = {r.id: r for r in clips.scan(RELEASE / "clips")}
    for entry in cur["clips"]:
        assert by_id[entry["id"]].curation == {k: entry[k] for k in by_id[entry["id"]].curation}


def test_arrangement_loads_and_renders_the_releases_piece(tmp_path):
    arr = read_arrangement(RELEASE / "piece" / "piece.toml")
    assert [p.clip for p in arr.parts] == ["0001-bcf74498", "0000-81dd0aee"]
    assert (arr.clips_dir, arr.sample_rate, arr.noise_reduction, arr.lufs) == ("../clips", 16000, "off", -14.0)
    piece = compose.render_arrangement(RELEASE / "piece" / "piece.toml", out=tmp_path / "again.wav")
    then = json.loads((RELEASE / "piece" / "piece.json").read_text())
    assert piece["samples"] == then["samples"] and piece["loudness"] == then["loudness"]
    for now_part, then_part in zip(piece["parts"], then["parts"], strict=True):
        for key in ("clip", "in_s", "out_s", "gain_db", "crossfade_s", "start_sample", "end_sample",
                    "curation", "lineage"):
            assert now_part[key] == then_part[key], key
        assert {k: v for k, v in now_part["generation"].items() if k not in ("format_version", "marks")} == \
            {k: v for k, v in then_part["generation"].items() if k != "format_version"}
    then_audio, _ = sf.read(str(RELEASE / "piece" / "piece.wav"), dtype="int16")
    now_audio, _ = sf.read(str(tmp_path / "again.wav"), dtype="int16")
    assert np.array_equal(now_audio, then_audio)


def test_auto_compose_arranges_the_release_clips_as_the_release_did(tmp_path):
    root = _copy(tmp_path)
    (root / "piece" / "piece.toml").unlink()
    compose.auto_compose(root / "clips", minutes=0.03, out=root / "piece" / "piece.wav", noise_reduction="off",
                         force=True)
    now, then = read_arrangement(root / "piece" / "piece.toml"), read_arrangement(RELEASE / "piece" / "piece.toml")
    assert now.parts == then.parts
    for key in ("sample_rate", "clips_dir", "noise_reduction", "lufs", "true_peak", "fade_in_s", "fade_out_s"):
        assert getattr(now, key) == getattr(then, key), key
    then_audio, _ = sf.read(str(RELEASE / "piece" / "piece.wav"), dtype="int16")
    now_audio, _ = sf.read(str(root / "piece" / "piece.wav"), dtype="int16")
    assert np.array_equal(now_audio, then_audio)
