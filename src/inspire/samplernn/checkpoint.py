"""Checkpoints: self-contained, versioned, atomically written, loaded with `weights_only=True`.

A checkpoint holds a format version, the full model and training configs, the data settings it
was trained on, the model's (unwrapped) state_dict, and for training also the optimizer, step,
RNG state, data position and the recurrent state carried into the next window, so a run
continues exactly where it stopped. `load_model` needs nothing but the file.

Run folder layout: RUN_DIR/checkpoints/step-00000500.pt ... plus last.pt and best.pt (hard
links to step files where the filesystem allows, copies otherwise), and RUN_DIR/config.json, the
run's resolved configs (what a checkpoint put in the folder must match).

This module owns the checkpoint's schema: training builds one with `payload()` and continues
from one with `restore()`; tests build them the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from inspire import __version__
from inspire.config import ModelConfig, TrainConfig, from_dict, to_dict
from inspire.errors import CheckpointError, ConfigError
from inspire.files import atomic_path, read_json, write_json

# The run folder's checkpoint names are defined without torch (the studio checks them too).
from inspire.samplernn.checks import STEP_RE, checkpoint_dir, list_steps, resolve, step_path  # noqa: F401

FORMAT_VERSION = 1
KIND = "inspire-samplernn"


@dataclass(frozen=True)
class RunSpec:
    """What a run trains: the preset it started from, the resolved configs, the data settings
    (sample_rate, quantization, levels, normalize, and the dataset's fingerprint), and for a
    model trained with labels, how the audio is labelled (`inspire.audio.labels.Labelling`'s
    JSON: names, sections)."""

    preset: str
    model: ModelConfig
    train: TrainConfig
    data: dict
    labels: dict | None = None

    def to_json(self) -> dict:
        """RUN_DIR/config.json."""
        out = {"preset": self.preset, "model": to_dict(self.model), "train": to_dict(self.train), "data": self.data,
               "software": f"inspire {__version__}"}
        return {**out, "labels": self.labels} if self.labels else out

    def describe(self) -> str:
        m = self.model
        frames = ",".join(map(str, m.frame_sizes))
        return (f"preset {self.preset}, frame_sizes {frames}, dim {m.dim}, {m.rnn} x{m.rnn_layers}, "
                f"{self.data.get('levels')} levels at {self.data.get('sample_rate')} Hz")

    def same_model(self, other: RunSpec) -> bool:
        """The same architecture on data of the same settings (the dataset may have grown)."""
        fixed = ("sample_rate", "quantization", "levels")
        return (self.preset, self.model) == (other.preset, other.model) and all(
            self.data.get(k) == other.data.get(k) for k in fixed)


@dataclass
class TrainState:
    """Where a run stands: what a continued run needs besides the weights and the optimizer.

    The data position is (epoch, batch, window): the next step trains window `window` of the
    chunks of batch `batch` of epoch `epoch`. `carry` is the RNN state carried into that window,
    one tensor per frame-level tier, (..., B, dim) over the whole global batch in a checkpoint
    and over this process's slice of it in the loop; None when a chunk starts (window 0).
    """

    step: int = 0
    epoch: int = 0
    batch: int = 0
    window: int = 0
    carry: list[torch.Tensor] | None = None
    best_val_bits: float | None = None
    elapsed_s: float = 0.0  # training time over all sessions


def write_run_config(run_dir: str | Path, spec: RunSpec) -> None:
    write_json(Path(run_dir) / "config.json", spec.to_json())


def read_run_config(run_dir: str | Path) -> RunSpec | None:
    """RUN_DIR/config.json, or None if there is none or it cannot be read (it is rewritten at
    every start: a torn or edited one only loses its check)."""
    try:
        d = read_json(Path(run_dir) / "config.json")
        return RunSpec(d["preset"], from_dict(ModelConfig, d["model"]), from_dict(TrainConfig, d["train"]),
                       dict(d["data"]), d.get("labels"))
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        return None


def payload(*, spec: RunSpec, state: TrainState, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            val_bits: float | None, baseline_bits: float | None) -> dict:
    """The checkpoint of a training run (format 1). `state.carry` must cover the whole global
    batch; `model` is the unwrapped model (no DDP or compile prefixes)."""
    return {
        "preset": spec.preset,
        "model_config": to_dict(spec.model),
        "train_config": to_dict(spec.train),
        "data": spec.data,
        "labels": spec.labels,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": state.step,
        "position": {"epoch": state.epoch, "batch": state.batch, "window": state.window},
        "carry": [s.detach().cpu() for s in state.carry] if state.carry is not None and state.window > 0 else None,
        "rng": {"torch": torch.get_rng_state()},
        "val_bits": val_bits,
        "best_val_bits": state.best_val_bits,
        "baseline_bits": baseline_bits,
        "elapsed_s": state.elapsed_s,
        "software": f"inspire {__version__}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def spec(ckpt: dict, path: str | Path = "checkpoint") -> RunSpec:
    """The run a checkpoint belongs to, as config.json would describe it."""
    model_cfg, train_cfg = configs(ckpt, path)
    return RunSpec(str(ckpt.get("preset", "custom")), model_cfg, train_cfg, dict(ckpt.get("data") or {}),
                   ckpt.get("labels"))


def restore(ckpt: dict, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            path: str | Path = "checkpoint") -> TrainState:
    """Load a training checkpoint's weights, optimizer and RNG into place; return where it stood
    (with the carried state of the whole global batch, on the CPU)."""
    _load_weights(model, ckpt, path)
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
        pos = ckpt["position"]
        carry = list(ckpt["carry"]) if ckpt.get("carry") is not None else None
        state = TrainState(step=int(ckpt["step"]), epoch=int(pos["epoch"]), batch=int(pos["batch"]),
                           window=int(pos["window"]), carry=carry, best_val_bits=ckpt.get("best_val_bits"),
                           elapsed_s=float(ckpt.get("elapsed_s", 0.0)))
        torch.set_rng_state(ckpt["rng"]["torch"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: not a training checkpoint, cannot continue from it ({type(exc).__name__}: {exc})") from exc
    if state.window == 0:
        state.carry = None
    return state


def save(path: str | Path, payload: dict) -> Path:
    """Write a checkpoint atomically (a kill -9 leaves the previous file, never half of one)."""
    payload = {"format_version": FORMAT_VERSION, "kind": KIND, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def link(src: Path, dst: Path) -> None:
    """Make `dst` the same checkpoint as `src`, atomically (hard link, else copy)."""
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            import shutil

            shutil.copyfile(src, tmp)


def load(path: str | Path, *, map_location="cpu") -> dict:
    """Load and check a checkpoint; CheckpointError names the file and what is wrong."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder, not a checkpoint (use best, last, a step number or a .pt file)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror})") from exc
    if not head:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    if head != b"PK\x03\x04":  # torch.save writes a zip archive
        raise CheckpointError(f"{path}: not a checkpoint (not a file written by torch.save)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # arbitrary bytes make torch.load raise anything: KeyError, IndexError...
        text = str(exc).strip()
        if text.startswith("Weights only load failed"):
            raise CheckpointError(
                f"{path}: not an inspire checkpoint (it holds pickled Python objects, not only tensors)") from None
        first = f"{type(exc).__name__}: {text.splitlines()[0][:120]}" if text else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({first})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("kind") != KIND:
        raise CheckpointError(f"{path}: not an inspire checkpoint")
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version}, this inspire reads format {FORMAT_VERSION}")
    return ckpt


def configs(ckpt: dict, path: str | Path = "checkpoint") -> tuple[ModelConfig, TrainConfig]:
    try:
        return from_dict(ModelConfig, ckpt["model_config"]), from_dict(TrainConfig, ckpt["train_config"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{path}: config inside the checkpoint is invalid ({exc})") from exc


def load_model(path: str | Path, *, device: torch.device | str = "cpu", fold: bool = True):
    """Build the model a checkpoint describes and load its weights (strict keys).

    Returns (model in eval mode, checkpoint dict without the optimizer). With `fold`, weight
    normalisation is folded away for fast generation.
    """
    from inspire.samplernn.model import SampleRNN

    ckpt = load(path)
    model_cfg, _ = configs(ckpt, path)
    model = SampleRNN(model_cfg)
    _load_weights(model, ckpt, path)
    if fold:
        model.fold_weight_norm()
    ckpt.pop("optimizer", None)
    return model.to(device).eval(), ckpt


def _load_weights(model: torch.nn.Module, ckpt: dict, path: str | Path) -> None:
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: weights do not match the config stored in it ({first})") from exc


def prune(run_dir: str | Path, *, keep: int) -> None:
    """Delete all but the newest `keep` step checkpoints. best.pt and last.pt are links or
    copies of their own, so they survive the step file they came from."""
    steps = list_steps(run_dir)
    for step in steps[: max(0, len(steps) - keep)]:
        step_path(run_dir, step).unlink(missing_ok=True)


def find_resume(run_dir: str | Path, *, log: Callable[[str], None]) -> tuple[Path, dict] | None:
    """The checkpoint a plain `train` continues from: last.pt; without it (deleted, say) the
    newest step checkpoint that loads, then best.pt, saying so; None for a run with none.

    A last.pt that does not load is an error naming it (not skipped over silently). A checkpoint
    that does not match RUN_DIR/config.json (another run's, another preset's) is refused, naming both.
    """
    cdir = checkpoint_dir(run_dir)
    last = cdir / "last.pt"
    steps = list_steps(run_dir)
    if last.exists():
        try:
            found = (last, load(last))
        except CheckpointError as exc:
            hint = f"delete it to continue from {step_path(run_dir, steps[-1]).name}" if steps else "delete it"
            raise CheckpointError(f"{exc}; {hint}, or add --restart to start over (checkpoints are kept aside)") \
                from None
    else:
        found = None
        for path in [step_path(run_dir, s) for s in reversed(steps)] + [cdir / "best.pt"]:
            if not path.exists():
                continue
            try:
                found = (path, load(path))
            except CheckpointError as exc:
                log(f"warning: skipping {exc}")
                continue
            log(f"{last} is missing: continuing from {path.name}, the newest checkpoint that loads")
            break
        if found is None and (steps or (cdir / "best.pt").exists()):
            raise CheckpointError(
                f"{cdir}: no checkpoint there loads; add --restart to start over (they are kept aside)")
    if found is None:
        return None
    path, ckpt = found
    have, run = spec(ckpt, path), read_run_config(run_dir)
    if run is not None and not have.same_model(run):
        raise CheckpointError(
            f"{path} ({have.describe()}) is not the model {Path(run_dir) / 'config.json'} describes "
            f"({run.describe()}): "
            "put this run's checkpoint back, or add --restart to start a new run (the old one is kept aside)"
        )
    return path, ckpt
