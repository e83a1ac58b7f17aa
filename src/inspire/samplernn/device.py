"""The device is picked once, at the edge: cuda -> mps -> cpu, or as asked, failing clearly."""

from __future__ import annotations

import os

import torch

from inspire.errors import UserInputError

CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str = "auto") -> torch.device:
    name = (name or "auto").lower()
    kind = name.split(":")[0]
    if kind not in CHOICES:
        raise UserInputError(f"--device must be one of {', '.join(CHOICES)} (or cuda:N), got {name!r}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"--device {name}: no CUDA GPU is available on this machine (torch {torch.__version__})")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise UserInputError(f"--device {name}: Apple MPS is not available on this machine")
    return torch.device(name)


def process_gpu(local_rank: int) -> torch.device:
    """The GPU of torchrun's process `local_rank`: one each, round-robin when processes outnumber GPUs."""
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def dist_backend(dev: torch.device, local_world: int) -> str:
    """The process group's backend: nccl when every process on this machine has a GPU of its own.

    NCCL refuses two ranks on one GPU ("Duplicate GPU detected"), so processes that share GPUs (two
    on a one-GPU machine, to try DDP there) fall back to gloo, which reduces CUDA tensors too.
    INSPIRE_DIST_BACKEND=nccl|gloo overrides the choice.
    """
    forced = os.environ.get("INSPIRE_DIST_BACKEND", "").strip().lower()
    if forced:
        if forced not in ("nccl", "gloo"):
            raise UserInputError(f"INSPIRE_DIST_BACKEND must be nccl or gloo, got {forced!r}")
        return forced
    if dev.type == "cuda" and local_world <= torch.cuda.device_count():
        return "nccl"
    return "gloo"
