"""The collapse guard: invisible when nothing collapses, rewinds what does, and its recorded
interventions replay exactly (alone or in a batch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inspire.audio.quantize import dequantize
from inspire.config import ModelConfig
from inspire.errors import UserInputError
from inspire.samplernn import guard, sample
from inspire.samplernn.model import SampleRNN

SR = 16000
CFG = ModelConfig(frame_sizes=(4, 2), dim=24, levels=64)
N = 6 * 256
QUICK = dict(span_s=0.032, rewind_s=0.0, window_s=0.016, retries=3)  # W = 256 samples, 2 frames a span


def _model():
    torch.manual_seed(0)
    return SampleRNN(CFG).eval()


def _sharp_model():
    """Peaked distributions at low temperature, noise at high: collapses part-way up a ramp."""
    m = _model().fold_weight_norm()
    with torch.no_grad():
        m.mlp.output.weight.mul_(30.0)
    return m


def _ramp(starts: np.ndarray, n: int, lo: float = 0.9, hi: float = 1.2) -> torch.Tensor:
    t = np.asarray(starts)[:, None] + np.arange(n)
    return torch.from_numpy((lo + (hi - lo) * t / N).astype(np.float32))


def _steep(starts: np.ndarray, n: int) -> torch.Tensor:
    return _ramp(starts, n, 0.2, 2.2)


def _min_p(starts: np.ndarray, n: int) -> torch.Tensor:
    return torch.full((len(starts), n), 0.01)


def _run(model, seeds, config, temperature=_ramp, **kw):
    log: list = []
    out = torch.cat(list(guard.stream(model, n_samples=N, temperature=temperature, seeds=seeds, sample_rate=SR,
                                      quantization="mu-law", config=config, log=log, **kw)), dim=1)
    return out, log


def test_without_a_collapse_the_guard_changes_nothing():
    m, seeds = _model(), [5, 6]
    got, log = _run(m, seeds, guard.GuardConfig(flatness=0.99, **QUICK), min_p=_min_p)
    want = sample.generate(m, n_samples=N, temperature=lambda s, n: _ramp(np.full(2, s), n), seeds=seeds,
                           min_p=lambda s, n: _min_p(np.full(2, s), n))
    assert log == [[], []]
    assert torch.equal(got, want)


def test_interventions_are_recorded_and_replay_exactly():
    m, seeds = _sharp_model(), [2, 3]
    config = guard.GuardConfig(flatness=0.3, budget=10.0, **QUICK)  # retries, not the budget, end it
    got, log = _run(m, seeds, config, temperature=_steep, min_p=_min_p)
    assert got.shape == (2, N)
    events = [e for stream in log for e in stream]
    assert any(e.get("to", 0) > 0 for e in events), "the guard never rewound part-way into a clip"
    assert len({e["at"] for e in events}) > 1  # collapses seen at more than one place
    for e in events:
        assert e["at"] % 256 == 0 and e["flatness"] > 0.3
        if "to" in e:
            assert 0 <= e["to"] < e["at"] and e["to"] % 256 == 0 and 0 < e["ease"] <= 1
    assert any(e.get("ease", 1.0) < 1.0 for e in events)  # redrawn a third time: eased
    assert any(e.get("gave_up") for e in events)  # ...and let be after `retries`
    # Alone, from the record: the same samples, with detection off over the recorded length.
    for i, seed in enumerate(seeds):
        alone, relog = _run(m, [seed], config, temperature=_steep, min_p=_min_p, replay=[log[i]], replay_until=N)
        assert torch.equal(alone[0], got[i]), f"stream {i} did not replay"
        assert relog == [log[i]]


def test_a_stream_that_falls_again_is_eased_held_and_released():
    """A fall at the curve's own temperature is drawn again as it is; a stream that falls again is
    eased below the lowest factor in force, held past where it fell, then released; and it ends
    less noisy than a guard that only redraws (ease 1)."""
    m, seeds = _sharp_model(), [2, 3, 4, 5]
    timing = dict(hold_s=0.016, release_s=0.032)  # 256 and 512 samples
    plain = guard.GuardConfig(flatness=0.3, budget=10.0, ease=1.0, **timing, **{**QUICK, "retries": 6})
    eased = guard.GuardConfig(flatness=0.3, budget=10.0, ease=0.8, **timing, **{**QUICK, "retries": 6})
    redrawn, log1 = _run(m, seeds, plain, temperature=_steep)
    got, log = _run(m, seeds, eased, temperature=_steep)
    assert all(e.get("ease", 1.0) == 1.0 and "hold_to" not in e for stream in log1 for e in stream)
    deeper = 0
    for stream in log:
        falls = [e for e in stream if "to" in e]
        assert falls[0]["ease"] == 1.0 and "hold_to" not in falls[0]  # the first fall: another draw
        for before, e in zip(falls, falls[1:], strict=False):
            if e["ease"] < 1.0:
                assert e["hold_to"] == e["at"] + 256 and e["release_to"] == e["hold_to"] + 512
            if e["to"] < before.get("release_to", 0):  # redrawn while the last ease was in force: lower still
                assert e["ease"] < before["ease"]
                deeper += 1
    assert deeper > 0

    def noise(x):
        audio = dequantize(x.numpy(), kind="mu-law", levels=CFG.levels)
        return guard.frame_flatness(torch.from_numpy(audio).float())[:, -2:].mean().item()

    assert noise(got) < 0.3 < noise(redrawn)
    for i, seed in enumerate(seeds):  # eased, held and released, it still replays exactly
        alone, _ = _run(m, [seed], eased, temperature=_steep, replay=[log[i]], replay_until=N)
        assert torch.equal(alone[0], got[i])


def test_the_guard_stops_redrawing_once_its_budget_is_spent():
    """A stream that falls into noise again and again is let be once the redrawn stretches add up
    to `budget` of the clip, however many retries each place would still get."""
    m, seeds = _sharp_model(), [2, 3]
    free, _ = _run(m, seeds, guard.GuardConfig(flatness=0.3, **{**QUICK, "retries": 50}), temperature=_steep)
    config = guard.GuardConfig(flatness=0.3, budget=0.75, **{**QUICK, "retries": 50})
    got, log = _run(m, seeds, config, temperature=_steep)
    for stream in log:
        redrawn = sum(e["at"] - e["to"] for e in stream if "to" in e)
        assert 0 < redrawn <= 0.75 * N
        assert stream[-1].get("gave_up") and sum(bool(e.get("gave_up")) for e in stream) == 1
    assert not torch.equal(free, got)  # without the budget it went on redrawing
    for i, seed in enumerate(seeds):  # and the record replays exactly
        alone, _ = _run(m, [seed], config, temperature=_steep, replay=[log[i]], replay_until=N)
        assert torch.equal(alone[0], got[i])


def test_replaying_a_guarded_clip_longer_keeps_its_start():
    m = _model()
    config = guard.GuardConfig(flatness=0.2, **QUICK)
    got, log = _run(m, [9], config)
    longer = torch.cat(list(guard.stream(m, n_samples=N + 512, temperature=_ramp, seeds=[9], sample_rate=SR,
                                         quantization="mu-law", config=config, replay=log, replay_until=N)), dim=1)
    assert torch.equal(longer[:, :N], got)


def test_frame_flatness_tells_noise_from_tone_and_silence():
    rng = np.random.default_rng(0)
    n = 8 * guard.FRAME
    t = np.arange(n) / SR
    audio = np.stack([0.3 * rng.standard_normal(n), 0.5 * np.sin(2 * np.pi * 440 * t), np.zeros(n),
                      1e-4 * rng.standard_normal(n)]).astype(np.float32)
    flat = guard.frame_flatness(torch.from_numpy(audio)).numpy()
    assert flat.shape == (4, 8)
    assert np.all((flat[0] > 0.45) & (flat[0] < 0.65))  # white noise reads about 0.56
    assert np.all(flat[1] < 0.05)
    assert np.all(flat[2] == 0) and np.all(flat[3] == 0)  # silent: never noise


@pytest.mark.parametrize(
    "field, value",
    [("flatness", 1.2), ("span_s", 0), ("retries", 0), ("ease", 0), ("ease", 1.5), ("budget", 0), ("hold_s", -1),
     ("release_s", -1)],
)
def test_bad_guard_settings_are_one_line_errors(field, value):
    with pytest.raises(UserInputError) as e:
        guard.GuardConfig(**{field: value})
    assert field in str(e.value) and "\n" not in str(e.value)


def test_malformed_recorded_interventions_are_refused():
    assert guard.check_replay([{"at": 100, "to": 0, "ease": 1.0}, {"at": 200, "gave_up": True}])
    assert guard.check_replay([{"at": 100, "to": 0, "ease": 0.9, "hold_to": 150, "release_to": 300}])
    for bad in ("x", [{"at": 1.5}], [{"at": 100, "to": 100, "ease": 1.0}], [{"at": 100, "to": 0, "ease": 0}],
                [{"at": 100, "to": 0, "ease": 0.9, "hold_to": 50}],
                [{"at": 100, "to": 0, "ease": 0.9, "hold_to": 150, "release_to": 120}]):
        with pytest.raises(UserInputError):
            guard.check_replay(bad)


def test_a_shorter_replay_is_the_start_of_the_clip():
    m = _sharp_model()
    config = guard.GuardConfig(flatness=0.3, **QUICK)
    got, log = _run(m, [2], config, temperature=_steep)
    assert any(e["at"] > 600 and e.get("to", N) < 300 for e in log[0]), log  # a rewind across the new end
    short = torch.cat(list(guard.stream(m, n_samples=300, temperature=_steep, seeds=[2], sample_rate=SR,
                                        quantization="mu-law", config=config, replay=log, replay_until=N)), dim=1)
    assert torch.equal(short, got[:, :300])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a GPU machine)")
def test_guard_on_a_captured_cuda_graph_equals_eager_and_replays():
    m = _sharp_model().to("cuda")
    config = guard.GuardConfig(flatness=0.3, **QUICK)

    def run(graph, **kw):
        log: list = []
        curve = lambda s, n: _steep(s, n).to("cuda")  # noqa: E731
        out = torch.cat(list(guard.stream(m, n_samples=N, temperature=curve, seeds=[2, 3], sample_rate=SR,
                                          quantization="mu-law", config=config, log=log, graph=graph,
                                          min_p=lambda s, n: _min_p(s, n).to("cuda"), **kw)), dim=1)
        return out, log

    eager, log = run(False)
    captured, log2 = run(True)
    assert log2 == log and any("to" in e for r in log for e in r)
    assert torch.equal(captured, eager)
    replayed, _ = run(True, replay=log, replay_until=N)
    assert torch.equal(replayed, eager)


def test_the_guards_flatness_is_curations_on_the_same_frames():
    from inspire.audio import spectral
    from inspire.curate import scores

    rng = np.random.default_rng(1)
    t = np.arange(16 * guard.FRAME) / SR
    x = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    x[8 * guard.FRAME :] = 0.3 * rng.standard_normal(8 * guard.FRAME)  # music, then noise
    frames = spectral.stft(x, n_fft=guard.FRAME, hop=guard.FRAME, center=False)
    numpy_side = scores.frame_flatness(spectral.power(frames))
    torch_side = guard.frame_flatness(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(torch_side, numpy_side, rtol=1e-3, atol=1e-5)
