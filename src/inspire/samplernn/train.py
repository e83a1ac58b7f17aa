"""Training SampleRNN: a plain, visible loop a musician can leave running for days.

batch -> loss -> step -> (validate) -> (checkpoint + previews), with truncated BPTT: a batch of
chunks (8 s by default) is cut into windows of `seq_len` samples; the RNN state carries from one
window of a chunk to the next and resets (to the learned initial state) at the next chunk.

Resumable to the sample: checkpoints hold the optimizer, the data position (epoch, batch,
window) and the carried RNN state, and the data order is a pure function of (seed, epoch), so
a continued run's losses equal an uninterrupted run's. Under torchrun every process trains a
contiguous slice of each global batch (DDP: gloo on CPU, nccl on GPU) and only rank 0 writes.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from inspire import __version__
from inspire.samplernn import checkpoint
from inspire.config import (
    ModelConfig,
    TrainConfig,
    check_compatible,
    get_preset,
    parse_field,
    to_dict,
    with_overrides,
)
from inspire.audio.dataset import PreparedData, load_prepared
from inspire.samplernn.device import pick_device
from inspire.errors import CheckpointError, ConfigError, DatasetError
from inspire.files import atomic_path, write_json, write_text
from inspire.samplernn.model import SampleRNN

LN2 = math.log(2.0)
PLOT_EVERY_S = 20.0  # training.png is redrawn at a validation at most this often (and at the end)


# ----------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Dist:
    """Where this process sits in a torchrun job (rank 0 of 1 when run directly)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Dist":
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every process if it is true on any (so all stop at the same step)."""
        if self.world == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0])
        torch.distributed.all_reduce(t)
        return bool(t.item() > 0)

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
    """

    def __init__(self, prep: PreparedData, *, chunk_len: int, lookback: int, batch_size: int, seed: int):
        self.prep, self.chunk_len, self.lookback = prep, chunk_len, lookback
        self.batch_size, self.seed = batch_size, seed
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


def validation_pieces(prep: PreparedData, *, chunk_len: int, seq_len: int, lookback: int, max_samples: int) -> list[np.ndarray]:
    """Held-out audio cut into pieces (lookback + k * seq_len samples), evenly chosen up to
    `max_samples` predicted samples. Deterministic."""
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
    return [np.asarray(arr[pos - lookback : pos + n], dtype=np.int64) for _, pos, n, arr in pieces]


def memoryless_bits(pieces: list[np.ndarray], *, lookback: int, levels: int) -> float:
    """Entropy (bits) of the quantized values: the NLL of a model that knows nothing of context."""
    counts = np.zeros(levels, dtype=np.float64)
    for p in pieces:
        counts += np.bincount(p[lookback:], minlength=levels)
    prob = counts[counts > 0] / counts.sum()
    return float(-(prob * np.log2(prob)).sum())


@torch.no_grad()
def evaluate(model: SampleRNN, pieces: list[np.ndarray], *, seq_len: int, batch_size: int, device) -> float:
    """Mean NLL in bits per sample over the validation pieces (teacher forcing, state carried)."""
    model.eval()
    lb, total_nats, total_n = model.lookback, 0.0, 0
    by_len: dict[int, list[np.ndarray]] = {}
    for p in pieces:
        by_len.setdefault(len(p), []).append(p)
    for length, group in sorted(by_len.items()):
        for i in range(0, len(group), batch_size):
            x = torch.from_numpy(np.stack(group[i : i + batch_size])).to(device)
            state = None
            for w in range(0, length - lb, seq_len):
                window = x[:, w : w + lb + seq_len]
                logits, state = model(window, state)
                nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), window[:, lb:].reshape(-1), reduction="sum")
                total_nats += float(nll)
                total_n += window[:, lb:].numel()
    model.train()
    return total_nats / max(total_n, 1) / LN2


# ----------------------------------------------------------------------------- run folder


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
        ax.plot(*zip(*tr), label="train", color="#4c72b0", lw=1)
    if va:
        ax.plot(*zip(*va), "o-", label="validation", color="#dd8452", ms=3)
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


def render_previews(model: SampleRNN, out_dir: Path, *, cfg: TrainConfig, data: dict, seed: int) -> list[Path]:
    """A few short clips from the current weights, one per preview temperature."""
    from inspire.samplernn import sample
    from inspire.audio.io import write_audio
    from inspire.audio.quantize import dequantize

    n = int(cfg.preview_seconds * data["sample_rate"])
    temps = list(cfg.preview_temperatures)
    if n <= 0 or not temps:
        return []
    gen = SampleRNN(model.cfg)  # a fresh copy: parametrized modules do not deep-copy
    gen.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    gen.fold_weight_norm().eval()
    classes = sample.generate(gen, n_samples=n, temperature=torch.tensor(temps), seeds=[seed + i for i in range(len(temps))])
    paths = []
    for temp, row in zip(temps, classes.numpy()):
        audio = dequantize(row, kind=data["quantization"], levels=data["levels"])
        paths.append(write_audio(out_dir / f"temperature-{temp:.2f}.wav", audio, data["sample_rate"]))
    return paths


# ----------------------------------------------------------------------------- the loop


class _StopFlag:
    """Ctrl-C / SIGTERM ask the loop to stop after the current step; a second Ctrl-C aborts."""

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

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _resolve_configs(run_dir: Path, prep: PreparedData, ckpt: dict | None, *, preset: str | None,
                     model_overrides: dict, train_overrides: dict) -> tuple[str, ModelConfig, TrainConfig]:
    if "levels" in model_overrides:
        raise ConfigError("levels comes from the prepared data (inspire prepare --levels), not from train")
    if ckpt is None:
        p = get_preset(preset or "small")
        model_cfg = with_overrides(replace(p.model, levels=prep.settings.levels), model_overrides)
        train_cfg = with_overrides(p.train, train_overrides)
        return p.name, model_cfg, train_cfg
    last = checkpoint.checkpoint_dir(run_dir) / "last.pt"
    model_cfg, train_cfg = checkpoint.configs(ckpt, last)
    if preset is not None and preset != ckpt.get("preset"):
        raise CheckpointError(
            f"{last} was trained with preset {ckpt.get('preset')!r}, not {preset!r}: "
            "leave --preset out to continue, or add --restart to start over"
        )
    for k, v in model_overrides.items():
        if getattr(model_cfg, k) != parse_field(ModelConfig, k, v):
            raise CheckpointError(
                f"{last} has {k}={getattr(model_cfg, k)}, asked {v}: a checkpoint cannot change its architecture; "
                "add --restart to start over"
            )
    if ckpt["data"]["levels"] != prep.settings.levels or ckpt["data"]["sample_rate"] != prep.settings.sample_rate:
        raise CheckpointError(f"{last} was trained on data with other settings than {run_dir}/data")
    return ckpt.get("preset", "custom"), model_cfg, with_overrides(train_cfg, train_overrides)


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
) -> int:
    """Train (or continue training) the run's model. Returns an exit code."""
    run_dir = Path(run_dir)
    dist = Dist.from_env()
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"--max-steps must be at least 1, got {max_steps}")
    if max_minutes is not None and max_minutes <= 0:
        raise ConfigError(f"--max-minutes must be positive, got {max_minutes}")
    if log_every < 1:
        raise ConfigError(f"--log-every must be at least 1, got {log_every}")
    prep = load_prepared(run_dir)
    dev = pick_device(f"cuda:{dist.local_rank}" if dist.world > 1 and device in ("auto", "cuda") and torch.cuda.is_available() else device)
    if dist.world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    log = (lambda msg: print(msg, file=sys.stderr)) if dist.main else (lambda msg: None)

    cdir = checkpoint.checkpoint_dir(run_dir)
    if restart and dist.main:
        attic = _move_aside(run_dir)
        if attic:
            log(f"restart: the previous run's checkpoints and metrics are kept in {attic}")
    if dist.main and cdir.is_dir():
        for stale in cdir.glob(".*.tmp*"):  # half-written files of a process killed mid-save
            stale.unlink(missing_ok=True)
    dist.barrier()
    last_path = cdir / "last.pt"
    ckpt = checkpoint.load(last_path) if last_path.exists() else None
    preset_name, model_cfg, train_cfg = _resolve_configs(
        run_dir, prep, ckpt, preset=preset, model_overrides=model_overrides or {}, train_overrides=train_overrides or {}
    )
    check_compatible(model_cfg, train_cfg)
    if train_cfg.batch_size % dist.world:
        raise ConfigError(f"batch_size {train_cfg.batch_size} must be divisible by the {dist.world} processes")
    if train_cfg.lr_decay == "cosine" and max_steps is None:
        raise ConfigError("lr_decay cosine needs --max-steps (the schedule's length)")

    sr = prep.settings.sample_rate
    seq = train_cfg.seq_len
    chunk_len = max(1, round(train_cfg.chunk_seconds * sr / seq)) * seq
    plan = ChunkPlan(prep, chunk_len=chunk_len, lookback=model_cfg.lookback, batch_size=train_cfg.batch_size, seed=train_cfg.seed)
    windows = chunk_len // seq
    val = validation_pieces(prep, chunk_len=chunk_len, seq_len=seq, lookback=model_cfg.lookback,
                            max_samples=int(train_cfg.val_seconds * sr))
    baseline = memoryless_bits(val, lookback=model_cfg.lookback, levels=model_cfg.levels) if val else None
    if not val:
        log("warning: the validation audio is too short to evaluate; best.pt will follow last.pt")
    data_info = {**prep.settings.fixed(), "fingerprint": prep.fingerprint()}

    torch.manual_seed(train_cfg.seed)
    model = SampleRNN(model_cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=train_cfg.lr)
    step, epoch, batch_i, window, elapsed0 = 0, 0, 0, 0, 0.0
    best_val: float | None = None
    carry = None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"], strict=True)
        opt.load_state_dict(ckpt["optimizer"])
        step, elapsed0, best_val = ckpt["step"], ckpt.get("elapsed_s", 0.0), ckpt.get("best_val_bits")
        pos = ckpt["position"]
        epoch, batch_i, window = pos["epoch"], pos["batch"], pos["window"]
        if ckpt.get("carry") is not None and window > 0:
            per = train_cfg.batch_size // dist.world
            carry = [s.narrow(-2, dist.rank * per, per).contiguous().to(dev) for s in ckpt["carry"]]
        torch.set_rng_state(ckpt["rng"]["torch"])
        log(f"continuing {run_dir} from step {step} ({last_path})")
        if max_steps is not None and step >= max_steps:
            log(f"the run is already at step {step} (--max-steps {max_steps}); nothing to do")
            return 0
    else:
        log(f"new run in {run_dir}: preset {preset_name}, {sum(p.numel() for p in model.parameters()):,} parameters")
    if dist.main:
        write_json(run_dir / "config.json", {"preset": preset_name, "model": to_dict(model_cfg), "train": to_dict(train_cfg),
                                             "data": data_info, "software": f"inspire {__version__}"})
        _truncate_metrics(run_dir / "metrics.jsonl", step)

    net = model
    if dist.world > 1:
        # The learned initial state is used only on a chunk's first window: some steps leave it unused.
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None, find_unused_parameters=True
        )
    base_lr = train_cfg.lr

    def lr_at(s: int) -> float:
        if train_cfg.lr_decay == "cosine" and max_steps:
            frac = min(1.0, s / max_steps)
            return base_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        return base_lr

    def save(val_bits: float | None) -> None:
        """Write step-N.pt (rank 0), point last.pt (and best.pt if it is the best) at it, prune."""
        nonlocal best_val
        full_carry = None
        if carry is not None and window > 0:
            full_carry = [_gather_batch(s, dist).cpu() for s in carry]
        if not dist.main:
            return
        payload = {
            "preset": preset_name,
            "model_config": to_dict(model_cfg),
            "train_config": to_dict(train_cfg),
            "data": data_info,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "step": step,
            "position": {"epoch": epoch, "batch": batch_i, "window": window},
            "carry": full_carry,
            "rng": {"torch": torch.get_rng_state()},
            "val_bits": val_bits,
            "best_val_bits": best_val,
            "baseline_bits": baseline,
            "elapsed_s": elapsed0 + (time.monotonic() - t_start),
            "software": f"inspire {__version__}",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        is_best = val_bits is not None and (best_val is None or val_bits < best_val)
        if is_best:
            best_val = payload["best_val_bits"] = val_bits
        path = checkpoint.save(checkpoint.step_path(run_dir, step), payload)
        checkpoint.link(path, last_path)
        if is_best or (val_bits is None and not (cdir / "best.pt").exists()):  # no validated best yet
            checkpoint.link(path, cdir / "best.pt")
        checkpoint.prune(run_dir, keep=train_cfg.keep_checkpoints)

    metrics_f = open(run_dir / "metrics.jsonl", "a", encoding="utf-8") if dist.main else None
    t_start = time.monotonic()
    deadline = t_start + max_minutes * 60 if max_minutes else None
    bar = None
    if progress and dist.main:
        from tqdm import tqdm

        bar = tqdm(total=(max_steps - step) if max_steps else None, unit="step", file=sys.stderr, dynamic_ncols=True)
    x_chunk = None
    log_nats, log_n, log_t, log_samples = 0.0, 0, time.monotonic(), 0
    last_val: float | None = None
    last_plot = -math.inf
    stop_reason = None
    net.train()
    try:
        with _StopFlag() as flag:
            while True:
                if window == 0 or x_chunk is None:
                    x_chunk = torch.from_numpy(plan.batch(epoch, batch_i, dist)).to(dev)
                    if window == 0:
                        carry = None
                lb = model_cfg.lookback
                x = x_chunk[:, window * seq : window * seq + lb + seq]
                for g in opt.param_groups:
                    g["lr"] = lr_at(step)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=train_cfg.autocast == "bf16"):
                    logits, new_state = net(x, carry)
                loss = F.cross_entropy(logits.reshape(-1, model_cfg.levels).float(), x[:, lb:].reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
                opt.step()
                carry = [s.detach() for s in new_state]
                step += 1
                window += 1
                if window == windows:
                    window, batch_i = 0, batch_i + 1
                    if batch_i >= plan.batches_per_epoch(epoch):
                        batch_i, epoch = 0, epoch + 1
                log_nats += float(loss.detach())
                log_n += 1
                log_samples += x[:, lb:].numel() * dist.world

                # Decide together whether to stop, so every process saves the same step.
                want_stop = flag.reason or (
                    "max-steps" if max_steps is not None and step >= max_steps else
                    "max-minutes" if deadline is not None and time.monotonic() >= deadline else None
                )
                stopping = dist.any(want_stop is not None)
                stop_reason = want_stop or stop_reason or ("another process stopped" if stopping else None)
                do_ckpt = stopping or step % train_cfg.checkpoint_every == 0
                do_val = bool(val) and (do_ckpt or step % train_cfg.val_every == 0)
                row = None
                if step % log_every == 0 or do_val or stopping:
                    now = time.monotonic()
                    bits = dist.mean(log_nats / max(log_n, 1)) / LN2
                    row = {"step": step, "elapsed_s": round(elapsed0 + now - t_start, 3), "train_bits": round(bits, 5),
                           "samples_per_s": round(log_samples / max(now - log_t, 1e-9), 1), "lr": lr_at(step), "epoch": epoch}
                    log_nats, log_n, log_t, log_samples = 0.0, 0, now, 0
                    if bar is not None:
                        bar.set_postfix_str(f"bits {bits:.3f}, {row['samples_per_s']:.0f} samples/s")
                if do_val:
                    if dist.main:
                        last_val = evaluate(model, val, seq_len=seq, batch_size=train_cfg.batch_size, device=dev)
                        row.update(val_bits=round(last_val, 5), baseline_bits=round(baseline, 5))
                        log(f"step {step}: validation {last_val:.3f} bits/sample (memoryless {baseline:.3f})")
                    dist.barrier()
                if row is not None and metrics_f is not None:
                    metrics_f.write(json.dumps(row) + "\n")
                    metrics_f.flush()
                    if do_val and (stopping or time.monotonic() - last_plot > PLOT_EVERY_S):
                        plot_metrics(run_dir / "metrics.jsonl", run_dir / "training.png", baseline=baseline)
                        last_plot = time.monotonic()
                if bar is not None:
                    bar.update(1)
                if do_ckpt:
                    save(last_val if do_val else None)
                    if dist.main and previews and train_cfg.preview_seconds > 0:
                        render_previews(model, run_dir / "previews" / f"step-{step:08d}", cfg=train_cfg,
                                        data=data_info, seed=train_cfg.seed)
                    dist.barrier()
                if do_val or do_ckpt:
                    log_t = time.monotonic()  # speed is training speed, not validation's or saving's
                if stopping:
                    break
    finally:
        if bar is not None:
            bar.close()
        if metrics_f is not None:
            metrics_f.close()
    if dist.main:
        best = cdir / "best.pt"
        log(f"stopped at step {step} ({stop_reason}); run `inspire train {run_dir}` to continue")
        print(f"last checkpoint: {last_path}")
        if best.exists():
            print(f"best checkpoint: {best}" + (f" (validation {best_val:.3f} bits/sample)" if best_val is not None else ""))
        if last_val is not None:
            print(f"validation: {last_val:.3f} bits/sample; memoryless baseline {baseline:.3f}")
    if dist.world > 1:
        torch.distributed.destroy_process_group()
    return 0


def _gather_batch(t: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Concatenate every process's slice of a (..., B_local, dim) state along the batch axis."""
    if dist.world == 1:
        return t
    parts = [torch.empty_like(t) for _ in range(dist.world)]
    torch.distributed.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim=-2)
