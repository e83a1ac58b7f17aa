"""The period stepper (the CUDA-graph path) gives `sample.stream`'s samples exactly."""

from __future__ import annotations

import pytest
import torch

from inspire.config import ModelConfig
from inspire.samplernn import graph, sample
from inspire.samplernn.model import SampleRNN

CONFIGS = [
    ModelConfig(frame_sizes=(4, 2), dim=24, levels=16),
    ModelConfig(frame_sizes=(2, 2, 2), dim=16, levels=32, rnn="lstm", rnn_layers=2),
]


def _model(cfg, device="cpu"):
    torch.manual_seed(0)
    return SampleRNN(cfg).eval().fold_weight_norm().to(device)


def _ramp(b, device):
    def temperature(start, n):
        t = torch.arange(start, start + n, dtype=torch.float32, device=device)
        return (0.8 + 0.4 * t / 200).expand(b, n).contiguous()
    return temperature


@pytest.mark.parametrize("cfg", CONFIGS, ids=["gru-2tier", "lstm-3tier"])
def test_periods_equal_stream(cfg):
    model, seeds = _model(cfg), [3, 1, 4]
    kw = dict(n_samples=203, temperature=_ramp(3, "cpu"), seeds=seeds, block=64)  # not a multiple of the period
    want = torch.cat(list(sample.stream(model, **kw)), dim=1)
    got = torch.cat(list(graph.stream(model, graph=False, **kw)), dim=1)
    assert got.shape == want.shape == (3, 203)
    assert torch.equal(got, want)


def test_periods_continue_a_primed_state():
    cfg = CONFIGS[0]
    model = _model(cfg)
    prime = torch.randint(0, cfg.levels, (2, 50))
    history, state = sample.prime_state(model, prime)
    kw = dict(n_samples=40, temperature=torch.full((2,), 0.9), seeds=[7, 8], history=history, state=state)
    want = torch.cat(list(sample.stream(model, **kw)), dim=1)
    got = torch.cat(list(graph.stream(model, graph=False, **kw)), dim=1)
    assert torch.equal(got, want)


def test_off_boundary_state_is_refused():
    model = _model(CONFIGS[0])
    state = model.start(1)
    state.t = 3
    with pytest.raises(ValueError, match="top-frame boundary"):
        graph.PeriodStepper(model, torch.zeros((1, model.lookback), dtype=torch.long), state)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a GPU machine)")
def test_cuda_graph_equals_eager_on_gpu():
    cfg = CONFIGS[0]
    model = _model(cfg, "cuda")
    kw = dict(n_samples=300, temperature=_ramp(4, "cuda"), seeds=[1, 2, 3, 4], block=128)
    eager = torch.cat(list(graph.stream(model, graph=False, **kw)), dim=1)
    captured = torch.cat(list(graph.stream(model, graph=True, **kw)), dim=1)
    assert torch.equal(captured, eager)
