"""The real-time engine computes model.step's function: the compiled kernels against the model
(distributions), against the torch stepper (sample for sample in fp32), batches against singles,
blocks against one go, priming against prime_state, and int8 within the int8 tolerance."""

import numpy as np
import pytest
import torch

from inspire.config import ModelConfig
from inspire.samplernn import engine as eng
from inspire.samplernn import sample
from inspire.samplernn.model import SampleRNN

TINY = ModelConfig(frame_sizes=(4, 2), dim=16, levels=64)
CONFIGS = [
    TINY,
    ModelConfig(frame_sizes=(4,), dim=16, levels=32),
    ModelConfig(frame_sizes=(2, 2, 2), dim=16, levels=32, rnn="lstm", rnn_layers=2),
    ModelConfig(frame_sizes=(4, 2), dim=24, levels=16, rnn_layers=2, weight_norm=False),
    ModelConfig(frame_sizes=(3, 2), dim=20, levels=40),  # odd sizes: no dimension a multiple of the vector width
]
needs_numba = pytest.mark.skipif(not eng.numba_available(), reason="numba not installed")


def _model(cfg=TINY, seed=0):
    torch.manual_seed(seed)
    return SampleRNN(cfg).eval()


def _run(engine, n, seeds, temps=None, *, block=None, logits=False):
    """n samples from an engine with StreamNoise's uniforms; temps (n, B) or 1.0."""
    u = eng.Uniforms(seeds)
    temps = np.ones((n, len(seeds)), np.float32) if temps is None else temps
    block = block or n
    out, kept = [], []
    for s in range(0, n, block):
        k = min(block, n - s)
        r = engine.generate(temps[s : s + k], u.next(k), logits=logits)
        out.append(r[0] if logits else r)
        if logits:
            kept.append(r[1])
    return (np.concatenate(out, 1), np.concatenate(kept, 1)) if logits else np.concatenate(out, 1)


def test_uniforms_are_stream_noise():
    seeds = [3, 2**40 + 7]
    noise = sample.StreamNoise(seeds, torch.device("cpu"))
    ref = torch.stack([noise.next() for _ in range(sample.NOISE_BLOCK + 100)]).numpy()
    u = eng.Uniforms(seeds)
    got = np.concatenate([u.next(1000), u.next(sample.NOISE_BLOCK - 1000), u.next(100)])
    assert np.array_equal(got, ref)


@needs_numba
@pytest.mark.parametrize("cfg", CONFIGS)
def test_engine_logits_are_model_step(cfg):
    m = _model(cfg)
    e = eng.Engine(m, streams=2, backend="numba")
    n = 5 * m.lookback + 3
    temps = np.linspace(0.7, 1.3, 2 * n, dtype=np.float32).reshape(n, 2)
    classes, logits = _run(e, n, [4, 5], temps, logits=True)
    # The same samples teacher-forced through the reference step.
    lb = m.lookback
    x = torch.cat([torch.full((2, lb), cfg.levels // 2), torch.from_numpy(classes)], 1)
    ref, state = [], m.start(2)
    with torch.no_grad():
        for t in range(n):
            out, state = m.step(x[:, t : t + lb], state)
            ref.append(out)
    ref = torch.log_softmax(torch.stack(ref, 1), -1)
    torch.testing.assert_close(torch.log_softmax(torch.from_numpy(logits), -1), ref, atol=2e-5, rtol=1e-5)


@needs_numba
@pytest.mark.parametrize("cfg", CONFIGS)
def test_compiled_and_portable_paths_generate_the_same(cfg):
    """fp32: the kernels, the torch fallback and sample.generate draw the very same samples."""
    m = _model(cfg)
    n, seeds = 400, [1, 2, 3]
    temps = np.tile(np.linspace(0.8, 1.2, n, dtype=np.float32)[:, None], (1, 3))
    ref = sample.generate(m, n_samples=n, temperature=torch.from_numpy(temps.T.copy()), seeds=seeds).numpy()
    compiled = _run(eng.Engine(m, streams=3, backend="numba"), n, seeds, temps)
    portable = _run(eng.Engine(m, streams=3, backend="torch"), n, seeds, temps, block=77)
    assert np.array_equal(compiled, ref)
    assert np.array_equal(portable, ref)


@needs_numba
def test_engine_batch_equals_singles_and_blocks_equal_one_go():
    m = _model()
    seeds = [11, 22, 33]
    temps = np.stack([np.linspace(0.8, 1.3, 300), np.full(300, 0.9), np.linspace(1.2, 0.6, 300)], 1).astype(np.float32)
    batch = _run(eng.Engine(m, streams=3), 300, seeds, temps)
    for i, s in enumerate(seeds):
        single = _run(eng.Engine(m, streams=1), 300, [s], temps[:, i : i + 1], block=37)
        assert np.array_equal(single[0], batch[i])  # exact: a stream's arithmetic ignores its neighbours
    assert not np.array_equal(batch[0], batch[1])


@needs_numba
def test_engine_priming_is_prime_state():
    m = _model()
    lb = m.lookback
    prime = torch.randint(0, TINY.levels, (2, 7 * lb + 3))
    hist, state = sample.prime_state(m, prime)
    e = eng.Engine(m, streams=2, backend="numba")
    e.prime(prime.numpy())
    assert e.t == 0 and np.array_equal(e.history, hist.numpy())
    for k, h in enumerate(state.hidden):
        got = torch.from_numpy(e.hidden[k, :, 0])  # (layers, B, dim)
        torch.testing.assert_close(got, h, atol=1e-5, rtol=1e-5)
    # Continuing from the primed engine = the torch stream continuing from prime_state.
    temps = np.ones((200, 2), np.float32)
    ref = sample.generate(m, n_samples=200, temperature=torch.ones(2), seeds=[8, 9], history=hist, state=state).numpy()
    assert np.array_equal(_run(e, 200, [8, 9], temps), ref)
    # A short prime is padded with silence; a 1-D prime primes every stream alike.
    e.prime(prime[0, :3].numpy())
    assert e.history.shape == (2, lb) and np.array_equal(e.history[0], e.history[1])


@needs_numba
def test_snapshot_restore_and_reset():
    m = _model()
    e = eng.Engine(m, streams=1)
    e.prime(np.arange(40) % TINY.levels)
    snap = e.snapshot()
    u = np.full((100, 1), 0.3, np.float32)
    first = e.generate(np.ones((100, 1), np.float32), u)
    e.restore(snap)
    assert np.array_equal(e.generate(np.ones((100, 1), np.float32), u), first)
    e.reset()
    fresh = eng.Engine(m, streams=1)
    assert np.array_equal(e.generate(np.ones((50, 1), np.float32), u[:50]),
                          fresh.generate(np.ones((50, 1), np.float32), u[:50]))


@needs_numba
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_int8_keeps_the_distribution_close(backend):
    """The tolerance test_generate uses for the torch int8 path."""
    torch.manual_seed(0)
    cfg = ModelConfig(frame_sizes=(4, 4), dim=64, levels=256, weight_norm=False)
    m = SampleRNN(cfg).eval()
    with torch.no_grad():
        m.mlp.output.weight.mul_(30.0)  # peaky distributions, like a trained model's
    e8 = eng.Engine(m, streams=2, precision="int8", backend=backend)
    n = 6 * m.lookback
    classes, got = _run(e8, n, [1, 2], logits=True)
    lb = m.lookback
    x = torch.cat([torch.full((2, lb), cfg.levels // 2), torch.from_numpy(classes)], 1)
    with torch.no_grad():
        ref = torch.log_softmax(m(x)[0], -1)
    got = torch.log_softmax(torch.from_numpy(got), -1)
    kl = (ref.exp() * (ref - got)).sum(-1)
    tv = 0.5 * (ref.exp() - got.exp()).abs().sum(-1)
    assert ref.exp().max(-1).values.mean() > 0.2
    assert kl.mean() < 2e-3 and tv.max() < 0.05, (kl.mean().item(), tv.max().item())
    assert e8.name == f"{backend}-int8"
    if backend == "numba":
        assert e8.layout.wq.nbytes > 3 * e8.layout.wf.nbytes / 4 / 4  # the big matrices really are int8


def test_backend_choice(monkeypatch, capsys):
    monkeypatch.setattr(eng, "numba_available", lambda: False)
    assert eng.pick_backend("auto") == "torch"
    assert "numba is not installed" in capsys.readouterr().err
    with pytest.raises(ValueError):
        eng.pick_backend("numba")
    e = eng.Engine(_model(), streams=1)  # the portable path still plays
    assert e.name == "torch-fp32"
    assert e.generate(np.ones((10, 1), np.float32), np.full((10, 1), 0.5, np.float32)).shape == (1, 10)


def _labelled(seed=0):
    """A model with three labels whose tables are not zero (as after training)."""
    m = _model(ModelConfig(frame_sizes=(4, 2), dim=16, levels=64, labels=("a", "b", "c")), seed)
    with torch.no_grad():
        for tier in m.tiers:
            tier.label_table.normal_(0, 0.5)
    return m


@needs_numba
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_a_labelled_model_plays_unsteered_and_steered_as_the_model(backend):
    """Unsteered is "no label" (row 0, which training has moved away from zero); a label or a
    mix of labels set on the engine is what sample.generate draws with those labels."""
    m = _labelled()
    n, seeds = 300, [5, 6]
    temps = np.ones((n, 2), np.float32)
    plain = sample.generate(m, n_samples=n, temperature=torch.ones(2), seeds=seeds).numpy()
    assert np.array_equal(_run(eng.Engine(m, streams=2, backend=backend), n, seeds, temps), plain)
    rows = torch.tensor([2, 1])
    steered = sample.generate(m, n_samples=n, temperature=torch.ones(2), seeds=seeds, labels=rows).numpy()
    e = eng.Engine(m, streams=2, backend=backend)
    e.set_labels(rows.numpy().copy())
    assert np.array_equal(_run(e, n, seeds, temps), steered)
    assert not np.array_equal(steered, plain)
    # A mix of labels (a morph's point): the logits are model.step's with those weights.
    mix = torch.tensor([[0.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.25, 0.75]])
    e = eng.Engine(m, streams=2, backend=backend)
    e.set_labels(mix.numpy())
    k = 3 * m.lookback
    classes, logits = _run(e, k, seeds, temps[:k], logits=True)
    lb = m.lookback
    x = torch.cat([torch.full((2, lb), m.cfg.levels // 2), torch.from_numpy(classes)], 1)
    ref, state = [], m.start(2)
    with torch.no_grad():
        for t in range(k):
            out, state = m.step(x[:, t : t + lb], state, mix)
            ref.append(out)
    torch.testing.assert_close(torch.from_numpy(logits), torch.stack(ref, 1), atol=2e-5, rtol=1e-5)


def test_labels_on_a_model_without_them_are_refused():
    with pytest.raises(ValueError, match="trained without labels"):
        eng.Engine(_model(), backend="torch").set_labels(1)


@needs_numba
@pytest.mark.parametrize("cfg", CONFIGS[:3])
def test_truncation_in_the_kernels_is_sample_logits(cfg):
    """min-p and top-p curves per stream per sample: the compiled draw keeps the classes
    sample_logits keeps, so both backends draw the very same samples; off (0 / 1) is plain."""
    m = _model(cfg)
    n, seeds = 500, [7, 8, 9]
    temps = np.tile(np.linspace(0.9, 1.6, n, dtype=np.float32)[:, None], (1, 3))
    min_p = np.stack([np.zeros(n), np.linspace(0.0, 0.2, n), np.full(n, 0.05)], 1).astype(np.float32)
    top_p = np.stack([np.linspace(1.0, 0.6, n), np.ones(n), np.full(n, 0.9)], 1).astype(np.float32)

    def run(backend, mp, tp):
        e = eng.Engine(m, streams=3, backend=backend)
        u = eng.Uniforms(seeds)
        out = []
        for s in range(0, n, 100):
            cut = slice(s, s + 100)
            out.append(e.generate(temps[cut], u.next(100), min_p=None if mp is None else mp[cut],
                                  top_p=None if tp is None else tp[cut]))
        return np.concatenate(out, 1)

    compiled, portable = run("numba", min_p, top_p), run("torch", min_p, top_p)
    assert np.array_equal(compiled, portable)
    plain = run("numba", None, None)
    assert not np.array_equal(compiled[1:], plain[1:])  # truncation changed the draws
    off = run("numba", np.zeros_like(min_p), np.ones_like(top_p))
    assert np.array_equal(off, plain)  # min-p 0 and top-p 1 are plain sampling, bit for bit


def test_truncation_arrays_must_match_the_temperatures():
    e = eng.Engine(_model(), streams=2, backend="torch")
    with pytest.raises(ValueError, match=r"min_p \(3, 1\) must be \(n, 2\)"):
        e.generate(np.ones((3, 2), np.float32), np.full((3, 2), 0.5, np.float32), min_p=np.zeros((3, 1)))
