"""Which GPU a torchrun process gets, and which DDP backend it uses (no GPU needed: counts faked)."""

from __future__ import annotations

import pytest
import torch

from inspire.errors import UserInputError
from inspire.samplernn import device


def test_processes_share_gpus_round_robin(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [device.process_gpu(r).index for r in range(5)] == [0, 1, 0, 1, 0]


def test_nccl_only_when_every_process_has_its_own_gpu(monkeypatch):
    monkeypatch.delenv("INSPIRE_DIST_BACKEND", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    gpu = torch.device("cuda", 0)
    assert device.dist_backend(gpu, 1) == "nccl"
    assert device.dist_backend(gpu, 2) == "gloo"  # NCCL refuses two ranks on one GPU
    assert device.dist_backend(torch.device("cpu"), 1) == "gloo"


def test_the_backend_can_be_forced_and_a_wrong_one_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("INSPIRE_DIST_BACKEND", "NCCL")
    assert device.dist_backend(torch.device("cuda", 0), 2) == "nccl"
    monkeypatch.setenv("INSPIRE_DIST_BACKEND", "mpi")
    with pytest.raises(UserInputError, match="INSPIRE_DIST_BACKEND must be nccl or gloo, got 'mpi'"):
        device.dist_backend(torch.device("cuda", 0), 1)
