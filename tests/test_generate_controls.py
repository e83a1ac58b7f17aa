"""Generation with truncation and the guard: sweeps combine with temperature sweeps, sidecars
record the curves and every guard intervention, --again reproduces both exactly, plain jobs keep
their ids, bad values are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import save_checkpoint
from inspire import clips
from inspire.config import ModelConfig
from inspire.errors import UserInputError
from inspire.samplernn import generate
from inspire.samplernn.engine import numba_available
from inspire.samplernn.guard import GuardConfig
from inspire.samplernn.model import SampleRNN

SR = 16000
TINY = ModelConfig(frame_sizes=(4, 2), dim=16, levels=64)
QUICK_GUARD = GuardConfig(flatness=0.2, span_s=0.032, rewind_s=0.0, window_s=0.016, retries=2)


@pytest.fixture
def run(tmp_path):
    """A run folder with a random-init tiny checkpoint (its output is noise: the guard triggers)."""
    run_dir = tmp_path / "run"
    torch.manual_seed(0)
    save_checkpoint(run_dir, SampleRNN(TINY), step=7, sample_rate=SR)
    return run_dir


def _wav(path):
    return sf.read(str(path), dtype="int16")[0]


def test_truncation_sweeps_combine_with_temperature_sweeps(run, tmp_path):
    out = generate.run_job(run, n=8, seconds=0.05, temperatures=["0.9", "1.1"], min_ps=["0", "0.05"],
                           top_ps=["1", "0s:1,0.05s:0.9"], out=tmp_path / "job", device="cpu", threads=1)
    recs = sorted(clips.scan(out), key=lambda r: r.index)
    seen = [(r.temperature["spec"], (r.min_p or {}).get("spec"), (r.top_p or {}).get("spec")) for r in recs]
    assert seen == [(t, m, p) for p in (None, "0s:1,0.05s:0.9") for m in (None, "0.05") for t in ("0.9", "1.1")]
    assert recs[2].min_p["values"] == [0.05, 0.05] and recs[2].top_p is None
    assert recs[4].top_p["values"][-1] == pytest.approx(0.9, abs=0.01) and recs[4].min_p is None
    plain = recs[0]  # no truncation: the id a release-0.1 job gave
    assert plain.id == generate.clip_id(plain.checkpoint["sha256"], 0, "0.9", 0)
    assert "min_p" not in clips.to_dict(plain) and "guard" not in clips.to_dict(plain)


def test_again_reproduces_truncated_clips(run, tmp_path):
    out = generate.run_job(run, n=2, seconds=0.05, temperatures=["1.2"], min_ps=["0:0,1:0.2"], top_ps=["0.9"],
                           out=tmp_path / "job", device="cpu", threads=1)
    for rec in clips.scan(out):
        # A small CPU batch: the compiled engine truncates in its kernels (the same draws as torch's).
        assert rec.extra["engine"] == ("numba-fp32" if numba_available() else "torch-fp32")
        folder = generate.again(run, str(out / rec.file), out=tmp_path / f"again-{rec.id}", device="cpu", threads=1)
        assert np.array_equal(_wav(folder / rec.file), _wav(out / rec.file))
        assert clips.read(folder / rec.file).min_p == rec.min_p
    untruncated = generate.run_job(run, n=2, seconds=0.05, temperatures=["1.2"], out=tmp_path / "plain", device="cpu",
                                   threads=1)
    a, b = (sorted(clips.scan(f), key=lambda r: r.index)[0] for f in (out, untruncated))
    assert not np.array_equal(_wav(out / a.file), _wav(untruncated / b.file))


def test_guard_interventions_are_recorded_and_replayed_by_again(run, tmp_path):
    out = generate.run_job(run, n=3, seconds=0.1, temperatures=["1.0"], guard=QUICK_GUARD, out=tmp_path / "job",
                           device="cpu", threads=1)
    recs = clips.scan(out)
    assert all(r.guard["settings"] == QUICK_GUARD.to_dict() for r in recs)
    events = [e for r in recs for e in r.guard["interventions"]]
    assert any("to" in e for e in events) and all(isinstance(e["at"], int) for e in events)
    for rec in recs:
        folder = generate.again(run, str(out / rec.file), out=tmp_path / f"again-{rec.id}", device="cpu", threads=1)
        assert np.array_equal(_wav(folder / rec.file), _wav(out / rec.file))
        assert clips.read(folder / rec.file).guard == rec.guard
    # The guard is part of what makes a clip: its ids differ from an unguarded job's.
    plain = generate.run_job(run, n=3, seconds=0.1, temperatures=["1.0"], out=tmp_path / "plain", device="cpu",
                             threads=1)
    assert {r.id for r in clips.scan(plain)}.isdisjoint({r.id for r in recs})


@pytest.mark.parametrize("kw, words", [
    ({"min_ps": ["1.5"]}, "min-p must be a number in [0, 1), got 1.5"),
    ({"top_ps": ["0"]}, "top-p must be a number in (0, 1], got 0"),
    ({"min_ps": ["0.5:0.1,0.2:0.0"]}, "must increase"),
])
def test_bad_truncation_is_a_one_line_error(run, tmp_path, kw, words):
    with pytest.raises(UserInputError) as e:
        generate.run_job(run, n=1, seconds=0.05, out=tmp_path / "job", device="cpu", **kw)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_command_line_guard_and_truncation_round_trip(run, tmp_path, capsys):
    from inspire.cli import main

    common = ["--device", "cpu", "--threads", "1", "--quiet"]
    assert main(["generate", str(run), "-n", "2", "--seconds", "1", "--min-p", "0.02", "--guard",
                 "--out", str(tmp_path / "job"), *common]) == 0
    recs = clips.scan(tmp_path / "job")
    assert all(r.min_p["spec"] == "0.02" and r.guard["settings"] == GuardConfig().to_dict() for r in recs)
    assert any(r.guard["interventions"] for r in recs)  # an untrained model's noise: the guard stepped in
    rec = next(r for r in recs if r.guard["interventions"])
    assert main(["generate", str(run), "--again", str(tmp_path / "job" / rec.file), "--out", str(tmp_path / "again"),
                 *common]) == 0
    assert np.array_equal(_wav(tmp_path / "again" / rec.file), _wav(tmp_path / "job" / rec.file))


@pytest.mark.parametrize("flags, words", [
    (["--min-p", "1.2"], "min-p must be a number in [0, 1), got 1.2"),
    (["--top-p", "0"], "top-p must be a number in (0, 1], got 0"),
    (["--min-p", "0s:0.1,0s:0.2"], "must increase"),
    (["--again", "x.json", "--guard"], "--guard/--no-guard with --again"),
    (["--again", "x.json", "--min-p", "0.1"], "--min-p with --again"),
])
def test_command_line_bad_input_is_one_line_exit_2(run, tmp_path, capsys, flags, words):
    from inspire.cli import main

    assert main(["generate", str(run), "--out", str(tmp_path / "job"), "--device", "cpu", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err


def test_truncation_combines_with_steering_and_the_guard_refuses_it(tmp_path):
    from test_steer import JOB_CFG, _save_run

    run = _save_run(tmp_path / "labelled", JOB_CFG)
    out = generate.run_job(run, n=4, seconds=0.05, temperatures=["0.9", "1.1"], min_ps=["0.05"],
                           steers=["pads", "drums"], out=tmp_path / "job", device="cpu", threads=1)
    recs = sorted(clips.scan(out), key=lambda r: r.index)
    assert [(r.temperature["spec"], r.steer["spec"], r.min_p["spec"]) for r in recs] == [
        ("0.9", "pads", "0.05"), ("1.1", "pads", "0.05"), ("0.9", "drums", "0.05"), ("1.1", "drums", "0.05")]
    again = generate.again(run, str(out / recs[3].file), out=tmp_path / "again", device="cpu", threads=1)
    assert np.array_equal(_wav(again / recs[3].file), _wav(out / recs[3].file))
    with pytest.raises(UserInputError, match="--guard cannot watch steered clips") as e:
        generate.run_job(run, n=1, seconds=0.05, steers=["pads"], guard=True, out=tmp_path / "g", device="cpu")
    assert "\n" not in str(e.value)
