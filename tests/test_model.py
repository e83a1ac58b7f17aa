import pytest
import torch
import torch.nn.functional as F

from inspire.audio.quantize import silence_level
from inspire.config import PRESETS, ModelConfig, check_compatible
from inspire.samplernn.model import SampleRNN, tap_tables_from_conv

CONFIGS = [
    ModelConfig(frame_sizes=(4,), dim=24, levels=16),
    ModelConfig(frame_sizes=(4, 2), dim=24, levels=16),
    ModelConfig(frame_sizes=(2, 2, 2), dim=16, levels=32, rnn="lstm", rnn_layers=2),
    ModelConfig(frame_sizes=(4, 2), dim=16, levels=16, weight_norm=False, rnn_layers=2),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.frame_sizes}-{c.rnn}-{c.rnn_layers}")
def test_shapes_and_causality(cfg):
    torch.manual_seed(0)
    m = SampleRNN(cfg).eval()
    lb, T = m.lookback, 6 * m.lookback
    x = torch.randint(0, cfg.levels, (2, lb + T))
    logits, state = m(x)
    assert logits.shape == (2, T, cfg.levels)
    assert len(state) == len(cfg.frame_sizes)
    # Changing sample j (an input at position j) may only change predictions of later samples.
    j = lb + T // 2
    y = x.clone()
    y[:, j] = (y[:, j] + 5) % cfg.levels
    logits2, _ = m(y)
    first_changed = (logits2 - logits).abs().amax(dim=(0, 2)).nonzero()[0].item() + lb
    assert first_changed == j + 1
    assert torch.equal(logits2[:, : j + 1 - lb], logits[:, : j + 1 - lb])


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.frame_sizes}-{c.rnn}-{c.rnn_layers}")
def test_step_equals_forward(cfg):
    torch.manual_seed(1)
    m = SampleRNN(cfg).eval()
    lb, T = m.lookback, 3 * m.lookback
    x = torch.randint(0, cfg.levels, (3, lb + 2 * T))
    with torch.no_grad():
        # Two windows, state carried, as in truncated BPTT.
        a, st = m(x[:, : lb + T])
        b, _ = m(x[:, T:], st)
        ref = torch.cat([a, b], dim=1)
        s, outs = m.start(3), []
        for t in range(2 * T):
            logits, s = m.step(x[:, t : t + lb], s)
            outs.append(logits)
    assert torch.allclose(torch.stack(outs, 1), ref, atol=1e-5)


def test_folded_weight_norm_is_the_same_function():
    torch.manual_seed(2)
    m = SampleRNN(CONFIGS[1]).eval()
    x = torch.randint(0, 16, (2, m.lookback + 32))
    with torch.no_grad():
        before, _ = m(x)
        after, _ = m.fold_weight_norm()(x)
    assert torch.allclose(before, after, atol=1e-5)
    assert not any("parametrizations" in k for k in m.state_dict())


def test_tap_tables_equal_embedding_then_convolution():
    torch.manual_seed(3)
    levels, emb_dim, taps, dim = 32, 12, 4, 20
    embedding = torch.nn.Embedding(levels, emb_dim)
    conv = torch.nn.Conv1d(emb_dim, dim, taps, bias=False)
    cfg = ModelConfig(frame_sizes=(taps,), dim=dim, levels=levels)
    m = SampleRNN(cfg)
    with torch.no_grad():
        m.mlp.taps.copy_(tap_tables_from_conv(embedding.weight, conv.weight))
    x = torch.randint(0, levels, (3, 50))
    with torch.no_grad():
        classic = conv(embedding(x).transpose(1, 2)).transpose(1, 2)  # (B, 50 - taps + 1, dim)
        tables = m.mlp.tap_sum(x.unfold(1, taps, 1))
    assert torch.allclose(classic, tables, atol=1e-5)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_and_trains_a_window(name):
    """Each preset's model and training config fit together, and its model runs forward and
    backward over two top-tier frames (every parameter gets a finite gradient)."""
    p = PRESETS[name]
    check_compatible(p.model, p.train)
    torch.manual_seed(0)
    m = SampleRNN(p.model)
    t = 2 * m.lookback
    x = torch.randint(0, p.model.levels, (2, m.lookback + t))
    logits, state = m(x)
    assert logits.shape == (2, t, p.model.levels)
    assert [s.shape[-2:] for s in state] == [(2, p.model.dim)] * len(p.model.frame_sizes)
    F.cross_entropy(logits.reshape(-1, p.model.levels), x[:, m.lookback :].reshape(-1)).backward()
    assert all(q.grad is not None and torch.isfinite(q.grad).all() for q in m.parameters())


def test_tiny_model_overfits_a_short_clip():
    torch.manual_seed(4)
    cfg = ModelConfig(frame_sizes=(4,), dim=32, levels=16)
    m = SampleRNN(cfg)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    t = torch.arange(m.lookback + 256)
    x = ((torch.sin(t * 0.3) + 1) * 7.5).round().long().unsqueeze(0)  # a sine, quantized to 16 levels
    losses = []
    for _ in range(60):
        logits, _ = m(x)
        loss = F.cross_entropy(logits.reshape(-1, 16), x[:, m.lookback :].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


@pytest.mark.parametrize("levels", [2, 15, 16, 256, 1024])
def test_silence_is_the_middle_class_for_both_quantizations(levels):
    """Generation starts from (and pads primes with) silence_level(levels=...), whatever the kind."""
    assert silence_level(kind="mu-law", levels=levels) == silence_level(kind="linear", levels=levels) == levels // 2
