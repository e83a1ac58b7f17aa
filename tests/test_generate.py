"""Generation: step == teacher forcing, fast path == model.step, batches == singles, priming,
reproducible self-describing jobs that resume after a kill, shards, --again, clear errors."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import save_checkpoint
from inspire.config import ModelConfig
from inspire.errors import AudioReadError, CheckpointError, UserInputError
from inspire.samplernn import generate, sample
from inspire.samplernn.model import SampleRNN

SR = 16000
TINY = ModelConfig(frame_sizes=(4, 2), dim=16, levels=64)


def _model(cfg=TINY, seed=0):
    torch.manual_seed(seed)
    return SampleRNN(cfg).eval()


@pytest.fixture
def run(tmp_path):
    """A run folder with a random-init tiny checkpoint at checkpoints/best.pt."""
    run_dir = tmp_path / "run"
    save_checkpoint(run_dir, _model(), step=7, sample_rate=SR)
    return run_dir


def _wav(path):
    x, sr = sf.read(str(path), dtype="int16")
    assert sr == SR
    return x


# ---------------------------------------------------------------------------------------------
# The stepper


@pytest.mark.parametrize("cfg", [
    TINY,
    ModelConfig(frame_sizes=(4,), dim=16, levels=32),
    ModelConfig(frame_sizes=(2, 2, 2), dim=16, levels=32, rnn="lstm", rnn_layers=2),
    ModelConfig(frame_sizes=(4, 2), dim=24, levels=16, rnn_layers=2, weight_norm=False),
])
def test_step_reproduces_teacher_forced_log_probs(cfg):
    m = _model(cfg)
    lb, b, t_len = m.lookback, 2, 4 * m.lookback
    x = torch.randint(0, cfg.levels, (b, lb + t_len))
    with torch.no_grad():
        ref = torch.log_softmax(m(x)[0], -1)  # (B, T, levels)
        fast = sample.FastStepper(m)
        s_slow, s_fast, slow, quick = m.start(b), fast.start(b), [], []
        for t in range(t_len):
            l1, s_slow = m.step(x[:, t : t + lb], s_slow)
            l2, s_fast = fast.step(x[:, t : t + lb], s_fast)
            slow.append(l1)
            quick.append(l2)
    torch.testing.assert_close(torch.log_softmax(torch.stack(slow, 1), -1), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.log_softmax(torch.stack(quick, 1), -1), ref, atol=1e-5, rtol=1e-5)


def test_fast_and_reference_paths_generate_the_same():
    m = _model()
    kw = dict(n_samples=200, temperature=torch.full((3,), 1.0), seeds=[1, 2, 3])
    assert torch.equal(sample.generate(m, fast=True, **kw), sample.generate(m, fast=False, **kw))


def test_batch_equals_singles_and_same_seed_same_audio():
    m = _model()
    n, seeds = 300, [11, 22, 33, 44]
    temps = torch.stack([torch.linspace(0.8, 1.3, n), torch.full((n,), 1.0),
                         torch.linspace(1.2, 0.9, n), torch.full((n,), 0.7)])
    batch = sample.generate(m, n_samples=n, temperature=temps, seeds=seeds)
    assert batch.shape == (4, n) and batch.dtype == torch.long
    for i, s in enumerate(seeds):
        single = sample.generate(m, n_samples=n, temperature=temps[i : i + 1], seeds=[s])
        assert torch.equal(single[0], batch[i])
    again = sample.generate(m, n_samples=n, temperature=temps, seeds=seeds)
    assert torch.equal(again, batch)
    other = sample.generate(m, n_samples=n, temperature=temps, seeds=[12, 23, 34, 45])
    assert not torch.equal(other, batch)


def test_train_preview_signature_still_works():
    out = sample.generate(_model(), n_samples=40, temperature=torch.tensor([0.9, 1.0]), seeds=[0, 1])
    assert out.shape == (2, 40)


def test_blocks_and_callable_temperature_match_one_shot():
    m = _model()
    curve = torch.linspace(0.7, 1.4, 250).unsqueeze(0).repeat(2, 1)
    whole = sample.generate(m, n_samples=250, temperature=curve, seeds=[5, 6])
    blocks = list(sample.stream(m, n_samples=250, temperature=lambda s, n: curve[:, s : s + n], seeds=[5, 6], block=64))
    assert [b.shape[1] for b in blocks] == [64, 64, 64, 58]
    assert torch.equal(torch.cat(blocks, 1), whole)


def test_temperature_to_zero_approaches_argmax():
    logits = torch.randn(64, 32) * 3
    u = torch.rand(64)
    for uu in (u, torch.zeros(64), torch.full((64,), 0.999999)):
        assert torch.equal(sample.sample_logits(logits, torch.full((64,), 1e-4), uu), logits.argmax(-1))
    # A whole generation at T -> 0 is greedy decoding.
    m = _model()
    got = sample.generate(m, n_samples=60, temperature=torch.full((1,), 1e-5), seeds=[3])
    lb = m.lookback
    hist = torch.full((1, lb), TINY.levels // 2)
    state, greedy = m.start(1), []
    with torch.no_grad():
        for _ in range(60):
            logits, state = m.step(hist[:, -lb:], state)
            nxt = logits.argmax(-1, keepdim=True)
            greedy.append(nxt)
            hist = torch.cat([hist, nxt], 1)
    assert torch.equal(got, torch.cat(greedy, 1))


def test_sampling_follows_the_distribution():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7]])).expand(20000, 3)
    uniform = torch.rand(20000, generator=torch.Generator().manual_seed(0))
    draws = sample.sample_logits(logits, torch.ones(20000), uniform)
    freq = torch.bincount(draws, minlength=3).float() / 20000
    torch.testing.assert_close(freq, torch.tensor([0.1, 0.2, 0.7]), atol=0.015, rtol=0)
    # Higher temperature flattens it.
    uniform = torch.rand(20000, generator=torch.Generator().manual_seed(1))
    hot = sample.sample_logits(logits, torch.full((20000,), 3.0), uniform)
    assert (hot == 2).float().mean() < 0.5


def test_priming_warms_state_and_continuing_equals_generating_after_it():
    m = _model()
    lb = m.lookback
    gen = sample.generate(m, n_samples=6 * lb, temperature=torch.ones(1), seeds=[9])  # "generated" audio
    silence = torch.full((1, lb), TINY.levels // 2)
    full = torch.cat([silence, gen], 1)
    # Reference: the state generation itself had after those samples (step through them).
    with torch.no_grad():
        state = m.start(1)
        for t in range(gen.shape[1]):
            _, state = m.step(full[:, t : t + lb], state)
    hist_p, state_p = sample.prime_state(m, full)
    assert torch.equal(hist_p, full[:, -lb:])
    for a, b, h0 in zip(state_p.hidden, state.hidden, m.start(1).hidden, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
        assert not torch.allclose(a, h0)  # priming changed the state
    cont_p = sample.generate(m, n_samples=5 * lb, temperature=torch.ones(1), seeds=[4], history=hist_p, state=state_p)
    cont = sample.generate(m, n_samples=5 * lb, temperature=torch.ones(1), seeds=[4], history=full[:, -lb:],
                           state=state)
    assert torch.equal(cont_p, cont)
    # An unaligned prime drops its oldest samples; a short one is padded: both still work.
    h, s = sample.prime_state(m, full[:, 3:])
    assert h.shape == (1, lb) and s.t == 0
    h, s = sample.prime_state(m, full[:, :3])
    assert h.shape == (1, lb)


# ---------------------------------------------------------------------------------------------
# Jobs


def test_job_writes_self_describing_clips(run):
    out = generate.run_job(run, n=3, seconds=0.02, temperatures=["0.9:1.1", "1.0"], seed=5, plot=True)
    assert out.parent == run / "clips"
    man = json.loads((out / "manifest.json").read_text())
    assert man["format_version"] == 1 and man["checkpoint"]["step"] == 7
    assert man["job"]["temperatures"] == ["0.9:1.1", "1.0"]
    assert [c["index"] for c in man["clips"]] == [0, 1, 2]
    assert [c["temperature_spec"] for c in man["clips"]] == ["0.9:1.1", "1.0", "0.9:1.1"]
    for c in man["clips"]:
        side = json.loads((out / f"{c['id']}.json").read_text())
        for key in ("format_version", "id", "run", "checkpoint", "seed", "index", "temperature", "seconds",
                    "sample_rate", "prime", "software", "created"):
            assert key in side
        assert set(side["checkpoint"]) >= {"path", "sha256", "step"} and len(side["checkpoint"]["sha256"]) == 64
        assert side["seed"] == 5 and side["prime"] is None and side["sample_rate"] == SR
        assert side["temperature"]["times_s"][0] == 0.0 and side["temperature"]["values"][0] > 0
        assert len(_wav(out / c["file"])) == round(0.02 * SR)
        assert (out / f"{c['id']}.png").stat().st_size > 0
    ramp = json.loads((out / f"{man['clips'][0]['id']}.json").read_text())["temperature"]
    assert ramp["values"] == [0.9, 1.1]
    assert not list(out.glob(".*.partial.wav"))


def test_same_job_same_ids_and_audio(run, tmp_path):
    a = generate.run_job(run, n=2, seconds=0.02, temperatures=["1.0"], seed=1, out=tmp_path / "a")
    b = generate.run_job(run, n=2, seconds=0.02, temperatures=["1.0"], seed=1, out=tmp_path / "b", batch_size=1)
    ids = sorted(p.name for p in a.glob("*.wav"))
    assert ids == sorted(p.name for p in b.glob("*.wav")) and len(ids) == 2
    for name in ids:
        assert np.array_equal(_wav(a / name), _wav(b / name))
    c = generate.run_job(run, n=2, seconds=0.02, temperatures=["1.0"], seed=2, out=tmp_path / "c")
    assert not set(ids) & {p.name for p in c.glob("*.wav")}


def test_resume_after_kill_gives_the_same_clips(run, tmp_path, monkeypatch):
    whole = generate.run_job(run, n=4, seconds=0.03, temperatures=["0.9", "1.1"], out=tmp_path / "whole", batch_size=2)

    calls = []

    def dying(real):  # killed halfway through the second batch (whichever engine makes it)
        def stream(*args, **kw):
            calls.append(1)
            for i, chunk in enumerate(real(*args, **kw)):
                if len(calls) == 2 and i == 1:
                    raise KeyboardInterrupt
                yield chunk
        return stream

    monkeypatch.setattr(generate, "BLOCK_SAMPLES", 100)
    monkeypatch.setattr(sample, "stream", dying(sample.stream))
    monkeypatch.setattr(generate, "_engine_stream", dying(generate._engine_stream))
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        generate.run_job(run, n=4, seconds=0.03, temperatures=["0.9", "1.1"], out=out, batch_size=2, threads=1)
    assert len(list(out.glob("*.wav"))) == 2  # the first batch, whole
    assert not list(out.glob(".*.partial.wav"))
    assert len(json.loads((out / "manifest.json").read_text())["clips"]) == 2
    monkeypatch.undo()
    finished = {p: p.stat().st_mtime_ns for p in out.glob("*.wav")}
    generate.run_job(run, n=4, seconds=0.03, temperatures=["0.9", "1.1"], out=out, batch_size=2)
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # skipped, not redone
    names = sorted(p.name for p in whole.glob("*.wav"))
    assert names == sorted(p.name for p in out.glob("*.wav"))
    for name in names:
        assert np.array_equal(_wav(whole / name), _wav(out / name))
    clips = [json.loads((folder / "manifest.json").read_text())["clips"] for folder in (out, whole)]
    assert clips[0] == clips[1]


def test_regenerating_keeps_keys_other_stages_added(run, tmp_path):
    out = generate.run_job(run, n=1, seconds=0.01, temperatures=["1.0"], out=tmp_path / "o")
    side = next(p for p in out.glob("*.json") if p.name != "manifest.json")
    d = json.loads(side.read_text())
    assert d["format_version"] == 2 and d["marks"] == {"verdict": None, "star": False, "regions": []}
    d["curation"] = {"score": 0.7}
    d["marks"] = {"verdict": "keep", "star": True, "regions": [[0.0, 0.005]]}
    d["from_a_newer_version"] = [1, 2]
    side.write_text(json.dumps(d))
    side.with_suffix(".wav").unlink()  # the audio is lost: it is made again
    generate.run_job(run, n=1, seconds=0.01, temperatures=["1.0"], out=out)
    again = json.loads(side.read_text())
    assert again["curation"] == {"score": 0.7} and again["from_a_newer_version"] == [1, 2]
    assert again["marks"] == {"verdict": "keep", "star": True, "regions": [[0.0, 0.005]]}
    assert side.with_suffix(".wav").is_file()


def test_shards_fill_one_folder(run, tmp_path):
    kw = dict(n=5, seconds=0.01, temperatures=["1.0", "1.2"], seed=3)
    ref = generate.run_job(run, out=tmp_path / "ref", **kw)
    out = tmp_path / "sharded"
    generate.run_job(run, out=out, shard="1/2", **kw)
    assert len(json.loads((out / "manifest.json").read_text())["clips"]) == 2
    generate.run_job(run, out=out, shard="0/2", **kw)
    got = json.loads((out / "manifest.json").read_text())["clips"]
    assert got == json.loads((ref / "manifest.json").read_text())["clips"]
    for c in got:
        assert np.array_equal(_wav(out / c["file"]), _wav(ref / c["file"]))


def test_shard_from_torchrun_env(monkeypatch):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert generate.parse_shard(None) == (2, 3)
    assert generate.parse_shard("0/4") == (0, 4)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(UserInputError):
            generate.parse_shard(bad)


def test_prime_file_other_rate_and_channels(run, tmp_path):
    t = np.arange(int(0.05 * 22050)) / 22050
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)], 1)
    path = tmp_path / "phrase.wav"
    sf.write(str(path), stereo, 22050)
    out = generate.run_job(run, n=2, seconds=0.01, temperatures=["1.0"], prime=str(path), prime_seconds=0.02,
                           include_prime=True, out=tmp_path / "p")
    man = json.loads((out / "manifest.json").read_text())
    for c in man["clips"]:
        side = json.loads((out / f"{c['id']}.json").read_text())
        p = side["prime"]
        assert p["source"] == str(path.resolve()) and p["included"] is True
        assert p["seconds"] == pytest.approx(0.02) and p["start_s"] == pytest.approx(0.03, abs=1e-3)
        assert len(_wav(out / c["file"])) == round(0.02 * SR) + round(0.01 * SR)
        assert side["temperature"]["times_s"][0] == pytest.approx(0.02)  # times are in the file
    # --again finds the same prime stretch; a changed prime file is refused.
    cid = man["clips"][1]["id"]
    again = generate.again(run, str(out / f"{cid}.json"), out=tmp_path / "again")
    assert np.array_equal(_wav(again / f"{cid}.wav"), _wav(out / f"{cid}.wav"))
    sf.write(str(path), stereo[::-1], 22050)
    with pytest.raises(UserInputError, match="changed"):
        generate.again(run, str(out / f"{cid}.json"), out=tmp_path / "again2")
    # The prime changes the continuation (vs unprimed clips of the same seeds).
    plain = generate.run_job(run, n=2, seconds=0.01, temperatures=["1.0"], out=tmp_path / "u")
    a = _wav(out / man["clips"][0]["file"])[round(0.02 * SR):]
    b = _wav(plain / json.loads((plain / "manifest.json").read_text())["clips"][0]["file"])
    assert not np.array_equal(a, b)


def test_prime_from_corpus(run, tmp_path):
    from inspire.audio.dataset import PrepareSettings, prepare

    rng = np.random.default_rng(0)
    for i in range(2):
        sf.write(str(tmp_path / f"t{i}.wav"), 0.3 * rng.standard_normal(int(1.5 * SR)), SR)
    prepare([tmp_path / "t0.wav", tmp_path / "t1.wav"], run, PrepareSettings(levels=TINY.levels), progress=False)
    out = generate.run_job(run, n=2, seconds=0.01, temperatures=["1.0"], prime="corpus", prime_seconds=0.01)
    manifest = json.loads((out / "manifest.json").read_text())
    sides = [json.loads((out / f"{c['id']}.json").read_text()) for c in manifest["clips"]]
    for s in sides:
        assert s["prime"]["source"] == "corpus" and s["prime"]["track"] and s["prime"]["included"] is False
    assert sides[0]["prime"]["start_s"] != sides[1]["prime"]["start_s"]
    again = generate.again(run, sides[1]["id"], out=tmp_path / "again")
    name = f"{sides[1]['id']}.wav"
    assert np.array_equal(_wav(again / name), _wav(out / name))


def test_again_regenerates_exactly_or_longer(run, tmp_path):
    out = generate.run_job(run, n=2, seconds=0.02, temperatures=["0s:0.9,0.01s:1.2"], seed=4)
    cid = json.loads((out / "manifest.json").read_text())["clips"][1]["id"]
    same = generate.again(run, cid)
    assert np.array_equal(_wav(same / f"{cid}.wav"), _wav(out / f"{cid}.wav"))
    longer = generate.again(run, cid, seconds=0.04, out=tmp_path / "long")
    x = _wav(longer / f"{cid}.wav")
    assert len(x) == round(0.04 * SR)
    assert np.array_equal(x[: round(0.02 * SR)], _wav(out / f"{cid}.wav"))
    with pytest.raises(UserInputError, match="no clip"):
        generate.again(run, "0000-deadbeef")


def test_clear_errors(run, tmp_path):
    with pytest.raises(UserInputError, match="temperature"):
        generate.run_job(run, n=1, seconds=0.01, temperatures=["0:1.0,0.5:0"])
    with pytest.raises(CheckpointError):
        generate.run_job(tmp_path / "nothing", n=1, seconds=0.01, temperatures=["1.0"])
    with pytest.raises(CheckpointError):
        generate.run_job(run, n=1, seconds=0.01, temperatures=["1.0"], checkpoint="123")
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wave file at all" * 10)
    with pytest.raises(AudioReadError):
        generate.run_job(run, n=1, seconds=0.01, temperatures=["1.0"], prime=str(bad))
    with pytest.raises(UserInputError, match="no such file"):
        generate.run_job(run, n=1, seconds=0.01, temperatures=["1.0"], prime=str(tmp_path / "missing.wav"))
    with pytest.raises(UserInputError):
        generate.run_job(run, n=0, seconds=0.01, temperatures=["1.0"])
    out = generate.run_job(run, n=1, seconds=0.01, temperatures=["1.0"], out=tmp_path / "x")
    with pytest.raises(UserInputError, match="another job"):  # refuses to mix jobs in one folder
        generate.run_job(run, n=1, seconds=0.02, temperatures=["1.0"], out=out)


def _cli(argv):
    from inspire import cli

    return cli.main(argv)


def test_cli_round_trip(run, tmp_path, capsys):
    out = tmp_path / "cli"
    code = _cli(["generate", str(run), "-n", "2", "--seconds", "0.01", "-t", "0.9:1.1", "-t", "1.0", "--plot",
                 "--quiet", "--out", str(out)])
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out)
    clips = json.loads((out / "manifest.json").read_text())["clips"]
    assert [c["temperature_spec"] for c in clips] == ["0.9:1.1", "1.0"]
    assert all((out / f"{c['id']}.png").is_file() for c in clips)
    side = out / f"{clips[0]['id']}.json"  # outside RUN_DIR/clips/: named by path
    assert _cli(["generate", str(run), "--again", str(side), "--quiet", "--out", str(tmp_path / "ag")]) == 0
    assert np.array_equal(_wav(tmp_path / "ag" / clips[0]["file"]), _wav(out / clips[0]["file"]))


@pytest.mark.parametrize("argv_tail, words", [
    (["-t", "0"], "temperature"),
    (["--checkpoint", "last"], "no last checkpoint"),
    (["--prime", "/nonexistent.wav"], "no such file"),
])
def test_cli_errors_exit_2_with_one_line(run, capsys, argv_tail, words):
    assert _cli(["generate", str(run), "-n", "1", "--seconds", "0.01", "--quiet"] + argv_tail) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err and "Traceback" not in err


def test_int8_is_opt_in_and_keeps_the_distribution_close():
    torch.manual_seed(0)
    cfg = ModelConfig(frame_sizes=(4, 4), dim=64, levels=256, weight_norm=False)
    m = SampleRNN(cfg).eval()
    with torch.no_grad():
        m.mlp.output.weight.mul_(30.0)  # peaky distributions, like a trained model's
    lb, b, t_len = m.lookback, 2, 6 * m.lookback
    x = torch.randint(0, cfg.levels, (b, lb + t_len))
    with torch.no_grad():
        ref = torch.log_softmax(m(x)[0], -1)
        q8 = sample.FastStepper(m, int8=True)
        s, out = q8.start(b), []
        for t in range(t_len):
            logits, s = q8.step(x[:, t : t + lb], s)
            out.append(logits)
    got = torch.log_softmax(torch.stack(out, 1), -1)
    kl = (ref.exp() * (ref - got)).sum(-1)
    tv = 0.5 * (ref.exp() - got.exp()).abs().sum(-1)
    assert ref.exp().max(-1).values.mean() > 0.2  # the test is not on near-uniform distributions
    assert kl.mean() < 2e-3 and tv.max() < 0.05, (kl.mean().item(), tv.max().item())
    assert not sample.FastStepper(m).int8


def test_out_of_device_memory_halves_the_batch_and_goes_on(run, tmp_path, monkeypatch, capsys):
    """A batch that runs out of (GPU) memory is split in two and retried: the same clips result."""
    want = generate.run_job(run, n=4, seconds=0.02, temperatures=["0.9:1.1"], seed=3, out=tmp_path / "want",
                            batch_size=4)
    real, sizes = generate._generate_batch, []

    def tight(ctx, batch, *args, **kw):
        sizes.append(len(batch))
        if len(batch) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(ctx, batch, *args, **kw)

    monkeypatch.setattr(generate, "_generate_batch", tight)
    got = generate.run_job(run, n=4, seconds=0.02, temperatures=["0.9:1.1"], seed=3, out=tmp_path / "got", batch_size=4)
    assert sizes == [4, 2, 1, 1, 2, 1, 1]
    assert "out of CPU memory at batch size 4; going on with 2" in capsys.readouterr().err
    names = sorted(p.name for p in want.glob("*.wav"))
    assert names == sorted(p.name for p in got.glob("*.wav")) and len(names) == 4
    for name in names:
        assert np.array_equal(_wav(want / name), _wav(got / name))


def test_out_of_memory_on_one_stream_is_one_line(run, tmp_path, monkeypatch, capsys):
    def never(*args, **kw):
        raise torch.OutOfMemoryError("CUDA out of memory")

    from inspire.cli import main

    monkeypatch.setattr(generate, "_generate_batch", never)
    assert main(["generate", str(run), "-n", "1", "--seconds", "0.02", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("inspire generate: error: out of CPU memory generating even one stream")


def test_progress_into_a_log_is_plain_lines(run, tmp_path, capsys):
    generate.run_job(run, n=2, seconds=0.25, temperatures=["1.0"], seed=1, out=tmp_path / "p", progress=True)
    err = capsys.readouterr().err  # not a terminal: no bar frames, a last line instead
    assert "\r" not in err and "generating: 0.5/0.5 s of audio (100%), done in" in err, err


def test_a_clip_too_long_for_a_wav_is_refused_before_anything_is_written(run, tmp_path):
    with pytest.raises(UserInputError, match=r"--seconds 1e\+09: too long for a WAV file \(at most 134217 s"):
        generate.run_job(run, n=1, seconds=1e9, temperatures=["1.0"], out=tmp_path / "long")
    assert not (tmp_path / "long").exists()


def test_a_corrupt_sidecar_is_set_aside_and_its_clip_made_again(run, tmp_path, capsys):
    out = generate.run_job(run, n=2, seconds=0.02, temperatures=["1.0"], seed=4, out=tmp_path / "c")
    side = sorted(out.glob("0000-*.json"))[0]
    wav = side.with_suffix(".wav")
    before = _wav(wav)
    side.write_text('{"format_version": 2, "id": "trunc')  # a truncated write
    generate.run_job(run, n=2, seconds=0.02, temperatures=["1.0"], seed=4, out=out)
    err = capsys.readouterr().err
    assert f"{side} is corrupt" in err and "making the clip again" in err
    assert side.with_name(side.name + ".corrupt").is_file()
    assert json.loads(side.read_text())["id"] == side.stem and np.array_equal(_wav(wav), before)


def test_a_job_that_cannot_fit_on_the_disk_is_refused_before_planning(run, tmp_path):
    from inspire.cli import main

    assert main(["generate", str(run), "-n", "100000000000", "--seconds", "10", "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_the_same_job_twice_at_once_is_refused_naming_the_first(run, tmp_path):
    from inspire.errors import BusyError
    from inspire.locks import job_lock

    out = tmp_path / "busy"
    out.mkdir()
    with job_lock(out, "generated into", name="shard-0-of-1"):  # what a first `generate` holds
        with pytest.raises(BusyError, match=r"being generated into by pid \d+"):
            generate.run_job(run, n=1, seconds=0.02, out=out)
        with job_lock(out, "generated into", name="shard-1-of-2"):  # another shard may share the folder
            pass


def test_clips_curated_away_are_not_made_again(run, tmp_path, capsys):
    from inspire import clips

    out = generate.run_job(run, n=3, seconds=0.02, temperatures=["1.0"], seed=6, out=tmp_path / "j")
    first = sorted(out.glob("*.wav"))[0]
    clips.move(first, tmp_path / "rejects")
    generate.run_job(run, n=3, seconds=0.02, temperatures=["1.0"], seed=6, out=out)
    assert "1 clip(s) of this job were curated away" in capsys.readouterr().err
    assert not first.exists() and (tmp_path / "rejects" / first.name).is_file()
    assert len(list(out.glob("*.wav"))) == 2
