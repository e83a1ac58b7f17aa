import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import melody, write
from inspire.audio.dataset import PrepareSettings, load_prepared, prepare
from inspire.cli import main
from inspire.errors import CheckpointError, ConfigError, DatasetError, DiskFullError, UserInputError
from inspire.samplernn import checkpoint, threads
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


def test_a_corrupt_last_checkpoint_is_named_with_the_way_on(run, capsys):
    _train(run, max_steps=1, previews=False)
    last = run / "checkpoints/last.pt"
    last.unlink()
    last.write_bytes(b"not a checkpoint")
    assert main(["train", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"inspire train: error: {last}: not a checkpoint")
    assert "delete it to continue from step-00000001.pt" in err[-1]


def _torch_zip_of_garbage(path):
    torch.save({"a": 1}, path)
    data = bytearray(path.read_bytes())
    data[40:200] = bytes(160)  # the archive's records broken, its magic intact
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("make, says", [
    (lambda p: p.write_text("hello, I am a text file\n"), "not a checkpoint"),
    (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    (lambda p: shutil.copyfile("/etc/passwd", p), "not a checkpoint"),
    (lambda p: torch.save([1, 2, 3], p), "not an inspire checkpoint"),
    (lambda p: torch.save({"x": torch.nn.Linear(2, 2)}, p), "not an inspire checkpoint"),
    (_torch_zip_of_garbage, "corrupt or unreadable checkpoint"),
], ids=["text", "empty", "passwd", "list", "pickled-module", "broken-zip"])
def test_anything_but_a_checkpoint_is_one_clear_line(tmp_path, make, says):
    path = tmp_path / "model.pt"
    make(path)
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    assert str(info.value).startswith(f"{path}: {says}") and "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match=re.escape(says)):
        checkpoint.load_model(path)


def test_generate_given_a_non_checkpoint_says_so_in_one_line(run):
    proc = _cli("generate", run, "--checkpoint", "/etc/passwd", "-n", "1", "--seconds", "0.1", "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "inspire generate: error: /etc/passwd: not a checkpoint (not a file written by torch.save)"]


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


def _cli(*args, timeout=120):
    cmd = [sys.executable, "-m", "inspire", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


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
        # Wait until this process has saved a checkpoint (it then saves one every step).
        while _saved_step(last) <= start:
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.01)
        time.sleep(delay)
        proc.kill()
        proc.communicate()
        steps.append(checkpoint.load(last)["step"])  # never half a file, never gone
    assert steps == sorted(steps) and steps[-1] > steps[0]
    # ...and training continues from the surviving checkpoint.
    assert _cli_train(run, f"--max-steps={steps[-1] + 2}", "--no-previews").wait(timeout=120) == 0
    assert checkpoint.load(last)["step"] == steps[-1] + 2
    assert not [p.name for p in (run / "checkpoints").iterdir() if ".tmp" in p.name]  # leftovers of kills cleaned


def _saved_step(last):
    try:
        return checkpoint.load(last)["step"]
    except CheckpointError:
        return 0


def _last_step(run):
    try:
        return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    except (FileNotFoundError, IndexError, ValueError):
        return 0


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_one_process_and_resume_under_one(run, album, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "inspire", "train", str(run), "--preset", "tiny", "--quiet", "--frame-sizes", "4,2", "--dim", "16",
           *[f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()], "--max-steps", "4", "--no-previews",
           "--log-every", "1"]
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


RELEASE = Path(__file__).parent / "data" / "release-0.1"
RELEASE_TRAIN = {"batch_size": "2", "seq_len": "16", "chunk_seconds": "0.25", "val_seconds": "0.5", "val_every": "2",
                 "checkpoint_every": "100", "preview_seconds": "0", "label_by": "none"}  # as 0.1 trained


@pytest.mark.slow
def test_a_checkpoint_of_release_0_1_loads_and_continues_exactly(album, tmp_path):
    """tests/data/release-0.1 was written by inspire 0.1.0 (make.py there): mid-chunk, with carried state."""
    old = RELEASE / "step-00000003.pt"
    config = json.loads((RELEASE / "config.json").read_text())
    model, ck = checkpoint.load_model(old)
    assert ck["step"] == 3 and ck["position"]["window"] == 3 and ck["carry"] is not None
    assert model.cfg.dim == config["model"]["dim"] == 8 and model.cfg.levels == 16
    logits, _ = model(torch.randint(0, 16, (1, model.lookback + 16)))
    assert logits.shape == (1, 16, 16)
    # A run of the same audio continued from it loses what an uninterrupted run of this code loses.
    runs = []
    for name in ("straight", "continued"):
        r = tmp_path / name
        prepare([album], r, PrepareSettings(levels=16), progress=False)
        runs.append(r)
    assert load_prepared(runs[1]).fingerprint() == config["data"]["fingerprint"]
    (runs[1] / "checkpoints").mkdir()
    shutil.copyfile(old, runs[1] / "checkpoints" / "last.pt")
    train(runs[0], preset="tiny", model_overrides={"frame_sizes": "4,2", "dim": "8"}, train_overrides=RELEASE_TRAIN,
          max_steps=6, progress=False, log_every=1, previews=False)
    assert train(runs[1], max_steps=6, progress=False, log_every=1, previews=False) == 0
    straight = {r["step"]: r["train_bits"] for r in _metrics(runs[0])}
    continued = {r["step"]: r["train_bits"] for r in _metrics(runs[1])}
    assert sorted(continued) == [4, 5, 6]
    assert [continued[s] for s in (4, 5, 6)] == pytest.approx([straight[s] for s in (4, 5, 6)], abs=1e-4)


def test_payload_and_restore_round_trip_a_training_state(tmp_path):
    """The checkpoint module's schema, built and read back the way training does."""
    from inspire.config import ModelConfig, TrainConfig
    from inspire.samplernn.checkpoint import RunSpec, TrainState
    from inspire.samplernn.model import SampleRNN

    spec = RunSpec("tiny", ModelConfig(frame_sizes=(4, 2), dim=16, levels=64), TrainConfig(batch_size=2),
                   {"sample_rate": 16000, "quantization": "mu-law", "levels": 64, "normalize": "peak"})
    torch.manual_seed(0)
    model = SampleRNN(spec.model)
    opt = torch.optim.Adam(model.parameters())
    logits, carry = model(torch.randint(0, 64, (2, model.lookback + 16)))
    logits.sum().backward()
    opt.step()
    state = TrainState(step=7, epoch=1, batch=3, window=2, carry=[h.detach() for h in carry], best_val_bits=4.5,
                       elapsed_s=12.5)
    path = checkpoint.save(tmp_path / "step-00000007.pt", checkpoint.payload(
        spec=spec, state=state, model=model, optimizer=opt, val_bits=4.75, baseline_bits=5.0))
    ck = checkpoint.load(path)
    assert checkpoint.spec(ck, path) == spec and ck["val_bits"] == 4.75 and ck["baseline_bits"] == 5.0
    fresh = SampleRNN(spec.model)
    fresh_opt = torch.optim.Adam(fresh.parameters())
    back = checkpoint.restore(ck, model=fresh, optimizer=fresh_opt, path=path)
    assert (back.step, back.epoch, back.batch, back.window) == (7, 1, 3, 2)
    assert (back.best_val_bits, back.elapsed_s) == (4.5, 12.5)
    assert all(torch.equal(a, b) for a, b in zip(back.carry, state.carry, strict=True))
    weights = zip(fresh.state_dict().values(), model.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in weights)
    assert fresh_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        no_position = {k: v for k, v in ck.items() if k != "position"}
        checkpoint.restore(no_position, model=fresh, optimizer=fresh_opt, path=path)


# ----------------------------------------------------------------------------- runs that met trouble


@pytest.mark.slow
def test_two_trains_on_one_run_the_second_is_refused(run, capsys):
    proc = _cli_train(run, "--checkpoint-every=100000", "--val-every=100000", "--no-previews", "--max-steps=100000",
                      "--log-every=1")
    try:
        deadline = time.time() + 60
        while _last_step(run) < 1:  # the first trainer holds the lock and trains
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.05)
        assert main(["train", str(run), "--quiet", "--max-steps", "5"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"inspire train: error: {run} is being trained by pid {proc.pid} since ")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    steps = [r["step"] for r in _metrics(run)]
    assert steps == list(range(1, len(steps) + 1))  # one writer: nothing interleaved
    assert checkpoint.load(run / "checkpoints/last.pt")["step"] == steps[-1]


@pytest.mark.slow
def test_without_last_and_best_it_continues_from_the_newest_step_file(run, capsys):
    _train(run, max_steps=9, previews=False)  # keeps step files 8 and 9
    (run / "checkpoints/last.pt").unlink()
    (run / "checkpoints/best.pt").unlink()
    checkpoint.step_path(run, 9).write_bytes(b"")  # and the newest is damaged
    capsys.readouterr()
    assert train(run, max_steps=10, progress=False, log_every=1, previews=False) == 0  # no preset, no overrides
    err = capsys.readouterr().err
    assert "skipping" in err and "step-00000009.pt: empty file" in err
    assert "continuing from step-00000008.pt" in err and "new run" not in err
    assert json.loads((run / "config.json").read_text())["preset"] == "tiny"  # not the default preset
    assert [r["step"] for r in _metrics(run)] == list(range(1, 11))  # metrics kept up to step 8, then 9, 10
    ck = checkpoint.load(run / "checkpoints/last.pt")
    assert ck["step"] == 10 and ck["model_config"]["dim"] == 16


@pytest.mark.slow
def test_a_checkpoint_of_another_model_is_refused_naming_both(run, album, tmp_path):
    _train(run, max_steps=2, previews=False)
    other = tmp_path / "other"
    prepare([album], other, PrepareSettings(levels=64), progress=False)
    _train(other, max_steps=1, previews=False, model_overrides={"frame_sizes": "4", "dim": "24"})
    mine = (run / "checkpoints/last.pt").read_bytes()
    (run / "checkpoints/last.pt").unlink()
    shutil.copyfile(other / "checkpoints/last.pt", run / "checkpoints/last.pt")
    with pytest.raises(CheckpointError) as info:
        train(run, max_steps=3, progress=False, previews=False)
    msg = str(info.value)
    assert "frame_sizes 4, dim 24" in msg and "frame_sizes 4,2, dim 16" in msg and "config.json" in msg
    assert (run / "checkpoints/last.pt").read_bytes() != mine  # nothing was touched
    assert len(_metrics(run)) == 2


def test_a_restart_whose_settings_fail_moves_nothing(run):
    _train(run, max_steps=2, previews=False)
    for bad in ({"seq_len": "60"}, {"chunk_seconds": "inf"}):
        with pytest.raises(ConfigError):
            _train(run, max_steps=3, restart=True, train_overrides=dict(FAST, **bad))
    with pytest.raises(ConfigError, match="needs about"):
        _train(run, max_steps=3, restart=True, model_overrides={"dim": "4000000"})
    assert not [p for p in run.iterdir() if p.name.startswith("restarted-")]
    assert _train(run, max_steps=3, previews=False, model_overrides={}) == 0  # plain train still continues
    assert checkpoint.load(run / "checkpoints/last.pt")["step"] == 3




@pytest.mark.slow
def test_bad_values_and_folders_are_one_line_in_a_subprocess(run, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    data_file = tmp_path / "data-is-a-file"
    data_file.mkdir()
    (data_file / "data").write_text("x")
    tiny = ["--preset", "tiny", "--quiet", "--max-steps", "1", "--no-previews"]
    cases = [
        ([run, *tiny, "--chunk-seconds", "inf"], "chunk_seconds must be a finite number, got inf"),
        ([run, *tiny, "--max-minutes", "nan"], "--max-minutes must be a positive number of minutes, got nan"),
        ([run, *tiny, "--dim", "3000000"], "needs about"),
        ([run, *tiny, "--threads", "0"], "--threads must be at least 1"),
        ([a_file, *tiny], f"{a_file}: a file, not a run folder"),
        ([data_file, *tiny], f"{data_file / 'data'}: a file where the prepared-data folder should be"),
    ]
    for args, says in cases:
        proc = _cli("train", *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert lines[0].startswith("inspire train: error: ") and says in lines[0], (args, lines[0])
    assert not (run / "checkpoints").exists()


def test_a_read_only_run_folder_is_one_line(run, monkeypatch):
    import errno

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(run / "checkpoints" / "x.pt"))

    monkeypatch.setattr(torch, "save", read_only)
    with pytest.raises(UserInputError, match=r"cannot write \(Read-only file system\)"):
        _train(run, max_steps=1, previews=False)
    monkeypatch.undo()
    real_open = os.open

    def lock_denied(path, *a, **k):
        if str(path).endswith(".inspire-lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", lock_denied)
    with pytest.raises(UserInputError, match=r"cannot write here \(Read-only file system\)"):
        _train(run, max_steps=1, previews=False)


def test_pure_silence_trains_with_a_warning(tmp_path, capsys):
    for i, secs in enumerate((3.0, 2.5, 2.0)):
        write(tmp_path / "quiet" / f"t{i}.wav", np.zeros(int(secs * 16000), np.float32), 16000)
    run = tmp_path / "run"
    prepare([tmp_path / "quiet"], run, PrepareSettings(levels=64), progress=False)
    capsys.readouterr()
    assert _train(run, max_steps=1, previews=False) == 0
    assert "100.0 % of the training audio" in capsys.readouterr().err


def test_eight_second_files_train_with_the_default_preset(tmp_path, capsys):
    for i in range(3):
        write(tmp_path / "loops" / f"loop{i}.wav", melody(8.0, seed=i), 16000)
    run = tmp_path / "run"
    prepare([tmp_path / "loops"], run, PrepareSettings(), progress=False)
    capsys.readouterr()
    # The small preset (8 s chunks) with a narrow model: one step, validation off.
    assert train(run, model_overrides={"dim": "16"}, train_overrides={"val_seconds": "0.05"}, max_steps=1,
                 progress=False, previews=False) == 0
    assert "chunks shortened from 8.00 s to 7.968 s" in capsys.readouterr().err
    ck = checkpoint.load(run / "checkpoints/last.pt")
    assert ck["preset"] == "small" and ck["train_config"]["chunk_seconds"] == pytest.approx(7.968)
    # Too short for even one window: the message says what works.
    with pytest.raises(DatasetError, match="shorter than one training window .* use --preset tiny"):
        train(run, model_overrides={"dim": "16"}, train_overrides={"seq_len": "262144"}, max_steps=1, restart=True,
              progress=False, previews=False)


@pytest.mark.slow
def test_sigterm_while_previews_render_stops_without_finishing_them(run):
    """The signal lands while step 1's previews render (long ones): they are abandoned, the next
    step is saved, and no validation runs after the signal."""
    proc = _cli_train(run, "--checkpoint-every=1", "--val-every=100000", "--preview-seconds=60", "--max-steps=1000")
    try:
        deadline = time.time() + 90
        while not checkpoint.step_path(run, 1).exists():
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.02)
        time.sleep(0.5)  # well into 3 x 60 s of previews
        assert proc.poll() is None and not list((run / "previews").glob("*/*.wav"))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "SIGTERM" in err
    assert not list((run / "previews").glob("*/*.wav"))  # the previews in progress were dropped
    last = checkpoint.load(run / "checkpoints/last.pt")
    rows = _metrics(run)
    assert last["step"] == rows[-1]["step"] == 2 and last["val_bits"] is None
    assert "val_bits" in rows[0] and "val_bits" not in rows[-1]  # step 1 validated; nothing after the signal


# ----------------------------------------------------------------------------- threads


class _FakeWork:
    """Seconds per call by thread count, which the test changes (load arriving, leaving)."""

    def __init__(self, times):
        self.now, self.times = 0.0, dict(times)

    def clock(self):
        return self.now

    def __call__(self):
        self.now += self.times[torch.get_num_threads()]


def test_the_tuner_picks_the_fastest_count_and_follows_the_load():
    before = torch.get_num_threads()
    try:
        work = _FakeWork({4: 1.0, 2: 1.5, 1: 2.5})  # idle: all threads fastest
        tuner = threads.Tuner([4, 2, 1], probe=3, every_s=100.0, clock=work.clock)
        for _ in range(20):
            tuner.run(work)
        assert tuner.choice == 4 and torch.get_num_threads() == 4
        work.times = {4: 8.0, 2: 6.0, 1: 3.0}  # a busy process arrives: four threads crawl
        for _ in range(12):
            tuner.run(work)
        assert tuner.choice == 1 and tuner.changes == 1
        work.times = {4: 1.0, 2: 1.5, 1: 2.5}  # it leaves: found again at the next timed probe
        for _ in range(200):
            tuner.run(work)
        assert tuner.choice == 4 and tuner.changes == 2
        fixed = threads.Tuner([3], clock=work.clock)
        work.times = {3: 1.0}
        fixed.run(work)
        assert fixed.choice is None and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_training_at_a_given_thread_count_restores_the_callers(run, monkeypatch):
    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    before = torch.get_num_threads()
    assert _train(run, max_steps=3, previews=False, threads=1) == 0
    assert 1 in seen and set(seen) <= {1, before} and torch.get_num_threads() == before


def test_progress_into_a_log_is_plain_lines(run, capsys):
    capsys.readouterr()
    assert train(run, preset="tiny", model_overrides=TINY, train_overrides=FAST, max_steps=5, log_every=1,
                 previews=False, progress=True) == 0
    err = capsys.readouterr().err  # not a terminal: no bar frames, a last line instead
    assert "\r" not in err
    assert any(line.startswith("training: 5/5 step (100%), done in") for line in err.splitlines()), err
