import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from inspire.audio.dataset import PrepareSettings, prepare
from inspire.cli import main
from inspire.errors import CheckpointError, ConfigError, DatasetError, DiskFullError
from inspire.samplernn import checkpoint
from inspire.samplernn.train import train

# A model small enough to train in a fraction of a second per step.
TINY = {"frame_sizes": "4,2", "dim": "16"}
FAST = {"batch_size": "4", "seq_len": "64", "chunk_seconds": "0.25", "val_seconds": "0.5", "val_every": "3",
        "checkpoint_every": "4", "preview_seconds": "0.05", "keep_checkpoints": "2"}


@pytest.fixture
def run(album, tmp_path):
    run = tmp_path / "run"
    prepare([album], run, PrepareSettings(levels=64), progress=False)
    return run


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _train(run, **kw):
    kw.setdefault("model_overrides", TINY)
    kw.setdefault("train_overrides", FAST)
    return train(run, preset="tiny" if "preset" not in kw else kw.pop("preset"), progress=False, log_every=1, **kw)


def test_training_writes_metrics_checkpoints_previews_and_plot(run):
    assert _train(run, max_steps=9) == 0
    rows = _metrics(run)
    assert [r["step"] for r in rows] == list(range(1, 10))
    assert all({"step", "elapsed_s", "train_bits", "samples_per_s"} <= set(r) for r in rows)
    val = [r for r in rows if "val_bits" in r]
    assert [r["step"] for r in val] == [3, 4, 6, 8, 9]
    assert all(0 < r["baseline_bits"] <= 6 for r in val)  # entropy of 64 levels is at most 6 bits
    ckpts = run / "checkpoints"
    assert (ckpts / "last.pt").exists() and (ckpts / "best.pt").exists()
    assert checkpoint.list_steps(run) == [8, 9]  # step 4 pruned (keep 2)
    ck = checkpoint.load(ckpts / "last.pt")
    assert ck["step"] == 9 and ck["model_config"]["dim"] == 16 and ck["data"]["levels"] == 64
    assert {"optimizer", "position", "rng", "format_version", "train_config"} <= set(ck)
    best = checkpoint.load(ckpts / "best.pt")
    assert best["val_bits"] == pytest.approx(min(r["val_bits"] for r in val if r["step"] in (4, 8, 9)), abs=1e-5)
    assert sorted(p.name for p in (run / "previews").iterdir()) == ["step-00000004", "step-00000008", "step-00000009"]
    assert sorted(p.name for p in (run / "previews/step-00000009").glob("*.wav")) == [
        "temperature-0.80.wav", "temperature-0.95.wav", "temperature-1.10.wav"]
    assert (run / "training.png").stat().st_size > 1000
    assert json.loads((run / "config.json").read_text())["model"]["frame_sizes"] == [4, 2]


def test_training_learns_below_the_memoryless_baseline(run):
    over = dict(FAST, val_every="40", checkpoint_every="40", lr="0.01")
    _train(run, max_steps=40, train_overrides=over, model_overrides={"frame_sizes": "4", "dim": "32"}, previews=False)
    last = [r for r in _metrics(run) if "val_bits" in r][-1]
    assert last["val_bits"] < last["baseline_bits"] - 1.0


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(album, tmp_path):
    runs = []
    for name in ("straight", "resumed"):
        r = tmp_path / name
        prepare([album], r, PrepareSettings(levels=64), progress=False)
        runs.append(r)
    _train(runs[0], max_steps=10, previews=False)
    _train(runs[1], max_steps=5, previews=False)  # stops mid-chunk (2 windows of 4 per chunk... carried state saved)
    _train(runs[1], max_steps=10, previews=False)
    a = [r["train_bits"] for r in _metrics(runs[0])]
    b = [r["train_bits"] for r in _metrics(runs[1])]
    assert len(a) == len(b) == 10
    assert a == b


def test_continuing_says_so_and_refuses_another_architecture(run, capsys):
    _train(run, max_steps=2, previews=False)
    capsys.readouterr()
    _train(run, max_steps=3, previews=False, model_overrides={})
    assert "continuing" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="dim=16, asked 32"):
        _train(run, max_steps=4, model_overrides={"dim": "32"})
    with pytest.raises(CheckpointError, match="preset"):
        _train(run, max_steps=4, preset="small", model_overrides={})


def test_restart_keeps_old_checkpoints_aside(run):
    _train(run, max_steps=2, previews=False)
    _train(run, max_steps=1, previews=False, restart=True)
    attic = [p for p in run.iterdir() if p.name.startswith("restarted-")]
    assert len(attic) == 1 and (attic[0] / "checkpoints/last.pt").exists()
    assert checkpoint.load(run / "checkpoints/last.pt")["step"] == 1


def test_bad_input_is_a_clear_error(run, tmp_path, capsys):
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        _train(run, preset="huge")
    with pytest.raises(ConfigError, match="unknown field 'width'"):
        _train(run, model_overrides={"width": "3"})
    with pytest.raises(ConfigError, match="seq_len 60 must be a multiple"):
        _train(run, train_overrides=dict(FAST, seq_len="60"))
    with pytest.raises(ConfigError, match="frame_sizes"):
        _train(run, model_overrides={"frame_sizes": "0"})
    with pytest.raises(DatasetError, match="no prepared data"):
        _train(tmp_path / "never-prepared")
    assert main(["train", str(tmp_path / "never-prepared")]) == 2
    assert main(["train", str(run), "--dim", "abc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("inspire train: error: dim: cannot read 'abc'")


def test_corrupt_checkpoint_is_named(run, capsys):
    _train(run, max_steps=1, previews=False)
    last = run / "checkpoints/last.pt"
    last.unlink()
    last.write_bytes(b"not a checkpoint")
    assert main(["train", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{last}: corrupt or unreadable checkpoint" in err


def test_full_disk_while_saving_keeps_the_last_good_checkpoint(run, monkeypatch):
    _train(run, max_steps=4, previews=False)
    good = (run / "checkpoints/last.pt").read_bytes()
    import errno

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(DiskFullError, match="disk full"):
        _train(run, max_steps=8, previews=False)
    assert (run / "checkpoints/last.pt").read_bytes() == good
    assert checkpoint.load(run / "checkpoints/last.pt")["step"] == 4
    assert not list((run / "checkpoints").glob(".*tmp*"))


def _cli_train(run, *extra):
    args = [sys.executable, "-m", "inspire", "train", str(run), "--preset", "tiny", "--quiet", "--frame-sizes", "4,2",
            "--dim", "16", *[f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()], *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(run):
    proc = _cli_train(run, "--checkpoint-every=100000", "--val-every=100000", "--no-previews")
    deadline = time.time() + 60
    while not (run / "metrics.jsonl").exists() or not (run / "metrics.jsonl").read_text():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGTERM" in err
    step = checkpoint.load(run / "checkpoints/last.pt")["step"]
    assert step >= 1 and step == _metrics(run)[-1]["step"]


@pytest.mark.slow
def test_checkpoint_survives_kill_9_at_any_moment(run):
    """Kill the trainer at several moments while it checkpoints every step; last.pt always loads."""
    last = run / "checkpoints/last.pt"
    steps = []
    for delay in (0.0, 0.1, 0.4, 1.0):
        start = checkpoint.load(last)["step"] if last.exists() else 0
        launched = time.time()
        proc = _cli_train(run, "--checkpoint-every=1", "--no-previews", "--max-steps=100000")
        deadline = launched + 90
        metrics = run / "metrics.jsonl"
        # Wait until this process has trained a step (it then saves a checkpoint every step).
        while not metrics.exists() or os.stat(metrics).st_mtime < launched or _last_step(run) <= start:
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.01)
        time.sleep(delay)
        proc.kill()
        proc.communicate()
        if start == 0 and not last.exists():
            steps.append(0)  # killed before the first checkpoint was complete: nothing to lose yet
            continue
        steps.append(checkpoint.load(last)["step"])  # never half a file, never gone
    assert steps == sorted(steps) and steps[-1] > steps[0]
    # ...and training continues from the surviving checkpoint.
    assert _cli_train(run, f"--max-steps={steps[-1] + 2}", "--no-previews").wait(timeout=120) == 0
    assert checkpoint.load(last)["step"] == steps[-1] + 2
    assert not [p.name for p in (run / "checkpoints").iterdir() if ".tmp" in p.name]  # leftovers of kills cleaned


def _last_step(run):
    try:
        return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    except (FileNotFoundError, IndexError, ValueError):
        return 0


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_one_process_and_resume_under_one(run, album, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--master-port=29533",
           "-m", "inspire", "train", str(run), "--preset", "tiny", "--quiet", "--frame-sizes", "4,2", "--dim", "16",
           *[f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()],
           "--max-steps", "4", "--no-previews", "--log-every", "1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = _metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]  # one writer: rank 0
    ck = checkpoint.load(run / "checkpoints/last.pt")
    assert ck["step"] == 4 and not any(k.startswith("module.") for k in ck["model"])
    # Two processes on halves of each global batch learn what one process learns on the whole batch.
    single = tmp_path / "single"
    prepare([album], single, PrepareSettings(levels=64), progress=False)
    _train(single, max_steps=4, previews=False)
    assert [r["train_bits"] for r in rows] == pytest.approx([r["train_bits"] for r in _metrics(single)], abs=1e-3)
    # The same run continues in a single process.
    assert _train(run, max_steps=6, previews=False, model_overrides={}) == 0
    assert checkpoint.load(run / "checkpoints/last.pt")["step"] == 6


def test_log_every_must_be_positive(run):
    with pytest.raises(ConfigError, match="--log-every must be at least 1, got 0"):
        train(run, preset="tiny", model_overrides=TINY, train_overrides=FAST, max_steps=1, log_every=0, progress=False)
