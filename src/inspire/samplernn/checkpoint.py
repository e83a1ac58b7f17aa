"""Checkpoints: self-contained, versioned, atomically written, loaded with `weights_only=True`.

A checkpoint holds a format version, the full model and training configs, the data settings it
was trained on, the model's (unwrapped) state_dict, and for training also the optimizer, step,
RNG state, data position and the recurrent state carried into the next window, so a run
continues exactly where it stopped. `load_model` needs nothing but the file.

Run folder layout: RUN_DIR/checkpoints/step-00000500.pt ... plus last.pt and best.pt (hard
links to step files where the filesystem allows, copies otherwise).
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path

import torch

from inspire.config import ModelConfig, TrainConfig, from_dict
from inspire.errors import CheckpointError, ConfigError
from inspire.files import atomic_path

FORMAT_VERSION = 1
KIND = "inspire-samplernn"
STEP_RE = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


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
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, zipfile.BadZipFile, pickle.UnpicklingError) as exc:
        # (a file that is not a checkpoint at all can fail in the unpickler with Index/KeyError)
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({str(exc).splitlines()[0][:120]})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("kind") != KIND:
        raise CheckpointError(f"{path}: not an inspire checkpoint")
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version}, this inspire reads format {FORMAT_VERSION}")
    return ckpt


def configs(ckpt: dict, path: str | Path = "checkpoint") -> tuple[ModelConfig, TrainConfig]:
    try:
        return from_dict(ModelConfig, ckpt["model_config"]), from_dict(TrainConfig, ckpt["train_config"])
    except (KeyError, TypeError, ConfigError) as exc:
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
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path}: weights do not match the config stored in it ({str(exc).splitlines()[0][:160]})") from exc
    if fold:
        model.fold_weight_norm()
    ckpt.pop("optimizer", None)
    return model.to(device).eval(), ckpt


def resolve(run_dir: str | Path, which: str = "best") -> Path:
    """'best', 'last', a step number, or a path -> an existing checkpoint file."""
    cdir = checkpoint_dir(run_dir)
    if which in ("best", "last"):
        p = cdir / f"{which}.pt"
        if which == "best" and not p.exists() and (cdir / "last.pt").exists():
            p = cdir / "last.pt"  # no validation yet: the latest is the best we know
        if not p.exists():
            raise CheckpointError(f"{run_dir}: no {which} checkpoint yet (train first: inspire train {run_dir})")
        return p
    if which.isdigit():
        p = cdir / f"step-{int(which):08d}.pt"
        if not p.exists():
            have = ", ".join(str(s) for s in list_steps(run_dir)) or "none"
            raise CheckpointError(f"{run_dir}: no checkpoint at step {which} (kept steps: {have})")
        return p
    p = Path(which)
    if not p.is_file():
        raise CheckpointError(f"{which}: no such checkpoint (use best, last, a step number or a path)")
    return p


def list_steps(run_dir: str | Path) -> list[int]:
    cdir = checkpoint_dir(run_dir)
    if not cdir.is_dir():
        return []
    return sorted(int(m.group(1)) for f in cdir.iterdir() if (m := STEP_RE.match(f.name)))


def step_path(run_dir: str | Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"step-{step:08d}.pt"


def prune(run_dir: str | Path, *, keep: int) -> None:
    """Delete all but the newest `keep` step checkpoints. best.pt and last.pt are links or
    copies of their own, so they survive the step file they came from."""
    steps = list_steps(run_dir)
    for step in steps[: max(0, len(steps) - keep)]:
        step_path(run_dir, step).unlink(missing_ok=True)
