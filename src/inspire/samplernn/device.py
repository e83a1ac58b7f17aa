"""The device is picked once, at the edge: cuda -> mps -> cpu, or as asked, failing clearly."""

from __future__ import annotations

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
