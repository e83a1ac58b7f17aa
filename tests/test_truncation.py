"""Truncated sampling: off at min-p 0 / top-p 1, equal to a textbook reference, per stream and per
sample in a batch as in singles, on both the per-sample loop and the period stepper; curve ranges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inspire import schedule
from inspire.config import ModelConfig
from inspire.errors import UserInputError
from inspire.samplernn import graph, sample
from inspire.samplernn.model import SampleRNN

CFG = ModelConfig(frame_sizes=(4, 2), dim=24, levels=64)


def _logits(b=64, levels=64, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, levels, generator=g) * scale, torch.rand(b, generator=g)


def _reference(logits: np.ndarray, t: float, min_p: float, top_p: float) -> np.ndarray:
    """The kept, renormalised distribution the textbook way (as Hugging Face's MinPLogitsWarper and
    TopPLogitsWarper define it): min-p drops tokens below min_p x the top probability; top-p sorts
    ascending and removes the tokens whose cumulative probability is <= 1 - top_p."""
    z = logits.astype(np.float64) / t
    p = np.exp(z - z.max())
    p /= p.sum()
    p = np.where(p < min_p * p.max(), 0.0, p)
    p /= p.sum()
    order = np.argsort(p)  # ascending
    cum = np.cumsum(p[order])
    remove = cum <= 1.0 - top_p
    remove[-1] = False  # always keep the most likely
    p[order[remove]] = 0.0
    return p / p.sum()


def test_off_values_leave_every_draw_unchanged():
    logits, u = _logits()
    t = torch.full((64,), 1.1)
    plain = sample.sample_logits(logits, t, u)
    off = sample.sample_logits(logits, t, u, min_p=torch.zeros(64), top_p=torch.ones(64))
    assert torch.equal(off, plain)
    probs = torch.softmax(logits / t.unsqueeze(1), -1)
    assert torch.equal(sample.truncate(probs, min_p=torch.zeros(64), top_p=torch.ones(64)), probs)


@pytest.mark.parametrize("t, min_p, top_p", [(1.0, 0.05, 1.0), (1.15, 0.0, 0.9), (0.9, 0.1, 0.8), (1.3, 0.02, 0.95)])
def test_matches_the_textbook_reference(t, min_p, top_p):
    logits, _ = _logits(b=32, seed=1)
    probs = torch.softmax(logits / t, -1)
    kept = sample.truncate(probs, min_p=torch.full((32,), min_p), top_p=torch.full((32,), top_p))
    mine = (kept / kept.sum(-1, keepdim=True)).double().numpy()
    ref = np.stack([_reference(row, t, min_p, top_p) for row in logits.numpy()])
    np.testing.assert_allclose(mine, ref, atol=1e-6)
    assert (mine > 0).sum() < (probs > 0).sum()  # something was cut
    # Draws follow the kept distribution: inverse CDF of the reference with the same uniforms.
    u = torch.rand(32, generator=torch.Generator().manual_seed(5))
    drawn = sample.sample_logits(logits, torch.full((32,), t), u, min_p=torch.full((32,), min_p),
                                 top_p=torch.full((32,), top_p))
    want = [int(np.searchsorted(np.cumsum(r), x * r.sum(), side="right")) for r, x in zip(ref, u.numpy(), strict=True)]
    assert drawn.tolist() == want


def test_draws_never_come_from_the_cut_tail():
    logits, _ = _logits(b=8, seed=2, scale=2.0)
    probs = torch.softmax(logits, -1)
    for k in range(200):
        u = torch.rand(8, generator=torch.Generator().manual_seed(k))
        idx = sample.sample_logits(logits, torch.ones(8), u, min_p=torch.full((8,), 0.3))
        assert bool((probs.gather(1, idx[:, None]).squeeze(1) >= 0.3 * probs.max(-1).values).all())


def test_ties_are_kept_together():
    probs = torch.tensor([[0.4, 0.2, 0.2, 0.2]])
    kept = sample.truncate(probs, top_p=torch.tensor([0.5]))  # 0.4 alone is < 0.5: the 0.2s tie
    assert torch.equal(kept, probs)


def _model():
    torch.manual_seed(0)
    return SampleRNN(CFG).eval()


def _curve(values_fn, b):
    def f(start, n):
        t = torch.arange(start, start + n, dtype=torch.float32)
        return torch.stack([values_fn(i, t) for i in range(b)])
    return f


def test_batch_equals_singles_with_truncation_curves():
    m, n = _model(), 150
    seeds = [11, 12, 13]
    temp = _curve(lambda i, t: 0.9 + 0.3 * t / n + 0.05 * i, 3)
    min_p = _curve(lambda i, t: (0.1 * i) * t / n, 3)  # stream 0: off throughout
    top_p = _curve(lambda i, t: 1.0 - (0.15 * (2 - i)) * t / n, 3)
    batch = sample.generate(m, n_samples=n, temperature=temp, min_p=min_p, top_p=top_p, seeds=seeds, block=40)
    for i, seed in enumerate(seeds):
        one = lambda f, i=i: (lambda start, k: f(start, k)[i : i + 1])  # noqa: E731
        single = sample.generate(m, n_samples=n, temperature=one(temp), min_p=one(min_p), top_p=one(top_p),
                                 seeds=[seed], block=40)
        assert torch.equal(single[0], batch[i])
    plain = sample.generate(m, n_samples=n, temperature=temp, seeds=seeds, block=40)
    assert not torch.equal(plain[1:], batch[1:])  # truncation changed the streams that have it


def test_stepper_refuses_a_control_it_was_not_built_for():
    m = _model()
    runner = graph.PeriodStepper(m, torch.full((1, m.lookback), 32), m.start(1))
    p = m.lookback
    with pytest.raises(ValueError, match="min_p given to a stepper built without it"):
        runner.run(torch.ones(p, 1), torch.zeros(p, 1), min_p=torch.zeros(p, 1))


# ------------------------------------------------------------------------------------ curves


def test_truncation_curves_use_the_temperature_grammar():
    s = schedule.parse("0s:0,30s:0.05", control="min-p")
    assert s.control == "min-p" and not s.neutral
    assert s.curve(16000 * 31, 16000)[-1] == pytest.approx(0.05)
    assert s.curve(16000 * 15 + 1, 16000)[-1] == pytest.approx(0.025)
    assert schedule.parse("0", control="min-p").neutral
    assert schedule.parse("1", control="top-p").neutral
    assert not schedule.parse("1:0.9", control="top-p").neutral
    assert not schedule.parse("1.0").neutral  # temperature always acts


@pytest.mark.parametrize("control, spec, words", [
    ("min-p", "1", "min-p must be a number in [0, 1), got 1"),
    ("min-p", "-0.1", "in [0, 1)"),
    ("min-p", "0:0,1:1.5", "in [0, 1)"),
    ("top-p", "0", "top-p must be a number in (0, 1], got 0"),
    ("top-p", "1.01", "in (0, 1]"),
    ("top-p", "0.5:1,0.2:0.9", "must increase"),
    ("min-p", "10s:0.1,5s:0", "must increase"),
    ("min-p", "", "empty"),
])
def test_out_of_range_or_disordered_curves_are_one_line_errors(control, spec, words):
    with pytest.raises(UserInputError) as e:
        schedule.parse(spec, control=control)
    msg = str(e.value)
    assert words in msg and control in msg and "\n" not in msg


def test_sweeps_combine_every_pair_evenly():
    combos = schedule.sweep(["0.9", "1.1"], ["0", "0.05"])
    picked = [schedule.for_clip(combos, i) for i in range(8)]
    assert picked[:4] == [("0.9", "0"), ("1.1", "0"), ("0.9", "0.05"), ("1.1", "0.05")]  # temperature fastest
    assert picked[4:] == picked[:4]
    assert [schedule.for_clip(schedule.sweep(["a", "b", "c"]), i) for i in range(4)] == [("a",), ("b",), ("c",), ("a",)]
