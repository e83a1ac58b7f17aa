"""Steering: labelled models (step == forward with labels moving mid-window, fast == reference,
morphs are embedding interpolations), guidance, the period stepper, and old configs unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import save_checkpoint
from inspire import config, schedule
from inspire.config import ModelConfig
from inspire.errors import CheckpointError, ConfigError, UserInputError
from inspire.samplernn import graph, sample
from inspire.samplernn.model import SampleRNN

LABELS = ("pads", "drums", "voice")
CONFIGS = [
    ModelConfig(frame_sizes=(4, 2), dim=16, levels=32, labels=LABELS),
    ModelConfig(frame_sizes=(2, 2, 2), dim=16, levels=32, rnn="lstm", rnn_layers=2, labels=LABELS[:2]),
]
IDS = ["gru-3tier", "lstm-4tier"]
SR = 1000


def _model(cfg=CONFIGS[0], seed=0, fold=True):
    torch.manual_seed(seed)
    m = SampleRNN(cfg).eval()
    with torch.no_grad():  # label tables start at zero (no effect): give them some
        for tier in m.tiers:
            tier.label_table.normal_(0, 1.0)
    return m.fold_weight_norm() if fold else m


def _morph(b: int, rows: int, a: int, z: int, length: int):
    """A label function: weights moving linearly from row a to row z over `length` samples."""
    def labels(positions):
        alpha = (positions.float() / length).clamp(0, 1)  # (m,)
        w = torch.zeros(b, positions.numel(), rows)
        w[:, :, a] += 1 - alpha
        w[:, :, z] += alpha
        return w
    return labels


# ---------------------------------------------------------------------------------------------
# Config


def test_configs_without_labels_load_unchanged():
    old = config.to_dict(ModelConfig(frame_sizes=(4,), dim=16, levels=32))
    del old["labels"]  # a config written before labels existed
    cfg = config.from_dict(ModelConfig, old)
    assert cfg.labels == () and cfg.label_rows == 0
    m = SampleRNN(cfg)
    assert not any("label" in k for k in m.state_dict())
    train = config.to_dict(config.TrainConfig())
    del train["label_by"], train["unlabelled_share"]
    assert config.from_dict(config.TrainConfig, train).label_by == "none"


def test_labelled_config_round_trips_and_checks_names():
    cfg = CONFIGS[0]
    assert config.from_dict(ModelConfig, config.to_dict(cfg)) == cfg
    assert cfg.label_rows == 4
    with pytest.raises(ConfigError, match="reserved"):
        ModelConfig(labels=("a", "None"))
    with pytest.raises(ConfigError, match="unique"):
        ModelConfig(labels=("a", "a"))
    with pytest.raises(ConfigError, match="label_by"):
        config.TrainConfig(label_by="tracks")
    with pytest.raises(ConfigError, match="unlabelled_share"):
        config.TrainConfig(unlabelled_share=1.0)
    assert config.TrainConfig(label_by="sections.csv").label_by == "sections.csv"


# ---------------------------------------------------------------------------------------------
# The model


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_step_equals_forward_with_labels_moving_mid_window(cfg):
    m = _model(cfg, fold=False)
    lb, b, t_len = m.lookback, 3, 4 * m.lookback
    x = torch.randint(0, cfg.levels, (b, lb + 2 * t_len))
    rows = torch.randint(0, cfg.label_rows, (b, 2 * t_len))  # a new label at arbitrary samples
    weights = torch.softmax(torch.randn(b, 2 * t_len, cfg.label_rows), -1)  # and arbitrary mixes
    fast = sample.FastStepper(m)
    with torch.no_grad():
        for labels in (rows, weights):
            a, st = m(x[:, : lb + t_len], labels=labels[:, :t_len])
            c, _ = m(x[:, t_len:], st, labels=labels[:, t_len:])
            ref = torch.cat([a, c], 1)
            s_slow, s_fast, slow, quick = m.start(b), fast.start(b), [], []
            for t in range(2 * t_len):
                l1, s_slow = m.step(x[:, t : t + lb], s_slow, labels[:, t])
                l2, s_fast = fast.step(x[:, t : t + lb], s_fast, labels[:, t])
                slow.append(l1)
                quick.append(l2)
            torch.testing.assert_close(torch.stack(slow, 1), ref, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(torch.stack(quick, 1), ref, atol=1e-5, rtol=1e-5)


def test_labels_change_predictions_and_none_is_row_zero():
    m = _model()
    x = torch.randint(0, 32, (2, m.lookback + 4 * m.lookback))
    with torch.no_grad():
        plain, _ = m(x)
        row0, _ = m(x, labels=torch.zeros(2, dtype=torch.long))
        onehot, _ = m(x, labels=F.one_hot(torch.zeros(2, dtype=torch.long), 4).float())
        drums, _ = m(x, labels=torch.tensor([2, 2]))
    assert torch.equal(plain, row0)
    torch.testing.assert_close(onehot, row0)
    assert not torch.allclose(drums, plain, atol=1e-3)


def test_a_morph_is_an_interpolation_of_embeddings():
    m = _model()
    w = torch.tensor([[0.0, 0.25, 0.75, 0.0]])
    for tier in m.tiers:
        mixed = tier.label_bias(w)
        want = 0.25 * tier.label_table[1] + 0.75 * tier.label_table[2]
        torch.testing.assert_close(mixed[0], want)


def test_a_model_without_labels_refuses_them():
    m = SampleRNN(ModelConfig(frame_sizes=(4,), dim=16, levels=32)).eval()
    x = torch.randint(0, 32, (1, m.lookback * 3))
    with pytest.raises(ValueError, match="without labels"):
        m(x, labels=torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="without labels"):
        sample.generate(m, n_samples=8, temperature=torch.ones(1), seeds=[0], labels=torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="needs a model trained with labels"):
        sample.generate(m, n_samples=8, temperature=torch.ones(1), seeds=[0], guidance=2.0)


def test_a_tiny_model_learns_what_its_labels_mean():
    """Two 'tracks' (a slow and a fast sine) under two labels: after a little training the right
    label predicts each better than the wrong one, and "no label" sits in between."""
    torch.manual_seed(5)
    cfg = ModelConfig(frame_sizes=(4,), dim=32, levels=16, labels=("slow", "fast"))
    m = SampleRNN(cfg)
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    t = torch.arange(m.lookback + 256).float()
    phase = torch.rand(8, 1) * 6.28
    slow = ((torch.sin(t * 0.05 + phase[:4]) + 1) * 7.5).round().long()
    fast = ((torch.sin(t * 0.9 + phase[4:]) + 1) * 7.5).round().long()
    x, rows = torch.cat([slow, fast]), torch.tensor([1] * 4 + [2] * 4)
    for i in range(80):
        lab = rows if i % 5 else torch.zeros_like(rows)  # a share trains with "no label"
        logits, _ = m(x, labels=lab)
        loss = F.cross_entropy(logits.reshape(-1, 16), x[:, m.lookback :].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    def nll(lab):
        with torch.no_grad():
            logits, _ = m(x, labels=lab)
        return F.cross_entropy(logits.reshape(-1, 16), x[:, m.lookback :].reshape(-1)).item()

    right, wrong, none = nll(rows), nll(3 - rows), nll(torch.zeros_like(rows))
    assert right < none < wrong


# ---------------------------------------------------------------------------------------------
# Sampling


def test_steered_stream_is_model_step_with_those_labels():
    m = _model()
    b, n, lb = 2, 150, m.lookback
    morph = _morph(b, 4, 1, 3, n)
    kw = dict(n_samples=n, temperature=torch.ones(b), seeds=[1, 2], labels=morph)
    got = sample.generate(m, **kw)
    assert torch.equal(sample.generate(m, fast=False, **kw), got)
    assert torch.equal(torch.cat(list(sample.stream(m, block=37, **kw)), 1), got)  # blocks off the frame grid
    # By hand: model.step with the morph's weights, the same uniforms.
    noise, hist, state, out = sample.StreamNoise([1, 2], torch.device("cpu")), torch.full((b, lb), 16), m.start(b), []
    with torch.no_grad():
        for t in range(n):
            logits, state = m.step(hist[:, -lb:], state, morph(torch.tensor([t]))[:, 0])
            nxt = sample.sample_logits(logits, torch.ones(b), noise.next())
            out.append(nxt)
            hist = torch.cat([hist, nxt[:, None]], 1)
    assert torch.equal(torch.stack(out, 1), got)
    # Constant labels: rows and their one-hot weights are the same thing; other labels differ.
    rows = sample.generate(m, n_samples=n, temperature=torch.ones(b), seeds=[1, 2], labels=torch.tensor([2, 2]))
    onehot = sample.generate(m, n_samples=n, temperature=torch.ones(b), seeds=[1, 2],
                             labels=F.one_hot(torch.tensor([2, 2]), 4).float())
    assert torch.equal(rows, onehot)
    assert not torch.equal(rows, sample.generate(m, n_samples=n, temperature=torch.ones(b), seeds=[1, 2]))


def test_guide_mixes_log_probabilities():
    logits = torch.randn(6, 10)
    lc, lu = torch.log_softmax(logits[:3], -1), torch.log_softmax(logits[3:], -1)
    torch.testing.assert_close(sample.guide(logits, 1.0), lc)
    torch.testing.assert_close(sample.guide(logits, 0.0), lu)
    torch.testing.assert_close(sample.guide(logits, 3.0), lu + 3.0 * (lc - lu))


def test_guidance_one_is_steering_and_zero_is_unsteered():
    m = _model()
    kw = dict(n_samples=120, temperature=torch.ones(2), seeds=[3, 4])
    steered = sample.generate(m, labels=torch.tensor([1, 3]), **kw)
    plain = sample.generate(m, **kw)
    assert torch.equal(sample.generate(m, labels=torch.tensor([1, 3]), guidance=1.0, **kw), steered)
    assert torch.equal(sample.generate(m, labels=torch.tensor([1, 3]), guidance=0.0, **kw), plain)
    strong = sample.generate(m, labels=torch.tensor([1, 3]), guidance=4.0, **kw)
    assert not torch.equal(strong, steered)
    with pytest.raises(ValueError, match=r"guidance weight must be in \[0, 10\]"):
        sample.generate(m, labels=torch.tensor([1, 3]), guidance=11.0, **kw)


def test_guided_priming_primes_both_halves():
    m = _model()
    lb = m.lookback
    prime = torch.randint(0, 32, (2, 5 * lb))
    lab = torch.tensor([1, 2])
    h, guided = sample.prime_state(m, prime, lab, guided=True)
    h1, cond = sample.prime_state(m, prime, lab)
    h0, uncond = sample.prime_state(m, prime)
    assert torch.equal(h, h1) and torch.equal(h, h0) and h.shape == (2, lb)
    for g, c, u in zip(guided.hidden, cond.hidden, uncond.hidden, strict=True):
        torch.testing.assert_close(g, torch.cat([c, u], dim=-2))
    # Priming with labels equals stepping model.step through the prime with them.
    with torch.no_grad():
        state = m.start(2)
        for t in range(prime.shape[1] - lb):
            _, state = m.step(prime[:, t : t + lb], state, lab)
    for a, b in zip(cond.hidden, state.hidden, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    kw = dict(n_samples=50, temperature=torch.ones(2), seeds=[5, 6], history=h, labels=lab)
    assert sample.generate(m, state=guided, guidance=2.0, **kw).shape == (2, 50)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("guidance", [None, 2.5])
def test_period_stepper_equals_stream_with_steering(cfg, guidance):
    m = _model(cfg)
    b = 3
    kw = dict(n_samples=203, temperature=torch.full((b,), 0.9), seeds=[3, 1, 4], block=64, guidance=guidance,
              labels=_morph(b, cfg.label_rows, 1, cfg.label_rows - 1, 203))
    want = torch.cat(list(sample.stream(m, **kw)), dim=1)
    got = torch.cat(list(graph.stream(m, graph=False, **kw)), dim=1)
    assert torch.equal(got, want)
    const = dict(kw, labels=torch.tensor([1, 0, 2]))
    assert torch.equal(torch.cat(list(graph.stream(m, graph=False, **const)), 1),
                       torch.cat(list(sample.stream(m, **const)), 1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a GPU machine)")
def test_cuda_graph_with_steering_and_guidance_equals_eager():
    m = _model().to("cuda")
    b = 4
    labels = _morph(b, 4, 1, 2, 300)
    kw = dict(n_samples=300, temperature=torch.ones(b, device="cuda"), seeds=[1, 2, 3, 4], block=128, guidance=2.0,
              labels=lambda p: labels(p.cpu()).cuda())
    eager = torch.cat(list(graph.stream(m, graph=False, **kw)), dim=1)
    captured = torch.cat(list(graph.stream(m, graph=True, **kw)), dim=1)
    assert torch.equal(captured, eager)


# ---------------------------------------------------------------------------------------------
# Steering curves (inspire.schedule)

NAMES = ("nebula", "through-space", "live, take 2")


def _rows_at(steer, t_s, clip_s):
    return steer.weights(np.asarray(t_s), clip_s, steer.rows(NAMES), len(NAMES) + 1)


def test_steer_forms():
    s = schedule.parse_steer("nebula")
    np.testing.assert_array_equal(_rows_at(s, [0, 5, 100], 10), [[0, 1, 0, 0]] * 3)
    morph = schedule.parse_steer("nebula:through-space")
    w = _rows_at(morph, [0, 2.5, 10], 10)
    np.testing.assert_allclose(w, [[0, 1, 0, 0], [0, 0.75, 0.25, 0], [0, 0, 1, 0]])
    bp = schedule.parse_steer("0s:nebula,20s:through-space,45s:none")
    w = _rows_at(bp, [0, 10, 20, 32.5, 45, 60], 30)  # seconds hold beyond the clip's length
    np.testing.assert_allclose(
        w, [[0, 1, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 1, 0], [0.5, 0, 0.5, 0], [1, 0, 0, 0], [1, 0, 0, 0]])
    frac = schedule.parse_steer('0.25:nebula,0.75:"live, take 2"')
    w = _rows_at(frac, [0, 3, 4, 5, 8], 8)
    np.testing.assert_allclose(
        w, [[0, 1, 0, 0], [0, 0.75, 0, 0.25], [0, 0.5, 0, 0.5], [0, 0.25, 0, 0.75], [0, 0, 0, 1]])
    assert schedule.parse_steer("NEBULA:None").bind(NAMES).labels == ("nebula", "none")
    assert schedule.parse_steer("20s:nebula").unit == "seconds"  # one breakpoint, not a morph from "20s"


def test_steer_resolved_form_reproduces_every_sample():
    for spec, n in [("nebula", 10), ("nebula:through-space", 333), ("0s:nebula,0.1s:none,0.3s:through-space", 500),
                    ("0.2:nebula,0.6:through-space", 101)]:
        s = schedule.parse_steer(spec).bind(NAMES)
        r = s.resolved(n, SR)
        assert r["spec"] == spec and r["times_s"][0] == 0.0 and len(r["times_s"]) == len(r["mixes"])
        t = np.arange(n) / SR
        labels = sorted({k for m in r["mixes"] for k in m})
        points = np.array([[m.get(k, 0.0) for k in labels] for m in r["mixes"]])
        got = np.stack([np.interp(t, r["times_s"], points[:, j]) for j in range(len(labels))], 1)
        full = s.weights(t, (n - 1) / SR, s.rows(NAMES), len(NAMES) + 1)
        want = full[:, [0 if k == "none" else 1 + NAMES.index(k) for k in labels]]
        np.testing.assert_allclose(got, want, atol=1e-5)
    r = schedule.parse_steer("a:b").resolved(11, 10, offset_s=0.5)
    assert r["times_s"] == [0.5, 1.5] and r["mixes"] == [{"a": 1.0}, {"b": 1.0}]


@pytest.mark.parametrize(
    "spec, words",
    [
        ("", "empty"),
        ("a:b:c", "morph is FROM:TO"),
        ("0:a,0.5", "breakpoint"),
        ("0:a,1.5:b", "beyond"),
        ("0.5:a,0.2:b", "increase"),
        ("0:a,2s:b", "mixes"),
        ('"a', "not closed"),
        ("0:a,0.5:", "not a label"),
        ("0s:a,xs:b", "breakpoint"),
    ],
)
def test_bad_steer_specs_are_clear_errors(spec, words):
    with pytest.raises(UserInputError) as e:
        schedule.parse_steer(spec)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_unknown_label_lists_the_known_ones():
    known = r"unknown label 'nebul'; the model knows: nebula, through-space, live, take 2"
    with pytest.raises(UserInputError, match=known):
        schedule.parse_steer("nebul").bind(NAMES)
    with pytest.raises(UserInputError, match="trained without labels"):
        schedule.parse_steer("nebula").bind(())


# ---------------------------------------------------------------------------------------------
# Jobs (inspire.samplernn.generate)

JOB_CFG = ModelConfig(frame_sizes=(4, 2), dim=16, levels=64, labels=("pads", "drums", "live, take 2"))


def _save_run(run_dir, cfg):

    torch.manual_seed(0)
    m = SampleRNN(cfg)
    with torch.no_grad():
        for tier in m.tiers:
            if tier.label_table is not None:
                tier.label_table.normal_(0, 1.0)
    save_checkpoint(run_dir, m, step=3)
    return run_dir


@pytest.fixture
def labelled_run(tmp_path):
    return _save_run(tmp_path / "run", JOB_CFG)


def _wav(path):
    import soundfile as sf

    return sf.read(str(path), dtype="int16")[0]


def test_steered_sweep_meets_every_temperature_and_records_its_curve(labelled_run, tmp_path):
    from inspire import clips
    from inspire.samplernn import generate

    job = dict(n=4, seconds=0.05, temperatures=["0.9", "1.1"], device="cpu", threads=1)
    out = generate.run_job(labelled_run, steers=["pads", 'pads:"live, take 2"'], out=tmp_path / "a", **job)
    recs = sorted(clips.scan(out), key=lambda r: r.index)
    assert [(r.temperature["spec"], r.steer["spec"]) for r in recs] == [
        ("0.9", "pads"), ("1.1", "pads"), ("0.9", 'pads:"live, take 2"'), ("1.1", 'pads:"live, take 2"')]
    assert recs[0].steer == {"spec": "pads", "times_s": [0.0, 0.049938], "mixes": [{"pads": 1.0}, {"pads": 1.0}],
                             "guidance": None}
    assert recs[2].steer["mixes"] == [{"pads": 1.0}, {"live, take 2": 1.0}]
    manifest = clips.read_manifest(out)
    assert manifest["job"]["steers"] == ["pads", 'pads:"live, take 2"']
    # The same job unsteered: other ids, other audio; an unsteered id is what it always was.
    plain = generate.run_job(labelled_run, out=tmp_path / "b", **job)
    plain_recs = sorted(clips.scan(plain), key=lambda r: r.index)
    assert all(r.steer is None for r in plain_recs) and "steer" not in json_of(plain / f"{plain_recs[0].id}.json")
    assert plain_recs[0].id == generate.clip_id(plain_recs[0].checkpoint["sha256"], 0, "0.9", 0)
    assert {r.id for r in plain_recs}.isdisjoint(r.id for r in recs)
    assert not np.array_equal(_wav(out / recs[0].file), _wav(plain / plain_recs[0].file))
    # Steering the same folder differently is refused (a folder holds one job).
    with pytest.raises(UserInputError, match="different steers"):
        generate.run_job(labelled_run, steers=["drums"], out=tmp_path / "a", **job)


def json_of(path):
    import json

    return json.loads(path.read_text())


@pytest.mark.parametrize("prime", [False, True])
def test_again_reproduces_a_steered_guided_clip(labelled_run, tmp_path, prime):
    from conftest import sine, write
    from inspire import clips
    from inspire.samplernn import generate

    kw = {}
    if prime:
        kw = dict(prime=write(tmp_path / "p.wav", sine(220.0, 0.3, 16000), 16000), prime_seconds=0.2)
    out = generate.run_job(labelled_run, n=2, seconds=0.05, steers=["0:drums,0.5:none,1:pads"], guidance=2.5,
                           out=tmp_path / "a", device="cpu", threads=1, **kw)
    rec = sorted(clips.scan(out), key=lambda r: r.index)[1]
    assert rec.steer["guidance"] == 2.5 and rec.steer["mixes"][1] == {"none": 1.0}
    again = generate.again(labelled_run, str(out / rec.file), out=tmp_path / "b", device="cpu", threads=1)
    assert np.array_equal(_wav(again / rec.file), _wav(out / rec.file))
    assert clips.read(again / rec.file).steer == rec.steer
    # Plain steering (no guidance) makes other audio from the same seeds.
    other = generate.run_job(labelled_run, n=2, seconds=0.05, steers=["0:drums,0.5:none,1:pads"], out=tmp_path / "c",
                             device="cpu", threads=1, **kw)
    rec2 = sorted(clips.scan(other), key=lambda r: r.index)[1]
    assert rec2.id != rec.id and not np.array_equal(_wav(other / rec2.file), _wav(out / rec.file))


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(steers=["nebula"]), "unknown label 'nebula'; the model knows: pads, drums, live, take 2 (and none)"),
        (dict(steers=["pads"], guidance=11.0), "--guidance must be between 0 and 10"),
        (dict(steers=["pads"], guidance=-1.0), "--guidance must be between 0 and 10"),
        (dict(guidance=2.0), "--guidance needs --steer"),
        (dict(steers=["pads:drums:none"]), "a morph is FROM:TO"),
    ],
)
def test_bad_steering_is_a_one_line_error(labelled_run, tmp_path, kw, words):
    from inspire.samplernn import generate

    with pytest.raises(UserInputError) as e:
        generate.run_job(labelled_run, n=1, seconds=0.02, out=tmp_path / "x", device="cpu", **kw)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_steering_a_model_trained_without_labels_is_refused(tmp_path):
    from inspire.samplernn import generate

    run = _save_run(tmp_path / "plain", ModelConfig(frame_sizes=(4, 2), dim=16, levels=64))
    with pytest.raises(UserInputError, match="was trained without labels; train with --label-by track"):
        generate.run_job(run, n=1, seconds=0.02, steers=["pads"], out=tmp_path / "x", device="cpu")


# ---------------------------------------------------------------------------------------------
# The command line


def test_cli_steers_and_again_reproduces(labelled_run, tmp_path, capsys):
    from inspire import clips
    from inspire.cli import main

    common = ["--device", "cpu", "--threads", "1", "--quiet"]
    argv = ["generate", str(labelled_run), "-n", "2", "--seconds", "0.03", *common,
            "--steer", "pads:drums", "--steer", "none", "-t", "0.9", "--guidance", "1.5", "--out", str(tmp_path / "a")]
    assert main(argv) == 0
    recs = sorted(clips.scan(tmp_path / "a"), key=lambda r: r.index)
    assert [r.steer["spec"] for r in recs] == ["pads:drums", "none"] and recs[0].steer["guidance"] == 1.5
    capsys.readouterr()
    again = ["generate", str(labelled_run), "--again", str(tmp_path / "a" / recs[0].file), *common]
    assert main([*again, "--out", str(tmp_path / "b")]) == 0
    assert np.array_equal(_wav(tmp_path / "b" / recs[0].file), _wav(tmp_path / "a" / recs[0].file))


@pytest.mark.parametrize(
    "tail, words",
    [
        (["--steer", "nebula"], "unknown label 'nebula'"),
        (["--steer", "pads", "--guidance", "12"], "--guidance must be between 0 and 10"),
        (["--guidance", "2"], "--guidance needs --steer"),
        (["--steer", "0.5:pads,0.2:drums"], "must increase"),
        (["--again", "x", "--steer", "pads"], "leave out --steer"),
    ],
)
def test_cli_bad_steering_exits_2_with_one_line(labelled_run, tmp_path, capsys, tail, words):
    from inspire.cli import main

    code = main(["generate", str(labelled_run), "-n", "1", "--seconds", "0.02", "--device", "cpu", "--quiet",
                 "--out", str(tmp_path / "x"), *tail])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and "\n" not in err


def test_cli_steering_an_unlabelled_model_exits_2(tmp_path, capsys):
    from inspire.cli import main

    run = _save_run(tmp_path / "plain", ModelConfig(frame_sizes=(4, 2), dim=16, levels=64))
    code = main(["generate", str(run), "-n", "1", "--seconds", "0.02", "--device", "cpu", "--steer", "pads",
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "trained without labels" in err and "\n" not in err


# ---------------------------------------------------------------------------------------------
# Training with labels (inspire.samplernn.train)

TRAIN_TINY = {"frame_sizes": "4,2", "dim": "16"}
TRAIN_FAST = {"batch_size": "4", "seq_len": "64", "chunk_seconds": "0.25", "val_seconds": "0.5", "val_every": "3",
              "checkpoint_every": "4", "preview_seconds": "0", "keep_checkpoints": "2"}


@pytest.fixture
def prepared(album, tmp_path):
    from inspire.audio.dataset import PrepareSettings, prepare

    run = tmp_path / "run"
    prepare([album], run, PrepareSettings(levels=64), progress=False)
    return run


def _train_run(run, **over):
    from inspire.samplernn.train import train

    steps = over.pop("max_steps", 5)
    return train(run, preset="tiny", model_overrides=TRAIN_TINY, train_overrides={**TRAIN_FAST, **over}, progress=False,
                 previews=False, max_steps=steps)


def test_chunks_carry_labels_and_a_share_trains_unlabelled(prepared):
    from inspire.audio import labels
    from inspire.audio.dataset import load_prepared
    from inspire.samplernn.train import ChunkPlan, Dist

    prep = load_prepared(prepared)
    lab = labels.resolve(prep, "track")
    kw = dict(chunk_len=256, lookback=8, batch_size=8, seed=3)
    plain = ChunkPlan(prep, **kw)
    plan = ChunkPlan(prep, labelling=lab, unlabelled_share=0.25, **kw)
    assert plain.labels(0, 0, Dist()) is None
    seen = []
    for epoch in range(6):
        assert plan.epoch_chunks(epoch) == plain.epoch_chunks(epoch)  # the data order of an unlabelled run
        for b in range(plan.batches_per_epoch(epoch)):
            x, rows = plan.batch(epoch, b, Dist()), plan.labels(epoch, b, Dist())
            assert rows.shape == (8, 256) and np.array_equal(x, plain.batch(epoch, b, Dist()))
            for k, r in enumerate(rows):
                assert len(set(r.tolist())) == 1  # by track: one label per chunk
                seg_i, start = plan.epoch_chunks(epoch)[(b * 8 + k) % len(plan.epoch_chunks(epoch))]
                want = lab.rows(plan.segments[seg_i][0].id, start, start + 1)[0]
                assert r[0] in (0, want)
                seen.append(r[0] == 0)
    assert 0.1 < np.mean(seen) < 0.4  # about a quarter unlabelled
    np.testing.assert_array_equal(plan.labels(2, 0, Dist()), plan.labels(2, 0, Dist()))  # deterministic
    half = plan.labels(1, 0, Dist(rank=1, world=2))
    np.testing.assert_array_equal(half, plan.labels(1, 0, Dist())[4:])


def test_a_labelled_run_records_its_labels_and_steers(prepared, tmp_path):
    import json

    from inspire import clips
    from inspire.samplernn import checkpoint, generate

    assert _train_run(prepared, label_by="track") == 0
    cfg = json.loads((prepared / "config.json").read_text())
    names = cfg["model"]["labels"]
    assert names and cfg["labels"]["names"] == names and cfg["labels"]["by"] == "track"
    ck = checkpoint.load(prepared / "checkpoints" / "last.pt")
    assert ck["labels"]["names"] == names and ck["train_config"]["label_by"] == "track"
    model, _ = checkpoint.load_model(prepared / "checkpoints" / "last.pt")
    assert model.cfg.labels == tuple(names)
    assert any(float(t.label_table.detach().abs().sum()) > 0 for t in model.tiers)  # the labels were trained
    out = generate.run_job(prepared, n=2, seconds=0.05, checkpoint="last", steers=[f"{names[0]}:none"],
                           out=tmp_path / "c", device="cpu", threads=1)
    assert [r.steer["mixes"] for r in clips.scan(out)] == [[{names[0]: 1.0}, {"none": 1.0}]] * 2
    # Continuing keeps the labels; asking for others is refused; an unchanged request continues.
    assert _train_run(prepared, max_steps=7) == 0
    assert _train_run(prepared, label_by="track", max_steps=8) == 0
    with pytest.raises(CheckpointError, match="a model cannot change its labels"):
        _train_run(prepared, label_by="none", max_steps=9)


def test_a_new_run_is_labelled_by_track_by_default(prepared):
    from inspire.samplernn import checkpoint

    assert _train_run(prepared) == 0
    model, ck = checkpoint.load_model(prepared / "checkpoints" / "last.pt")
    assert ck["train_config"]["label_by"] == "track" and model.cfg.labels == ("track1", "track2")


def test_an_unlabelled_run_is_as_before(prepared):
    import json

    from inspire.samplernn import checkpoint

    assert _train_run(prepared, label_by="none") == 0
    cfg = json.loads((prepared / "config.json").read_text())
    assert cfg["model"]["labels"] == [] and "labels" not in cfg
    model, ck = checkpoint.load_model(prepared / "checkpoints" / "last.pt")
    assert ck["labels"] is None and model.cfg.labels == () and not any("label" in k for k in model.state_dict())
    with pytest.raises(CheckpointError, match="a model cannot change its labels"):
        _train_run(prepared, label_by="track", max_steps=7)
