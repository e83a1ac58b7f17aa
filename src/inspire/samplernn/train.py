"""Training SampleRNN: a plain, visible loop a musician can leave running for days.

batch -> loss -> step -> (validate) -> (checkpoint + previews), with truncated BPTT: a batch of
chunks (8 s by default) is cut into windows of `seq_len` samples; the RNN state carries from one
window of a chunk to the next and resets (to the learned initial state) at the next chunk.

Resumable to the sample: checkpoints hold the optimizer, the data position (epoch, batch,
window) and the carried RNN state (`checkpoint.TrainState`), and the data order is a pure
function of (seed, epoch), so a continued run's losses equal an uninterrupted run's. Under
torchrun every process trains a contiguous slice of each global batch (DDP: gloo on CPU, nccl on
GPUs, one each; gloo where processes share a GPU) and only rank 0 writes (and holds the run folder's lock).

`train()` checks everything (arguments, run folder, data, configs, memory) before it moves or
writes anything, then runs `_loop` over explicit state. Ctrl-C or SIGTERM stops within a step:
the checkpoint is saved, validation and previews are skipped. On a CPU the thread count is
measured and re-measured while training (`threads.Tuner`): a busy machine gets fewer threads.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from inspire.audio import labels as labels_mod
from inspire.audio.dataset import PreparedData, load_prepared
from inspire.audio.quantize import silence_level
from inspire.config import (
    PRESETS,
    ModelConfig,
    TrainConfig,
    check_compatible,
    get_preset,
    parse_field,
    with_overrides,
)
from inspire.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    DiskFullError,
    UserInputError,
)
from inspire.files import atomic_path, write_text
from inspire.locks import job_lock
from inspire.progress import Progress
from inspire.samplernn import checkpoint
from inspire.samplernn import threads as threads_mod
from inspire.samplernn.checkpoint import RunSpec, TrainState
from inspire.samplernn.device import dist_backend, pick_device, process_gpu
from inspire.samplernn.model import SampleRNN
from inspire.timefmt import clock

LN2 = math.log(2.0)
PLOT_EVERY_S = 20.0  # training.png is redrawn at a validation at most this often (and at the end)
SILENT_SHARE = 0.99  # warn when this much of the training audio is digital silence
PREVIEW_BLOCK = 400  # samples per preview block: the stop flag and the thread count are checked between blocks


# ----------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Dist:
    """Where this process sits in a torchrun job (rank 0 of 1 when run directly)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Dist:
        env = os.environ
        return cls(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def max(self, value: int) -> int:
        """The largest of every process's value (so all stop at the same step, for the same cause)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.int64)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return int(t.item())

    def mean(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


# ----------------------------------------------------------------------------- data order


class ChunkPlan:
    """Which chunks of the training audio each step sees: a pure function of (seed, epoch).

    Each epoch shifts the chunk grid of every training stretch by a random offset (so no audio
    is always cut at the same place) and shuffles the chunks. A global batch is `batch_size`
    chunks; process r of W takes the r-th contiguous slice of it.

    With a labelling (a model trained with labels), every chunk also carries the label of each
    of its samples (`labels`), except a share `unlabelled_share` of chunks, chosen per epoch from
    its own random stream (so the data order is that of an unlabelled run), which carry "no
    label" throughout: the same model then also learns to play unsteered.
    """

    def __init__(self, prep: PreparedData, *, chunk_len: int, lookback: int, batch_size: int, seed: int,
                 labelling: labels_mod.Labelling | None = None, unlabelled_share: float = 0.0):
        self.prep, self.chunk_len, self.lookback = prep, chunk_len, lookback
        self.batch_size, self.seed = batch_size, seed
        self.labelling = labelling if labelling is not None and labelling.names else None
        self.unlabelled_share = unlabelled_share
        self.segments = [(t, s) for t, s in prep.segments("train") if s.end - s.start >= chunk_len + lookback]
        if not self.segments:
            longest = max((s.end - s.start for _, s in prep.segments("train")), default=0)
            sr = prep.settings.sample_rate
            raise DatasetError(
                f"{prep.run_dir}: no training stretch is longer than one chunk "
                f"({(chunk_len + lookback) / sr:.2f} s; the longest is {longest / sr:.2f} s): lower --chunk-seconds"
            )
        self._cache: tuple[int, list] | None = None

    def epoch_chunks(self, epoch: int) -> list[tuple[int, int]]:
        """(segment index, first predicted sample) for every chunk of the epoch, in order."""
        if self._cache and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        chunks = []
        for i, (_, seg) in enumerate(self.segments):
            room = seg.end - seg.start - self.lookback
            n = room // self.chunk_len
            offset = int(rng.integers(0, room - n * self.chunk_len + 1))
            chunks += [(i, seg.start + self.lookback + offset + j * self.chunk_len) for j in range(n)]
        order = rng.permutation(len(chunks))
        chunks = [chunks[k] for k in order]
        self._cache = (epoch, chunks)
        return chunks

    def _unlabelled(self, epoch: int) -> np.ndarray:
        """(chunks,) bool: which of the epoch's chunks train with "no label"."""
        n = len(self.epoch_chunks(epoch))
        return np.random.default_rng([self.seed, epoch, 1]).random(n) < self.unlabelled_share

    def labels(self, epoch: int, index: int, dist: Dist) -> np.ndarray | None:
        """(batch_size / world, chunk_len) int64 label rows of the predicted samples of this
        process's chunks (0: no label), or None for a run without labels."""
        if self.labelling is None:
            return None
        chunks, drop = self.epoch_chunks(epoch), self._unlabelled(epoch)
        per = self.batch_size // dist.world
        rows = []
        for j in range(dist.rank * per, (dist.rank + 1) * per):
            k = (index * self.batch_size + j) % len(chunks)
            seg_i, start = chunks[k]
            if drop[k]:
                rows.append(np.zeros(self.chunk_len, dtype=np.int64))
            else:
                rows.append(self.labelling.rows(self.segments[seg_i][0].id, start, start + self.chunk_len))
        return np.stack(rows)

    def batches_per_epoch(self, epoch: int) -> int:
        return max(1, len(self.epoch_chunks(epoch)) // self.batch_size)

    def batch(self, epoch: int, index: int, dist: Dist) -> np.ndarray:
        """(batch_size / world, lookback + chunk_len) int64 classes for this process."""
        chunks = self.epoch_chunks(epoch)
        per = self.batch_size // dist.world
        rows = []
        for j in range(dist.rank * per, (dist.rank + 1) * per):
            seg_i, start = chunks[(index * self.batch_size + j) % len(chunks)]  # wraps if fewer chunks than a batch
            track, _ = self.segments[seg_i]
            arr = self.prep.array(track)
            rows.append(np.asarray(arr[start - self.lookback : start + self.chunk_len], dtype=np.int64))
        return np.stack(rows)


def validation_pieces(prep: PreparedData, *, chunk_len: int, seq_len: int, lookback: int,
                      max_samples: int) -> list[np.ndarray]:
    """Held-out audio cut into pieces (lookback + k * seq_len samples), evenly chosen up to
    `max_samples` predicted samples. Deterministic."""
    return [np.asarray(arr[pos - lookback : pos + n], dtype=np.int64)
            for _, pos, n, arr in _validation_stretches(prep, chunk_len=chunk_len, seq_len=seq_len, lookback=lookback,
                                                         max_samples=max_samples)]


def validation_labels(prep: PreparedData, labelling: labels_mod.Labelling, *, chunk_len: int, seq_len: int,
                      lookback: int, max_samples: int) -> list[np.ndarray]:
    """The label rows of the predicted samples of each of `validation_pieces` (0: no label,
    e.g. a held-out track whose label nothing trained)."""
    return [labelling.rows(track.id, pos, pos + n)
            for track, pos, n, _ in _validation_stretches(prep, chunk_len=chunk_len, seq_len=seq_len, lookback=lookback,
                                                           max_samples=max_samples)]


def _validation_stretches(prep: PreparedData, *, chunk_len: int, seq_len: int, lookback: int, max_samples: int) -> list:
    """(track, first predicted sample, predicted samples, track array) of each validation piece."""
    pieces = []
    for track, seg in prep.segments("val"):
        arr = prep.array(track)
        pos = seg.start + lookback
        while pos + seq_len <= seg.end:
            n = min(chunk_len, (seg.end - pos) // seq_len * seq_len)
            pieces.append((track, pos, n, arr))
            pos += n
    total = sum(p[2] for p in pieces)
    if total > max_samples:
        keep = max(1, round(len(pieces) * max_samples / total))
        idx = np.linspace(0, len(pieces) - 1, keep).round().astype(int)
        pieces = [pieces[i] for i in sorted(set(idx.tolist()))]
    return pieces


def memoryless_bits(pieces: list[np.ndarray], *, lookback: int, levels: int) -> float:
    """Entropy (bits) of the quantized values: the NLL of a model that knows nothing of context."""
    counts = np.zeros(levels, dtype=np.float64)
    for p in pieces:
        counts += np.bincount(p[lookback:], minlength=levels)
    prob = counts[counts > 0] / counts.sum()
    return float(-(prob * np.log2(prob)).sum())


@torch.no_grad()
def evaluate(model: SampleRNN, pieces: list[np.ndarray], *, seq_len: int, batch_size: int, device,
             stop: Callable[[], bool] = lambda: False, tuner: threads_mod.Tuner | None = None,
             labels: list[np.ndarray] | None = None) -> float | None:
    """Mean NLL in bits per sample over the validation pieces (teacher forcing, state carried);
    None if `stop()` turned true on the way (checked between windows). `labels`: the label rows
    of each piece's predicted samples (a model trained with labels; None: "no label")."""
    model.eval()
    lb, total_nats, total_n = model.lookback, 0.0, 0
    by_len: dict[int, list[int]] = {}
    for k, p in enumerate(pieces):
        by_len.setdefault(len(p), []).append(k)
    try:
        for length, group in sorted(by_len.items()):
            for i in range(0, len(group), batch_size):
                ks = group[i : i + batch_size]
                x = torch.from_numpy(np.stack([pieces[k] for k in ks])).to(device)
                rows = None if labels is None else torch.from_numpy(np.stack([labels[k] for k in ks])).to(device)
                state = None
                for w in range(0, length - lb, seq_len):
                    if stop():
                        return None
                    window = x[:, w : w + lb + seq_len]
                    lab = None if rows is None else rows[:, w : w + seq_len]

                    def forward(window=window, state=state, lab=lab):
                        return model(window, state, labels=lab)

                    logits, state = forward() if tuner is None else tuner.run(forward, units=window.shape[0])
                    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), window[:, lb:].reshape(-1),
                                          reduction="sum")
                    total_nats += float(nll)
                    total_n += window[:, lb:].numel()
    finally:
        model.train()
    return total_nats / max(total_n, 1) / LN2


# ----------------------------------------------------------------------------- run folder


def _check_run_folder(run_dir: Path) -> None:
    """A clear line for a run folder that is a file, or whose data/ is (before the lock, which
    would say less)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserInputError(f"{run_dir}: a file, not a run folder (make one: inspire prepare SOURCE... --run DIR)")
    data = run_dir / "data"
    if data.exists() and not data.is_dir():
        raise DatasetError(f"{data}: a file where the prepared-data folder should be; "
                           "run `inspire prepare` into a new --run folder")
    if not run_dir.exists():
        raise DatasetError(f"{run_dir}: no prepared data (run `inspire prepare SOURCE... --run {run_dir}` first)")


def _move_aside(run_dir: Path) -> Path | None:
    """--restart: keep the old run's checkpoints, previews and metrics in a dated folder."""
    names = ["checkpoints", "previews", "metrics.jsonl", "training.png", "config.json"]
    present = [n for n in names if (run_dir / n).exists()]
    if not present:
        return None
    attic = run_dir / f"restarted-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    attic.mkdir()
    for n in present:
        os.replace(run_dir / n, attic / n)
    return attic


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume: drop lines logged after the checkpoint (and any torn last line)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    write_text(path, "".join(line + "\n" for line in keep))


def plot_metrics(metrics_path: Path, out: Path, *, baseline: float | None) -> None:
    """training.png: train and validation bits per sample against steps (no pyplot: no global
    backend switch in the caller's process)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [json.loads(line) for line in metrics_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    tr = [(r["step"], r["train_bits"]) for r in rows if "train_bits" in r]
    va = [(r["step"], r["val_bits"]) for r in rows if "val_bits" in r]
    if tr:
        ax.plot(*zip(*tr, strict=True), label="train", color="#4c72b0", lw=1)
    if va:
        ax.plot(*zip(*va, strict=True), "o-", label="validation", color="#dd8452", ms=3)
    if baseline is not None:
        ax.axhline(baseline, ls="--", color="gray", lw=1, label=f"memoryless {baseline:.2f}")
    ax.set_xlabel("step")
    ax.set_ylabel("bits per sample")
    ax.set_title("inspire training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp)


def render_previews(model: SampleRNN, out_dir: Path, *, cfg: TrainConfig, data: dict, seed: int,
                    stop: Callable[[], bool] = lambda: False, tuner: threads_mod.Tuner | None = None) -> list[Path]:
    """A few short clips from the current weights, one per preview temperature. Nothing is
    written if `stop()` turns true while they render (checked between blocks)."""
    from inspire.audio.io import write_audio
    from inspire.audio.quantize import dequantize
    from inspire.samplernn import sample

    n = int(cfg.preview_seconds * data["sample_rate"])
    temps = list(cfg.preview_temperatures)
    if n <= 0 or not temps:
        return []
    gen = SampleRNN(model.cfg)  # a fresh copy: parametrized modules do not deep-copy
    gen.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    gen.fold_weight_norm().eval()
    seeds = [seed + i for i in range(len(temps))]
    blocks = sample.stream(gen, n_samples=n, temperature=torch.tensor(temps), seeds=seeds, block=PREVIEW_BLOCK)
    parts = []
    while not stop():
        block = next(blocks, None) if tuner is None else tuner.run(lambda: next(blocks, None), units=PREVIEW_BLOCK)
        if block is None:
            break
        parts.append(block)
    else:
        return []
    classes = torch.cat(parts, dim=1)
    paths = []
    for temp, row in zip(temps, classes.numpy(), strict=True):
        audio = dequantize(row, kind=data["quantization"], levels=data["levels"])
        paths.append(write_audio(out_dir / f"temperature-{temp:.2f}.wav", audio, data["sample_rate"]))
    return paths


# ----------------------------------------------------------------------------- setting up


class _StopFlag:
    """Ctrl-C / SIGTERM ask the loop to stop after the current step (validation and previews in
    progress are abandoned); a second Ctrl-C aborts."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a test thread)
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = signal.Signals(signum).name

    def __call__(self) -> bool:
        return self.reason is not None

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _check_arguments(*, max_steps: int | None, max_minutes: float | None, log_every: int, threads: int | None) -> None:
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"--max-steps must be at least 1, got {max_steps}")
    if max_minutes is not None and not max_minutes > 0:  # also refuses nan
        raise ConfigError(f"--max-minutes must be a positive number of minutes, got {max_minutes}")
    if log_every < 1:
        raise ConfigError(f"--log-every must be at least 1, got {log_every}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")


def _resolve_spec(run_dir: Path, prep: PreparedData, resume: tuple[Path, dict] | None, *, preset: str | None,
                  model_overrides: dict, train_overrides: dict) -> RunSpec:
    """The run's configs: a new run's from the preset and overrides, a continued run's from its
    checkpoint (which may take new training settings, never a new architecture)."""
    if "levels" in model_overrides:
        raise ConfigError("levels comes from the prepared data (inspire prepare --levels), not from train")
    data = {**prep.settings.fixed(), "fingerprint": prep.fingerprint()}
    if resume is None:
        p = get_preset(preset or "small")
        train_cfg = with_overrides(p.train, train_overrides)
        labelling = labels_mod.resolve(prep, train_cfg.label_by)
        base = replace(p.model, levels=prep.settings.levels, labels=labelling.names)
        model_cfg = with_overrides(base, model_overrides)
        spec = RunSpec(p.name, model_cfg, train_cfg, data, labelling.to_json() if labelling.names else None)
    else:
        path, ckpt = resume
        old = checkpoint.spec(ckpt, path)
        if preset is not None and preset != old.preset:
            raise CheckpointError(
                f"{path} was trained with preset {old.preset!r}, not {preset!r}: "
                "leave --preset out to continue, or add --restart to start over"
            )
        for k, v in model_overrides.items():
            if getattr(old.model, k) != parse_field(ModelConfig, k, v):
                raise CheckpointError(
                    f"{path} has {k}={getattr(old.model, k)}, asked {v}: a checkpoint cannot change its architecture; "
                    "add --restart to start over"
                )
        if old.data.get("levels") != prep.settings.levels or old.data.get("sample_rate") != prep.settings.sample_rate:
            raise CheckpointError(f"{path} was trained on data with other settings than {run_dir}/data")
        train_cfg = with_overrides(old.train, train_overrides)
        spec = RunSpec(old.preset, old.model, train_cfg, data, _labels_on_resume(path, prep, old, train_cfg))
    check_compatible(spec.model, spec.train)
    t = spec.train
    for name in ("chunk_seconds", "lr", "preview_seconds"):
        if not math.isfinite(getattr(t, name)):
            raise ConfigError(f"{name} must be a finite number, got {getattr(t, name)}")
    if not all(math.isfinite(x) for x in t.preview_temperatures):
        raise ConfigError(f"preview temperatures must be finite, got {t.preview_temperatures}")
    return spec


def _labels_on_resume(path: Path, prep: PreparedData, old: RunSpec, train_cfg: TrainConfig) -> dict | None:
    """A continued run keeps the labelling it started with (stored in its checkpoint, so a moved
    CSV or added tracks change nothing); asking for another one must give the same labels."""
    if train_cfg.label_by == old.train.label_by and (old.labels or not old.model.labels):
        return old.labels
    new = labels_mod.resolve(prep, train_cfg.label_by)
    if new.names != old.model.labels:
        have = ", ".join(old.model.labels) if old.model.labels else "no labels"
        want = ", ".join(new.names) if new.names else "no labels"
        raise CheckpointError(
            f"{path} was trained with {have} (--label-by {old.train.label_by}); "
            f"--label-by {train_cfg.label_by} gives {want}: "
            "a model cannot change its labels; add --restart to start over"
        )
    return new.to_json() if new.names else None


def _chunk_len(spec: RunSpec, sample_rate: int) -> int:
    """Samples per chunk: chunk_seconds rounded to whole windows."""
    seq = spec.train.seq_len
    return max(1, round(spec.train.chunk_seconds * sample_rate / seq)) * seq


def _fit_chunks(spec: RunSpec, prep: PreparedData, notes: list[str]) -> RunSpec:
    """Shorten the chunk when no training stretch holds one (a folder of exactly 8-second files
    and 8-second chunks: each chunk also needs the lookback before it); note stretches too short
    to be trained on."""
    sr, seq, lb = prep.settings.sample_rate, spec.train.seq_len, spec.model.lookback
    lengths = [seg.end - seg.start for _, seg in prep.segments("train")]
    longest = max(lengths, default=0)
    chunk = _chunk_len(spec, sr)
    if chunk + lb > longest:
        fit = (longest - lb) // seq * seq
        if fit < seq:
            works = [p.name for p in PRESETS.values() if p.train.seq_len + p.model.lookback <= longest]
            hint = f"use --preset {works[0]}, or lower --seq-len" if works else "lower --seq-len and --frame-sizes"
            raise DatasetError(
                f"{prep.run_dir}: the longest training stretch ({longest / sr:.3f} s) is shorter than one training "
                f"window ({(seq + lb) / sr:.3f} s: seq_len {seq} + {lb} samples of context): {hint}, "
                "or prepare longer audio"
            )
        notes.append(f"chunks shortened from {chunk / sr:.2f} s to {fit / sr:.3f} s to fit the longest training "
                     f"stretch ({longest / sr:.2f} s; each chunk also needs {lb} samples of context before it)")
        spec = replace(spec, train=replace(spec.train, chunk_seconds=fit / sr))
        chunk = fit
    short = [n for n in lengths if n < chunk + lb]
    if short:
        notes.append(f"warning: {len(short)} of {len(lengths)} training stretches ({sum(short) / sr:.1f} s of "
                     f"{sum(lengths) / sr:.1f} s) are shorter than a chunk ({(chunk + lb) / sr:.2f} s) and are not "
                     "trained on: lower --chunk-seconds to use them")
    return spec


def _check_silence(prep: PreparedData, notes: list[str]) -> None:
    """A dataset of digital silence trains a model of silence: say so before hours go into it."""
    sil = silence_level(kind=prep.settings.quantization, levels=prep.settings.levels)
    silent = total = 0
    for track, seg in prep.segments("train"):
        arr = np.asarray(prep.array(track)[seg.start : seg.end])
        silent += int(np.count_nonzero(arr == sil))
        total += arr.size
    if total and silent >= SILENT_SHARE * total:
        notes.append(f"warning: {100 * silent / total:.1f} % of the training audio in {prep.data_dir} is digital "
                     "silence: the model will learn silence; prepare audio with sound in it")


def _available_memory(dev: torch.device) -> int | None:
    """Bytes the device can still give, or None if unknown."""
    if dev.type == "cuda":
        return int(torch.cuda.mem_get_info(dev)[0])
    if dev.type != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def _check_memory(spec: RunSpec, *, batch: int, dev: torch.device) -> None:
    """Refuse, with the figures, a model and batch that cannot fit, before allocating anything
    (on Linux an allocation past the memory often succeeds and the kernel kills us later)."""
    m = spec.model
    try:
        with torch.device("meta"):  # shapes only: no memory
            n_params = sum(p.numel() for p in SampleRNN(m).parameters())
    except (RuntimeError, ValueError, OverflowError) as exc:
        first = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise ConfigError(f"dim {m.dim}: a model this size cannot be built ({first})") from None
    # Weights, gradients and Adam's two moments (fp32), and one step's largest activations: per
    # predicted sample the MLP's and the bottom tier's dim-wide vectors and the logits.
    need = 16 * n_params + 4 * batch * spec.train.seq_len * (6 * m.dim + 3 * m.levels)
    have = _available_memory(dev)
    if have is not None and need > have:
        raise ConfigError(
            f"dim {m.dim}, batch {batch}: the model has {n_params:,} parameters and needs about {_gb(need)} to train "
            f"(weights, gradients, Adam state and one step's activations); {dev} has {_gb(have)} available: "
            "lower --dim or --batch-size"
        )


def _out_of_memory(exc: BaseException, spec: RunSpec, dev: torch.device) -> ConfigError | None:
    """A clear error for an allocation that failed after all (the estimate is a lower bound)."""
    text = str(exc)
    if isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in text or "out of memory" in text.lower():
        return ConfigError(f"out of memory on {dev} training dim {spec.model.dim} at batch {spec.train.batch_size} "
                           f"({text.splitlines()[0][:120]}): lower --dim or --batch-size")
    return None


@dataclass
class _Session:
    """What one `train` invocation resolved before its first step."""

    run_dir: Path
    spec: RunSpec
    plan: ChunkPlan
    val: list[np.ndarray]
    val_labels: list[np.ndarray] | None  # label rows of each validation piece (a model trained with labels)
    baseline: float | None
    dev: torch.device
    dist: Dist
    max_steps: int | None
    deadline: float | None  # time.monotonic() to stop at
    log_every: int
    previews: bool
    log: Callable[[str], None]
    step_tuner: threads_mod.Tuner | None  # None: not on a CPU (or a fixed count under DDP)
    val_tuner: threads_mod.Tuner | None
    preview_tuner: threads_mod.Tuner | None

    @property
    def windows(self) -> int:
        """Windows per chunk."""
        return self.plan.chunk_len // self.spec.train.seq_len

    def lr_at(self, step: int) -> float:
        t = self.spec.train
        if t.lr_decay == "cosine" and self.max_steps:
            frac = min(1.0, step / self.max_steps)
            return t.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        return t.lr


def train(
    run_dir: str | Path,
    *,
    preset: str | None = None,
    model_overrides: dict | None = None,
    train_overrides: dict | None = None,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    device: str = "auto",
    restart: bool = False,
    log_every: int = 10,
    previews: bool = True,
    progress: bool = True,
    threads: int | None = None,
) -> int:
    """Train (or continue training) the run's model. Returns an exit code.

    `threads`: CPU threads (None: measured at the start and again while training)."""
    run_dir = Path(run_dir)
    _check_arguments(max_steps=max_steps, max_minutes=max_minutes, log_every=log_every, threads=threads)
    _check_run_folder(run_dir)
    dist = Dist.from_env()
    threads_before = torch.get_num_threads()
    try:
        with job_lock(run_dir, "trained") if dist.main else contextlib.nullcontext(), _StopFlag() as flag:
            return _train(run_dir, dist, flag, preset=preset, model_overrides=model_overrides or {},
                          train_overrides=train_overrides or {}, max_steps=max_steps, max_minutes=max_minutes,
                          device=device, restart=restart, log_every=log_every, previews=previews, progress=progress,
                          threads=threads)
    except OSError as exc:
        raise _write_error(exc, run_dir) from exc
    finally:
        torch.set_num_threads(threads_before)
        if dist.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _write_error(exc: OSError, run_dir: Path) -> Exception:
    """One line for a run folder that cannot be written (read-only, no permission, full)."""
    where = exc.filename or run_dir
    if exc.errno == errno.ENOSPC:
        return DiskFullError(f"{where}: disk full while writing; the previous checkpoint is intact")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT):
        return UserInputError(f"{where}: cannot write ({exc.strerror}); train needs a writable run folder")
    return exc


def _train(run_dir: Path, dist: Dist, flag: _StopFlag, *, preset, model_overrides, train_overrides, max_steps,
           max_minutes, device, restart, log_every, previews, progress, threads) -> int:
    log = (lambda msg: print(msg, file=sys.stderr)) if dist.main else (lambda msg: None)
    prep = load_prepared(run_dir)
    one_gpu_each = dist.world > 1 and device in ("auto", "cuda") and torch.cuda.is_available()
    dev = process_gpu(dist.local_rank) if one_gpu_each else pick_device(device)
    if dev.type == "cuda":  # tf32 matmuls and cuDNN RNN kernels: 390 against 51 TFLOP/s on an H200 (bench_gpu)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if dist.world > 1 and not torch.distributed.is_initialized():
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world))
        backend = dist_backend(dev, local_world)
        if dev.type == "cuda" and backend == "gloo":
            log(f"{local_world} processes share {torch.cuda.device_count()} GPU(s): DDP over gloo (NCCL needs one GPU "
                "per process)")
        torch.distributed.init_process_group(backend)

    # Everything is checked before anything is moved or written.
    notes: list[str] = []  # said once everything has been checked
    resume = None if restart else checkpoint.find_resume(run_dir, log=notes.append)
    spec = _resolve_spec(run_dir, prep, resume, preset=preset, model_overrides=model_overrides,
                         train_overrides=train_overrides)
    if spec.train.batch_size % dist.world:
        raise ConfigError(f"batch_size {spec.train.batch_size} must be divisible by the {dist.world} processes")
    if spec.train.lr_decay == "cosine" and max_steps is None:
        raise ConfigError("lr_decay cosine needs --max-steps (the schedule's length)")
    spec = _fit_chunks(spec, prep, notes)
    sr, lb = prep.settings.sample_rate, spec.model.lookback
    labelling = labels_mod.Labelling.from_json(spec.labels) if spec.model.labels else None
    plan = ChunkPlan(prep, chunk_len=_chunk_len(spec, sr), lookback=lb, batch_size=spec.train.batch_size,
                     seed=spec.train.seed, labelling=labelling, unlabelled_share=spec.train.unlabelled_share)
    val_kw = dict(chunk_len=plan.chunk_len, seq_len=spec.train.seq_len, lookback=lb,
                  max_samples=int(min(spec.train.val_seconds * sr, 2**62)))
    val = validation_pieces(prep, **val_kw)
    val_labels = None if labelling is None else validation_labels(prep, labelling, **val_kw)
    if labelling is not None:
        secs = labelling.seconds(prep)
        notes.append(f"labels ({spec.train.label_by}; {spec.train.unlabelled_share:.0%} of chunks unlabelled): "
                     + ", ".join(f"{n} ({clock(secs[n])})" for n in labelling.names))
    _check_memory(spec, batch=spec.train.batch_size // dist.world, dev=dev)
    _check_silence(prep, notes)
    if not val:
        notes.append("warning: the validation audio is too short to evaluate; best.pt will follow last.pt")
    for note in notes:
        log(note)

    if restart and dist.main:
        attic = _move_aside(run_dir)
        if attic:
            log(f"restart: the previous run's checkpoints and metrics are kept in {attic}")
    cdir = checkpoint.checkpoint_dir(run_dir)
    if dist.main and cdir.is_dir():
        for stale in cdir.glob(".*.tmp*"):  # half-written files of a process killed mid-save
            stale.unlink(missing_ok=True)
    dist.barrier()

    torch.manual_seed(spec.train.seed)
    try:
        model = SampleRNN(spec.model).to(dev)
    except (RuntimeError, MemoryError) as exc:
        raise (_out_of_memory(exc, spec, dev) or exc) from exc
    opt = torch.optim.Adam(model.parameters(), lr=spec.train.lr)
    if resume is None:
        state = TrainState()
        log(f"new run in {run_dir}: preset {spec.preset}, {sum(p.numel() for p in model.parameters()):,} parameters")
    else:
        path, ckpt = resume
        state = checkpoint.restore(ckpt, model=model, optimizer=opt, path=path)
        if state.window >= plan.chunk_len // spec.train.seq_len:  # the chunk was shortened since: start the next one
            state.window, state.carry = 0, None
        if state.carry is not None:
            per = spec.train.batch_size // dist.world
            state.carry = [s.narrow(-2, dist.rank * per, per).contiguous().to(dev) for s in state.carry]
        log(f"continuing {run_dir} from step {state.step} ({path})")
        if max_steps is not None and state.step >= max_steps:
            log(f"the run is already at step {state.step} (--max-steps {max_steps}); nothing to do")
            return 0
    if dist.main:
        checkpoint.write_run_config(run_dir, spec)
        _truncate_metrics(run_dir / "metrics.jsonl", state.step)

    tuners: list[threads_mod.Tuner | None] = [None, None, None]
    if dev.type == "cpu":
        counts = [threads] if threads else [torch.get_num_threads()] if dist.world > 1 else threads_mod.candidates()
        tuners = [threads_mod.Tuner(counts) for _ in range(3)]
    baseline = memoryless_bits(val, lookback=lb, levels=spec.model.levels) if val else None
    deadline = time.monotonic() + max_minutes * 60 if max_minutes else None
    session = _Session(run_dir, spec, plan, val, val_labels, baseline, dev, dist, max_steps, deadline, log_every,
                       previews and spec.train.preview_seconds > 0, log, *tuners)
    try:
        last_val, reason = _loop(session, model, opt, state, flag, progress=progress)
    except (RuntimeError, MemoryError) as exc:
        raise (_out_of_memory(exc, spec, dev) or exc) from exc
    if dist.main:
        log(f"stopped at step {state.step} ({reason}); run `inspire train {run_dir}` to continue")
        print(f"last checkpoint: {cdir / 'last.pt'}")
        if (cdir / "best.pt").exists():
            best = state.best_val_bits
            said = f" (validation {best:.3f} bits/sample)" if best is not None else ""
            print(f"best checkpoint: {cdir / 'best.pt'}{said}")
        if last_val is not None:
            print(f"validation: {last_val:.3f} bits/sample; memoryless baseline {session.baseline:.3f}")
    return 0


# ----------------------------------------------------------------------------- the loop


def _loop(s: _Session, model: SampleRNN, opt: torch.optim.Optimizer, state: TrainState, flag: _StopFlag, *,
          progress: bool) -> tuple[float | None, str]:
    """Train until a limit or a signal; return the last validation figure and why it stopped.

    One step: the next window of the current batch of chunks (the RNN state carried from the
    previous window), loss, backward, clip, Adam. Then, on their schedules: a metrics row,
    validation, a checkpoint with previews. `state` is advanced in place."""
    dist, t, seq, lb, levels = s.dist, s.spec.train, s.spec.train.seq_len, s.spec.model.lookback, s.spec.model.levels
    net = model
    if dist.world > 1:
        # The learned initial state is used only on a chunk's first window: some steps leave it unused.
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[s.dev.index] if s.dev.type == "cuda" else None, find_unused_parameters=True
        )
    metrics_f = open(s.run_dir / "metrics.jsonl", "a", encoding="utf-8") if dist.main else None  # closed below
    bar = None
    if progress and dist.main:  # a bar on a terminal, a line every few seconds in a log
        bar = Progress(total=(s.max_steps - state.step) if s.max_steps else None, desc="training", unit="step")
    session_start, elapsed0 = time.monotonic(), state.elapsed_s
    x_chunk = lab_chunk = None
    log_nats, log_n, log_t, log_samples = 0.0, 0, time.monotonic(), 0
    last_val: float | None = None
    last_plot = -math.inf
    reason = None

    def one_step(x: torch.Tensor, lab: torch.Tensor | None) -> torch.Tensor:
        for g in opt.param_groups:
            g["lr"] = s.lr_at(state.step)
        with torch.autocast(s.dev.type, dtype=torch.bfloat16, enabled=t.autocast == "bf16"):
            logits, new_state = net(x, state.carry, labels=lab)
        loss = F.cross_entropy(logits.reshape(-1, levels).float(), x[:, lb:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()
        state.carry = [h.detach() for h in new_state]
        return loss.detach()

    net.train()
    try:
        while True:
            if state.window == 0 or x_chunk is None:
                x_chunk = torch.from_numpy(s.plan.batch(state.epoch, state.batch, dist)).to(s.dev)
                rows = s.plan.labels(state.epoch, state.batch, dist)
                lab_chunk = None if rows is None else torch.from_numpy(rows).to(s.dev)
                if state.window == 0:
                    state.carry = None
            x = x_chunk[:, state.window * seq : state.window * seq + lb + seq]
            lab = None if lab_chunk is None else lab_chunk[:, state.window * seq : (state.window + 1) * seq]
            loss = one_step(x, lab) if s.step_tuner is None else s.step_tuner.run(lambda x=x, lab=lab: one_step(x, lab))
            state.step += 1
            state.window += 1
            if state.window == s.windows:
                state.window, state.batch = 0, state.batch + 1
                if state.batch >= s.plan.batches_per_epoch(state.epoch):
                    state.batch, state.epoch = 0, state.epoch + 1
            state.elapsed_s = elapsed0 + time.monotonic() - session_start
            log_nats += float(loss)
            log_n += 1
            log_samples += x[:, lb:].numel() * dist.world

            # Decide together whether to stop, and whether a signal asked (then validation and previews
            # are skipped), so every process saves the same step and meets the same barriers.
            limit = ("max-steps" if s.max_steps is not None and state.step >= s.max_steps else
                     "max-minutes" if s.deadline is not None and time.monotonic() >= s.deadline else None)
            agreed = dist.max(2 if flag.reason else 1 if limit else 0)
            stopping, signalled = agreed > 0, agreed == 2
            reason = flag.reason or limit or reason or ("another process stopped" if stopping else None)
            do_ckpt = stopping or state.step % t.checkpoint_every == 0
            do_val = bool(s.val) and (do_ckpt or state.step % t.val_every == 0) and not signalled
            row = None
            if state.step % s.log_every == 0 or do_val or stopping:
                now = time.monotonic()
                bits = dist.mean(log_nats / max(log_n, 1)) / LN2
                row = {"step": state.step, "elapsed_s": round(state.elapsed_s, 3), "train_bits": round(bits, 5),
                       "samples_per_s": round(log_samples / max(now - log_t, 1e-9), 1), "lr": s.lr_at(state.step),
                       "epoch": state.epoch}
                log_nats, log_n, log_t, log_samples = 0.0, 0, now, 0
                if bar is not None:
                    bar.set_postfix(f"bits {bits:.3f}, {row['samples_per_s']:.0f} samples/s")
            val_bits = None
            if do_val:
                if dist.main:
                    val_bits = evaluate(model, s.val, seq_len=seq, batch_size=t.batch_size, device=s.dev, stop=flag,
                                        labels=s.val_labels,
                                        tuner=s.val_tuner)
                    if val_bits is not None:
                        last_val = val_bits
                        row.update(val_bits=round(val_bits, 5), baseline_bits=round(s.baseline, 5))
                        s.log(f"step {state.step}: validation {val_bits:.3f} bits/sample (memoryless {s.baseline:.3f})")
                dist.barrier()
            if row is not None and metrics_f is not None:
                metrics_f.write(json.dumps(row) + "\n")
                metrics_f.flush()
                if val_bits is not None and (stopping or time.monotonic() - last_plot > PLOT_EVERY_S):
                    plot_metrics(s.run_dir / "metrics.jsonl", s.run_dir / "training.png", baseline=s.baseline)
                    last_plot = time.monotonic()
            if bar is not None:
                bar.update(1)
            if do_ckpt:
                _save(s, model, opt, state, val_bits)
                if dist.main and s.previews and not flag():
                    render_previews(model, s.run_dir / "previews" / f"step-{state.step:08d}", cfg=t, data=s.spec.data,
                                    seed=t.seed, stop=flag, tuner=s.preview_tuner)
                dist.barrier()
            if do_val or do_ckpt:
                log_t = time.monotonic()  # speed is training speed, not validation's or saving's
            if stopping:
                return last_val, reason
    finally:
        if bar is not None:
            bar.close(done=reason is not None)
        if metrics_f is not None:
            metrics_f.close()


def _save(s: _Session, model: SampleRNN, opt: torch.optim.Optimizer, state: TrainState, val_bits: float | None) -> None:
    """Write step-N.pt (rank 0), point last.pt (and best.pt if it is the best) at it, prune."""
    carry = None
    if state.carry is not None and state.window > 0:
        carry = [_gather_batch(h, s.dist) for h in state.carry]  # every process takes part
    if not s.dist.main:
        return
    is_best = val_bits is not None and (state.best_val_bits is None or val_bits < state.best_val_bits)
    if is_best:
        state.best_val_bits = val_bits
    payload = checkpoint.payload(spec=s.spec, state=replace(state, carry=carry), model=model, optimizer=opt,
                                 val_bits=val_bits, baseline_bits=s.baseline)
    cdir = checkpoint.checkpoint_dir(s.run_dir)
    path = checkpoint.save(checkpoint.step_path(s.run_dir, state.step), payload)
    checkpoint.link(path, cdir / "last.pt")
    if is_best or (val_bits is None and not (cdir / "best.pt").exists()):  # no validated best yet
        checkpoint.link(path, cdir / "best.pt")
    checkpoint.prune(s.run_dir, keep=s.spec.train.keep_checkpoints)


def _gather_batch(t: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Concatenate every process's slice of a (..., B_local, dim) state along the batch axis."""
    if dist.world == 1:
        return t
    parts = [torch.empty_like(t) for _ in range(dist.world)]
    torch.distributed.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim=-2)
