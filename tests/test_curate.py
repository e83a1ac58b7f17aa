"""Curation: known answers on synthetic clips (silence, noise, a stuck loop, a varied melody),
loudness against pyloudnorm, the files written, the command line."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from conftest import melody
from inspire.cli import main
from inspire.curate import curate, scores
from inspire.errors import UserInputError

SR = 16000


def white_noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def stuck_loop() -> np.ndarray:
    """4 s of melody, then a half-second snippet repeated 16 times (8 s)."""
    return np.concatenate([melody(4.0, 2), np.tile(melody(0.5, 3), 16)])


@pytest.fixture
def clips(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    sf.write(folder / "silence.wav", np.zeros(8 * SR, np.float32), SR, subtype="PCM_16")
    sf.write(folder / "noise.wav", white_noise(8.0), SR, subtype="PCM_16")
    sf.write(folder / "loop.wav", stuck_loop(), SR, subtype="PCM_16")
    sf.write(folder / "music.wav", melody(10.0, 1), SR, subtype="PCM_16")
    (folder / "broken.wav").write_bytes(b"RIFF not really a wave file")
    (folder / "empty.wav").write_bytes(b"")
    sidecar = {"seed": 7, "seconds": 10.0, "sample_rate": SR,
               "temperature": {"spec": "0.9..1.1", "times_s": [0.0, 5.0, 10.0],
                               "values": [0.9, 1.1, 0.95]}}  # fmt: skip
    (folder / "music.json").write_text(json.dumps(sidecar))
    (folder / "manifest.json").write_text(json.dumps({"generation": "not a sidecar"}))
    return folder


# --- features and verdicts -----------------------------------------------------------------


def test_silence_is_discarded_as_mostly_silence():
    result = scores.analyze(np.zeros(5 * SR, np.float32), SR)
    assert result.verdict == "discard"
    assert "mostly silence" in result.reasons
    assert result.features["silence_fraction"] == 1.0
    assert result.features["loudness_lufs"] is None


def test_white_noise_is_discarded_as_noise():
    result = scores.analyze(white_noise(5.0), SR)
    assert result.verdict == "discard"
    assert any("noise" in r for r in result.reasons)
    assert 0.5 < result.features["spectral_flatness"] < 0.62  # ~0.56 for white noise


def test_stuck_loop_found_with_period_and_onset():
    result = scores.analyze(stuck_loop(), SR)
    f = result.features
    assert result.verdict == "discard"
    assert f["loop_period_s"] == pytest.approx(0.5, abs=0.01)
    assert f["loop_start_s"] == pytest.approx(4.0, abs=0.15)
    assert f["loop_end_s"] == pytest.approx(12.0, abs=0.2)
    assert any(r.startswith("stuck in a 0.50 s loop from 4.0 s on") for r in result.reasons), result.reasons


def test_varied_music_is_kept_and_a_drone_is_not():
    music = scores.analyze(melody(10.0, 1), SR)
    assert music.verdict == "keep", music.reasons
    assert music.features["loop_period_s"] is None
    t = np.arange(8 * SR) / SR
    drone = 0.3 * np.sin(2 * np.pi * 110 * t) + 0.1 * np.sin(2 * np.pi * 220.5 * t)
    drone = scores.analyze(drone.astype(np.float32), SR)
    assert drone.verdict == "discard" and "monotonous drone" in drone.reasons
    assert music.score > drone.score


def test_clipping_is_found():
    clipped = np.clip(4.0 * melody(6.0, 5), -0.99, 0.99)
    result = scores.analyze(clipped, SR)
    assert result.features["clipped_fraction"] > 0.01
    assert any(r.startswith("clipped") for r in result.reasons)
    assert scores.analyze(melody(6.0, 5), SR).features["clipped_fraction"] == 0.0


@pytest.mark.parametrize("amplitude", [1.0, 0.5, 0.1])
def test_loudness_agrees_with_pyloudnorm_and_bs1770(amplitude):
    import pyloudnorm

    t = np.arange(5 * SR) / SR
    x = (amplitude * np.sin(2 * np.pi * 997 * t)).astype(np.float32)
    ours = scores.loudness_lufs(x, SR)
    assert ours == pytest.approx(pyloudnorm.Meter(SR).integrated_loudness(x.astype(np.float64)), abs=1e-6)
    # BS.1770's calibration: a 997 Hz sine of peak A in one channel reads 20 log10(A) - 3.01 LUFS.
    assert ours == pytest.approx(20 * np.log10(amplitude) - 3.01, abs=0.1)


def test_thresholds_are_validated_and_overridable():
    t = scores.Thresholds.from_overrides(["max_silence_fraction=0.2", "noise-flatness=0.5"])
    assert t.max_silence_fraction == 0.2 and t.noise_flatness == 0.5
    with pytest.raises(UserInputError, match="expected NAME=VALUE"):
        scores.Thresholds.from_overrides(["nonsense=1"])
    with pytest.raises(UserInputError, match="not a number"):
        scores.Thresholds.from_overrides(["noise_flatness=high"])
    with pytest.raises(UserInputError, match="between 0 and 1"):
        scores.Thresholds(max_silence_fraction=2.0)


# --- the folder: files, ranks, sidecars, report ---------------------------------------------


def test_curate_folder_ranks_writes_and_keeps_sidecars(clips):
    result = curate.curate_folder(clips)
    by_id = {c["id"]: c for c in result["clips"]}
    assert set(by_id) == {"silence", "noise", "loop", "music", "broken", "empty"}
    assert [c["rank"] for c in result["clips"]] == list(range(1, 7))
    assert result["clips"][0]["id"] == "music" and by_id["music"]["verdict"] == "keep"
    assert "mostly silence" in by_id["silence"]["reasons"]
    assert any("noise" in r for r in by_id["noise"]["reasons"])
    assert any("loop" in r for r in by_id["loop"]["reasons"])
    # Unreadable and empty clips: listed with the reason, ranked last.
    assert {c["id"] for c in result["clips"][-2:]} == {"broken", "empty"}
    assert all(by_id[k]["error"] and by_id[k]["verdict"] == "discard" for k in ("broken", "empty"))
    assert "empty file" in by_id["empty"]["error"]

    on_disk = json.loads((clips / "curation.json").read_text())
    assert on_disk["format_version"] == 1 and on_disk["clips"] == json.loads(json.dumps(result["clips"]))
    assert "thresholds" in on_disk["settings"]
    sidecar = json.loads((clips / "music.json").read_text())
    assert sidecar["seed"] == 7 and sidecar["temperature"]["spec"] == "0.9..1.1"
    assert sidecar["curation"]["verdict"] == "keep" and sidecar["curation"]["rank"] == 1
    assert json.loads((clips / "manifest.json").read_text()) == {"generation": "not a sidecar"}
    assert not (clips / "silence.json").exists()  # no sidecar is invented
    rows = (clips / "curation.csv").read_text().splitlines()
    assert len(rows) == 7 and rows[0].startswith("rank,id,file,verdict,score")

    page = (clips / "report.html").read_text()
    assert page.count('class="clip ') == 6
    assert page.count("<audio ") == 6 and 'src="music.wav"' in page
    assert "<polyline" in page  # music's temperature curve
    assert (clips / "report_files" / "music.wav.png").exists()

    # Re-running replaces results in place.
    again = curate.curate_folder(clips, keep=0)
    assert all(c["verdict"] == "discard" for c in again["clips"])
    assert json.loads((clips / "music.json").read_text())["curation"]["verdict"] == "discard"


def test_move_puts_discards_and_sidecars_aside(clips):
    (clips / "noise.json").write_text(json.dumps({"seed": 1}))
    result = curate.curate_folder(clips, move=True)
    assert sorted(p.name for p in (clips / "discarded").iterdir()) == sorted(
        ["silence.wav", "noise.wav", "noise.json", "loop.wav", "broken.wav", "empty.wav"]
    )
    assert (clips / "music.wav").exists() and (clips / "manifest.json").exists()
    assert {c["id"]: c["file"] for c in result["clips"]}["loop"] == "discarded/loop.wav"


def test_rerunning_curate_keeps_a_persons_marks_and_move_obeys_them(clips):
    from inspire import clips as records

    (clips / "loop.json").write_text(json.dumps({"id": "loop", "marks": {"verdict": "keep", "star": True,
                                                                         "regions": [[0.5, 3.5]]}}))
    records.update(clips / "music.wav", lambda r: replace(r, marks=records.Marks("discard", regions=[(1.0, 2.0)])))
    (clips / "piece.json").write_text(json.dumps({"kind": "inspire-piece", "file": "piece.wav"}))
    sf.write(clips / "piece.wav", melody(4.0, 9), SR)
    for _ in range(2):
        curate.curate_folder(clips)
    music = records.read(clips / "music.wav")
    assert music.marks == records.Marks("discard", regions=[(1.0, 2.0)]) and music.curation["verdict"] == "keep"
    assert music.seed == 7 and music.verdict == "discard"
    loop = records.read(clips / "loop.wav")
    assert loop.marks == records.Marks("keep", True, [(0.5, 3.5)]) and loop.curation["verdict"] == "discard"
    assert json.loads((clips / "piece.json").read_text()) == {"kind": "inspire-piece", "file": "piece.wav"}
    # --move: a person's verdict, when given, over curation's.
    result = curate.curate_folder(clips, move=True)
    files = {c["id"]: c["file"] for c in result["clips"]}
    assert files["loop"] == "loop.wav" and files["music"] == "discarded/music.wav"
    assert records.read(clips / "discarded" / "music.wav").marks.verdict == "discard"
    assert records.read(clips / "loop.wav").marks.star


def test_keep_fraction_trims_the_keepers(tmp_path):
    folder = tmp_path / "many"
    for i in range(4):
        sf.write(folder.mkdir(exist_ok=True) or folder / f"m{i}.wav", melody(4.0, 10 + i), SR)
    result = curate.curate_folder(folder, keep_fraction=0.5)
    assert [c["verdict"] for c in result["clips"]] == ["keep", "keep", "discard", "discard"]
    assert result["clips"][2]["reasons"][0] == "not among the best 2"


def test_bad_folders_are_user_errors(tmp_path):
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("no audio here")
    with pytest.raises(UserInputError, match="no audio files"):
        curate.curate_folder(tmp_path / "nothing")
    with pytest.raises(UserInputError, match="not a folder"):
        curate.curate_folder(tmp_path / "missing")


# --- command line and imports -----------------------------------------------------------------


def test_cli_round_trip(clips, tmp_path, capsys):
    assert main(["curate", str(clips), "--quiet", "--keep", "1", "--threshold", "max_silence_fraction=0.7"]) == 0
    out = capsys.readouterr().out
    assert "music.wav" in out and str(clips / "report.html") in out
    data = json.loads((clips / "curation.json").read_text())
    assert data["settings"]["keep"] == 1 and data["settings"]["thresholds"]["max_silence_fraction"] == 0.7
    (tmp_path / "empty_dir").mkdir()
    assert main(["curate", str(tmp_path / "empty_dir"), "--quiet"]) == 2
    assert "no audio files" in capsys.readouterr().err
    assert main(["curate", str(clips), "--quiet", "--threshold", "bogus=1"]) == 2
    assert main(["curate", str(clips), "--quiet", "--run", str(tmp_path / "no_run")]) == 2
    assert "no prepared data" in capsys.readouterr().err


def test_progress_into_a_log_is_plain_lines(clips, capsys):
    curate.curate_folder(clips, progress=True)
    err = capsys.readouterr().err  # not a terminal: no bar frames, a last line instead
    assert "\r" not in err and "curating: 6/6 clip (100%), done in" in err, err
