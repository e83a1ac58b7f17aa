"""Compose: arrangement parsing, rendering, loudness, noise reduction, auto-arranging, hand-over.

All audio is synthetic and written to tmp_path; pieces are a few seconds at 8-16 kHz.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inspire.audio.io import write_audio
from inspire.compose import arrangement, compose, master
from inspire.errors import UserInputError

SR = 16000


def _tone(seconds: float, freq: float, *, amp: float = 0.3, phase: float = 0.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def _write_clips(folder: Path, n: int = 6, *, sr: int = SR, seconds: float = 3.0) -> Path:
    """n short 'generated' clips: pulsing tones at different pitches and levels, a little hiss."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for k in range(n):
        t = np.arange(int((seconds + 0.5 * (k % 3)) * sr)) / sr
        pulse = 0.55 + 0.45 * np.sin(2 * np.pi * (1.0 + 0.3 * k) * t)
        x = (0.1 + 0.05 * k) * np.sin(2 * np.pi * 110 * 2 ** (k / 4) * t) * pulse + 0.005 * rng.standard_normal(len(t))
        write_audio(folder / f"clip-{k:02d}.wav", x, sr, subtype="FLOAT")
    return folder


def _arrangement(path: Path, parts: list[dict], **top) -> Path:
    top.setdefault("noise_reduction", "off")
    top.setdefault("lufs", -30.0)
    arr = arrangement.Arrangement(parts=tuple(arrangement.Part(**p) for p in parts), **top)
    path.write_text(arrangement.arrangement_toml(arr))
    return path


def _read(path: Path) -> np.ndarray:
    x, _ = sf.read(str(path), dtype="float64")
    return x


# ------------------------------------------------------------------------------ arrangement file


def test_toml_round_trip(tmp_path):
    parts = (arrangement.Part("a", 0.5, 2.0, -3.0, 0.25), arrangement.Part('odd "name"', 0.0, None))
    arr = arrangement.Arrangement(parts=parts, sample_rate=8000, clips_dir="clips", lufs=-16.0)
    path = tmp_path / "a.toml"
    path.write_text(arrangement.arrangement_toml(arr, notes=["first", ""], header="hello\nworld"))
    back = arrangement.read_arrangement(path)
    assert back.parts == arr.parts
    assert (back.sample_rate, back.clips_dir, back.lufs, back.noise_reduction) == (8000, "clips", -16.0, "mix")


# ------------------------------------------------------------------------------------- rendering


def test_duration_is_parts_minus_crossfades(tmp_path):
    write_audio(tmp_path / "a.wav", _tone(3.0, 220), SR)
    write_audio(tmp_path / "b.wav", _tone(2.0, 330), SR)
    arr = _arrangement(tmp_path / "p.toml", [
        dict(clip="a", in_s=0.5, out_s=2.5, crossfade_s=0.5),
        dict(clip="b", in_s=0.0, out_s=2.0, crossfade_s=0.25),
        dict(clip="a", in_s=1.0, out_s=None, crossfade_s=0.0),  # to the clip's end
    ])
    piece = compose.render_arrangement(arr, out=tmp_path / "p.wav")
    expected = (2.0 + 2.0 + 2.0) - (0.5 + 0.25)
    assert piece["samples"] == round(expected * SR)
    assert len(_read(tmp_path / "p.wav")) == round(expected * SR)
    assert [p["start_s"] for p in piece["parts"]] == [0.0, 1.5, 3.25]


def test_crossfade_is_equal_power(tmp_path):
    fade_out, fade_in = master.crossfade_gains(1000)
    np.testing.assert_allclose(fade_out**2 + fade_in**2, 1.0, atol=1e-12)
    assert fade_out[0] > 0.99 and fade_in[-1] > 0.99
    # Two independent noises crossfaded for 1 s keep their power through the join.
    rng = np.random.default_rng(0)
    for name in "ab":
        write_audio(tmp_path / f"{name}.wav", 0.1 * rng.standard_normal(3 * SR), SR, subtype="FLOAT")
    arr = _arrangement(tmp_path / "p.toml", [dict(clip="a", in_s=0.0, out_s=3.0, crossfade_s=1.0),
                                              dict(clip="b", in_s=0.0, out_s=3.0)], fade_in_s=0.0, fade_out_s=0.0)
    r = master.render(arrangement.read_arrangement(arr))
    power = np.square(r.mix.astype(np.float64)).reshape(-1, SR // 10).mean(axis=1)  # 100 ms blocks
    db = 10 * np.log10(power[2:-2] / np.median(power))
    assert np.abs(db).max() < 1.0


def test_no_click_at_any_join(tmp_path):
    # Butt joins and crossfades between tones cut at arbitrary phases.
    write_audio(tmp_path / "a.wav", _tone(2.0, 200, amp=0.5), SR, subtype="FLOAT")
    write_audio(tmp_path / "b.wav", _tone(2.0, 310, amp=0.5, phase=1.3), SR, subtype="FLOAT")
    arr = _arrangement(tmp_path / "p.toml", [
        dict(clip="a", in_s=0.1237, out_s=1.3111, crossfade_s=0.0),
        dict(clip="b", in_s=0.4513, out_s=1.7777, crossfade_s=0.05),
        dict(clip="a", in_s=0.9001, out_s=1.9, crossfade_s=0.0),
        dict(clip="b", in_s=0.0, out_s=1.0),
    ], lufs=-20.0)
    r = master.render(arrangement.read_arrangement(arr))
    jumps = np.abs(np.diff(r.mix.astype(np.float64)))
    peak = np.abs(r.mix).max()
    # A sine of amplitude A at f Hz moves at most 2*pi*f*A/sr per sample; joins may not exceed it.
    bound = 2 * np.pi * 310 * peak / SR * 1.1
    assert jumps.max() < bound


def test_loudness_target_and_true_peak_ceiling(tmp_path):
    # Spiky material (clicks over a soft pad) forces the limiter to work.
    rng = np.random.default_rng(1)
    x = _tone(6.0, 150, amp=0.05)
    x[rng.integers(0, len(x), 40)] += 0.9
    # A tone at sr/4 sampled 45 degrees off its crests: true peaks 3 dB above the sample peaks.
    x[3 * SR: 4 * SR] += 0.5 * np.sin(np.pi / 2 * np.arange(SR) + np.pi / 4) * np.hanning(SR)
    write_audio(tmp_path / "a.wav", x, SR, subtype="FLOAT")
    arr = _arrangement(tmp_path / "p.toml", [dict(clip="a", in_s=0.0, out_s=6.0)], lufs=-14.0, true_peak=-1.0)
    piece = compose.render_arrangement(arr, out=tmp_path / "p.wav")
    import pyloudnorm
    import soxr

    y = _read(tmp_path / "p.wav")
    assert abs(pyloudnorm.Meter(SR).integrated_loudness(y) - (-14.0)) < 0.5
    up = soxr.resample(y, SR, 4 * SR, quality="VHQ")
    assert 20 * np.log10(np.abs(up).max()) < -1.0 + 0.05
    assert piece["loudness"]["limiter_max_reduction_db"] > 0.1  # the limiter had work to do


def test_noise_reduction_lowers_floor_keeps_tone():
    rng = np.random.default_rng(0)
    t = np.arange(6 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * ((t % 1.5) < 1.0)  # notes with gaps
    x = (tone + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    y = master.reduce_noise(x, SR).astype(np.float64)
    gap = slice(int(1.1 * SR), int(1.4 * SR))
    assert 20 * np.log10(np.std(y[gap]) / np.std(x[gap])) < -8.0  # the floor drops
    s, c = np.sin(2 * np.pi * 440 * t), np.cos(2 * np.pi * 440 * t)

    def amp(z):
        return np.hypot((z * s).mean(), (z * c).mean())

    assert abs(20 * np.log10(amp(y) / amp(x))) < 1.0  # the tone stays


def test_noise_reduction_leaves_dense_music_alone():
    # No quiet moments: the quietest blocks are music, not noise, and must not set the gate.
    rng = np.random.default_rng(2)
    t = np.arange(5 * SR) / SR
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (196, 247, 294, 392))
    x = (chord * (0.7 + 0.3 * np.sin(2 * np.pi * 2 * t)) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    y = master.reduce_noise(x, SR).astype(np.float64)
    assert abs(10 * np.log10(np.mean(y**2) / np.mean(x.astype(np.float64) ** 2))) < 1.0


# --------------------------------------------------------------------------------- hand-over


def test_labels_and_stems_line_up_sample_exactly(tmp_path):
    clips = _write_clips(tmp_path / "clips", n=3)
    arr = _arrangement(tmp_path / "p.toml", [
        dict(clip="clip-00", in_s=0.2, out_s=2.0, crossfade_s=0.3, gain_db=-2.0),
        dict(clip="clip-01", in_s=0.0, out_s=1.5, crossfade_s=0.0),
        dict(clip="clip-02", in_s=1.0, out_s=3.0),
    ], clips_dir="clips")
    piece = compose.render_arrangement(arr, out=tmp_path / "p.wav", stems_dir=tmp_path / "stems")
    # Ids are looked up in clips_dir, relative to the arrangement file.
    assert [(tmp_path / p["file"]).resolve() for p in piece["parts"]] == [
        (clips / f"clip-0{k}.wav").resolve() for k in range(3)]
    mix = _read(tmp_path / "p.wav")
    rows = [line.split("\t") for line in (tmp_path / "p.labels.txt").read_text().splitlines()]
    assert len(rows) == 3 and all(len(r) == 3 for r in rows)
    total = np.zeros_like(mix)
    for row, part in zip(rows, piece["parts"], strict=True):
        a, b = round(float(row[0]) * SR), round(float(row[1]) * SR)
        assert (a, b) == (part["start_sample"], part["end_sample"])
        stem = _read(tmp_path / part["stem"])
        assert len(stem) == len(mix)
        assert not stem[:a].any() and not stem[b:].any()
        assert np.abs(stem[a: a + 10]).max() < 0.05 and np.abs(stem[a:b]).max() > 0.05
        total += stem
    np.testing.assert_allclose(total, mix, atol=3e-4)  # stems sum to the mix (16-bit rounding)


def test_curation_and_sidecars_are_traced(tmp_path):
    clips = _write_clips(tmp_path / "clips", n=4)
    (clips / "clip-01.json").write_text(json.dumps({"id": "clip-01", "seed": 42, "temperature": {"spec": "0.9"}}))
    records = []
    for rank, (k, verdict) in enumerate([(2, "keep"), (1, "keep"), (0, "discard"), (3, "keep")], 1):
        records.append({"id": f"clip-{k:02d}", "file": f"clip-{k:02d}.wav", "verdict": verdict, "score": 1.0 / rank,
                        "rank": rank, "reasons": [], "features": {}, "error": None,
                        "lineage": {"fraction": 0.5, "matches": [{"clip_start_s": 0.0, "clip_end_s": 1.0, "track": "t",
                                                                    "source_start_s": 3.0, "similarity": 0.9}]}})
    (clips / "curation.json").write_text(json.dumps({"format_version": 1, "settings": {}, "clips": records}))
    piece = compose.auto_compose(clips, minutes=0.15, out=tmp_path / "out" / "piece.wav", noise_reduction="off")
    used = {p["clip"] for p in piece["parts"]}
    assert "clip-00" not in used and used <= {"clip-01", "clip-02", "clip-03"}
    by_clip = {p["clip"]: p for p in piece["parts"]}
    assert by_clip["clip-01"]["generation"]["seed"] == 42
    assert by_clip["clip-02"]["curation"]["rank"] == 1
    assert by_clip["clip-02"]["lineage"]["fraction"] == 0.5
    assert piece["auto"]["used_curation"] is True


# ----------------------------------------------------------------------------------- auto


def test_auto_is_deterministic_and_respects_minutes(tmp_path):
    clips = _write_clips(tmp_path / "clips", n=8)
    a = compose.auto_compose(clips, minutes=0.25, out=tmp_path / "a" / "piece.wav", seed=3, noise_reduction="off")
    b = compose.auto_compose(clips, minutes=0.25, out=tmp_path / "b" / "piece.wav", seed=3, noise_reduction="off")
    assert (tmp_path / "a" / "piece.toml").read_text() == (tmp_path / "b" / "piece.toml").read_text()
    np.testing.assert_array_equal(_read(tmp_path / "a" / "piece.wav"), _read(tmp_path / "b" / "piece.wav"))
    assert abs(a["seconds"] - 15.0) < 0.5 and a["warnings"] == []
    assert a["parts"] == b["parts"]
    # The written arrangement renders back to the same piece.
    again = compose.render_arrangement(tmp_path / "a" / "piece.toml", out=tmp_path / "a" / "again.wav")
    np.testing.assert_array_equal(_read(tmp_path / "a" / "again.wav"), _read(tmp_path / "a" / "piece.wav"))
    assert again["samples"] == a["samples"]


def test_auto_with_too_little_material_uses_what_exists(tmp_path, capsys):
    clips = _write_clips(tmp_path / "clips", n=2)
    piece = compose.auto_compose(clips, minutes=2.0, out=tmp_path / "piece.wav", noise_reduction="mix")
    assert piece["seconds"] < 10.0
    assert any("asked for 2.00 min" in w for w in piece["warnings"])
    assert "asked for 2.00 min" in capsys.readouterr().err


def test_auto_skips_silence_and_its_own_pieces(tmp_path):
    clips = _write_clips(tmp_path / "clips", n=3)
    write_audio(clips / "silent.wav", np.zeros(3 * SR, dtype=np.float32), SR)
    compose.auto_compose(clips, minutes=0.1, out=clips / "piece.wav", noise_reduction="off")
    piece = compose.auto_compose(clips, minutes=0.1, out=clips / "piece2.wav", noise_reduction="off")
    used = {p["clip"] for p in piece["parts"]}
    assert "silent" not in used and "piece" not in used
    assert any(s.startswith("silent.wav") for s in piece["auto"]["skipped"])


# ------------------------------------------------------------------------------- a person's marks


def _mark(path: Path, **marks) -> None:
    from inspire import clips as records

    records.update(path, lambda r: replace(r, marks=records.Marks(**marks)), create=True)


def _curation(folder: Path, verdicts: dict[str, str]) -> None:
    entries = [{"id": cid, "file": f"{cid}.wav", "verdict": v, "score": 1.0 / rank, "rank": rank, "reasons": [],
                "features": {}, "error": None, "lineage": None} for rank, (cid, v) in enumerate(verdicts.items(), 1)]
    (folder / "curation.json").write_text(json.dumps({"format_version": 1, "settings": {}, "clips": entries}))


def test_a_persons_verdict_overrides_curations_and_stars_come_first(tmp_path):
    from inspire.compose import arrange

    clips = _write_clips(tmp_path / "clips", n=5)
    _curation(clips, {"clip-00": "keep", "clip-01": "keep", "clip-02": "discard", "clip-03": "keep", "clip-04": "keep"})
    _mark(clips / "clip-00.wav", verdict="discard")  # curation's best: a person threw it away
    _mark(clips / "clip-02.wav", verdict="keep")  # curation discarded it: a person kept it
    _mark(clips / "clip-04.wav", star=True)  # curation's worst keeper, a person's favourite
    ranked, skipped, used = arrange.rank_clips(clips)
    assert used and [c.id for c in ranked] == ["clip-04", "clip-01", "clip-02", "clip-03"]
    assert [c.rank for c in ranked] == [5, 2, 3, 4] and ranked[0].star
    assert skipped == ["clip-00.wav: marked discard"]
    # Starred passages are taken first: a piece with room for one passage is the favourite's.
    pl = arrange.plan(clips, seconds=2.0)
    assert {p.clip.id for p in pl.parts} == {"clip-04"}
    piece = compose.auto_compose(clips, minutes=0.2, out=tmp_path / "piece.wav", noise_reduction="off")
    used_ids = {p["clip"] for p in piece["parts"]}
    assert "clip-00" not in used_ids and "clip-02" in used_ids
    assert "clip-00.wav: marked discard" in piece["auto"]["skipped"]


def test_marked_regions_are_the_clips_passages(tmp_path):
    from inspire.compose import arrange

    clips = _write_clips(tmp_path / "clips", n=3, seconds=6.0)
    _mark(clips / "clip-01.wav", regions=[(3.5, 4.5), (0.5, 2.0), (1.5, 2.5)], star=True)
    ranked, _, _ = arrange.rank_clips(clips)
    x, _ = sf.read(str(clips / "clip-01.wav"), dtype="float32")
    assert [(p.in_s, p.out_s) for p in arrange.passages_of(ranked[0], x, SR)] == [(0.5, 2.5), (3.5, 4.5)]
    pl = arrange.plan(clips, seconds=20.0)
    mine = [p for p in pl.parts if p.clip.id == "clip-01"]
    assert len(mine) == 2
    for p in mine:
        assert (0.5 <= p.in_s < p.out_s <= 2.5) or (3.5 <= p.in_s < p.out_s <= 4.5)


def test_without_curation_a_person_can_keep_silence_and_discard_music(tmp_path):
    from inspire.compose import arrange

    clips = _write_clips(tmp_path / "clips", n=3)
    write_audio(clips / "quiet.wav", 0.0005 * _tone(3.0, 440), SR)
    _mark(clips / "quiet.wav", verdict="keep")
    _mark(clips / "clip-00.wav", verdict="discard")
    ranked, skipped, used = arrange.rank_clips(clips)
    assert not used and "quiet" in {c.id for c in ranked} and "clip-00" not in {c.id for c in ranked}
    assert skipped == ["clip-00.wav: marked discard"]


def test_plan_says_nothing_itself(tmp_path, capsys):
    from inspire.compose import arrange

    pl = arrange.plan(_write_clips(tmp_path / "clips", n=2), seconds=120.0)
    assert any("asked for 2.00 min" in w for w in pl.warnings)
    assert capsys.readouterr() == ("", "")


def test_short_clips_can_be_arranged(tmp_path):
    clips = _write_clips(tmp_path / "clips", n=3, seconds=0.6)  # shorter than the 1-s boundary window
    piece = compose.auto_compose(clips, minutes=0.02, out=tmp_path / "piece.wav", noise_reduction="off")
    assert piece["parts"] and piece["seconds"] > 0.5


# -------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "parts, top, needle",
    [
        ([dict(clip="nope")], {}, "p.toml:9: part 1 (nope): clip: no clip 'nope'"),
        ([dict(clip="a", out_s=9.0)], {}, "part 1 (a): out_s: out_s = 9.0 is beyond the clip's end (2.000 s)"),
        ([dict(clip="a", out_s=1.0, crossfade_s=0.8), dict(clip="a", in_s=0.0, out_s=0.5)], {},
         "part 1 (a): crossfade_s: 0.8 s is longer than the next part"),
        ([dict(clip="a", out_s=1.0, crossfade_s=0.5), dict(clip="a", out_s=0.8, crossfade_s=0.5), dict(clip="a")], {},
         "part 2 (a): crossfade_s: the crossfade in (0.500 s) and out (0.500 s) overlap"),
        ([dict(clip="a", in_s=-1.0)], {}, "part 1 (a): in_s: must be at least 0"),
        ([dict(clip="a", crossfade_s=1.0)], {}, "the last part has nothing to fade into"),
    ],
)
def test_bad_arrangements_name_the_part_and_field(tmp_path, parts, top, needle):
    write_audio(tmp_path / "a.wav", _tone(2.0, 220), SR)
    arr = _arrangement(tmp_path / "p.toml", parts, **top)
    with pytest.raises(UserInputError, match=None) as err:
        compose.render_arrangement(arr, out=tmp_path / "p.wav")
    assert needle in str(err.value)
    assert not (tmp_path / "p.wav").exists() and not (tmp_path / "p.json").exists()


@pytest.mark.parametrize(
    "text, needle",
    [
        ('[[part]]\nclip = "a"\nin_s = "zero"\n', 'p.toml:3: part 1 (a): in_s: expected a number'),
        ('[[part]]\nclip = "a"\nloudness = 3\n', "p.toml:3: part 1 (a): loudness: unknown field"),
        ('lufs = -14\ncolour = "blue"\n[[part]]\nclip = "a"\n', "p.toml:2: colour: unknown field"),
        ('lufs = "loud"\n[[part]]\nclip = "a"\n', "p.toml:1: lufs: expected a number"),
        ('noise_reduction = "max"\n[[part]]\nclip = "a"\n', "noise_reduction: expected one of off, parts, mix"),
        ('[[part]]\nclip = "a"\nout_s = 0.5\nin_s = 1.0\n', "p.toml:3: part 1 (a): out_s: out_s = 0.5 must be after"),
        ("lufs = -14\n", "needs at least one [[part]]"),
        ("[[part]\n", "not valid TOML"),
    ],
)
def test_bad_fields_name_the_line(tmp_path, text, needle):
    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(UserInputError) as err:
        arrangement.read_arrangement(tmp_path / "p.toml")
    assert needle in str(err.value)


def test_refuses_to_overwrite_without_force(tmp_path):
    write_audio(tmp_path / "a.wav", _tone(2.0, 220), SR)
    arr = _arrangement(tmp_path / "p.toml", [dict(clip="a")])
    (tmp_path / "p.wav").write_bytes(b"mine")
    with pytest.raises(UserInputError, match="already exists"):
        compose.render_arrangement(arr, out=tmp_path / "p.wav")
    assert (tmp_path / "p.wav").read_bytes() == b"mine"
    compose.render_arrangement(arr, out=tmp_path / "p.wav", force=True)
    assert len(_read(tmp_path / "p.wav")) == 2 * SR
    with pytest.raises(UserInputError, match="unsupported extension"):
        compose.render_arrangement(arr, out=tmp_path / "p.xyz")


# ------------------------------------------------------------------------------ command line


def test_cli_round_trip(tmp_path, capsys):
    from inspire.cli import main

    clips = _write_clips(tmp_path / "clips", n=4)
    out = tmp_path / "piece.flac"
    argv = ["compose", "--auto", str(clips), "--minutes", "0.15", "--out", str(out), "--noise-reduction", "off"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.split()
    assert str(out) in printed and str(out.with_suffix(".toml")) in printed
    # Edit the arrangement (quieter target) and render it again over the old piece.
    toml = out.with_suffix(".toml")
    toml.write_text(toml.read_text().replace("lufs = -14.0", "lufs = -20.0"))
    assert main(["compose", str(toml), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["compose", str(toml), "--out", str(out), "--force", "--stems", str(tmp_path / "stems")]) == 0
    piece = json.loads(out.with_suffix(".json").read_text())
    assert piece["loudness"]["target_lufs"] == -20.0 and abs(piece["loudness"]["integrated_lufs"] + 20.0) < 0.5
    assert len(list((tmp_path / "stems").iterdir())) == len(piece["parts"])
    capsys.readouterr()
    # Exactly one source; errors are one line and exit 2.
    assert main(["compose", "--out", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exactly one" in err[0]


def _compose_cli(*args: str, cwd: Path) -> tuple[int, list[str]]:
    """`inspire compose ARGS` in a subprocess (the cases below once ended in a traceback)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "inspire", "compose", *args], capture_output=True, text=True,
                          cwd=cwd, env=env)
    return proc.returncode, proc.stderr.strip().splitlines()


def test_never_writes_over_its_own_sources_even_with_force(tmp_path):
    _write_clips(tmp_path / "clips", n=2)
    (tmp_path / "clips" / "clip-00.json").write_text('{"id": "clip-00", "seed": 5}')
    _arrangement(tmp_path / "p.toml", [dict(clip="clip-00", crossfade_s=0.2), dict(clip="clip-01")], clips_dir="clips")
    before = {p.name: p.read_bytes() for p in (tmp_path / "clips").iterdir()}
    cases = [
        (["p.toml", "--out", "clips/clip-01.wav", "--force"], "clips/clip-01.wav, the clip of part 2"),
        (["p.toml", "--out", "clips/clip-00.flac", "--force"], "clips/clip-00.json, the sidecar of clip-00.wav"),
        (["p.toml", "--out", "clips/clip-01.flac", "--force"], "clips/clip-01.json, the sidecar of clip-01.wav"),
        (["--auto", "clips", "--minutes", "0.1", "--out", "clips/clip-00.wav", "--force"], "the clip of part"),
    ]
    for args, needle in cases:
        rc, err = _compose_cli(*args, cwd=tmp_path)
        assert rc == 2 and err[-1].startswith("inspire compose: error:") and needle in err[-1], (args, err)
        assert "--force" in err[-1] and not any("Traceback" in line for line in err), err
    # A stem named like a clip in its own folder is refused too (the check is on the files, not the names).
    write_audio(tmp_path / "clips" / "01-clip-00.wav", _tone(2.0, 220), SR)
    before["01-clip-00.wav"] = (tmp_path / "clips" / "01-clip-00.wav").read_bytes()
    arr = _arrangement(tmp_path / "q.toml", [dict(clip="clips/clip-00.wav"), dict(clip="clips/01-clip-00.wav")])
    with pytest.raises(UserInputError, match="--stems .*01-clip-00.wav, the clip of part 2"):
        compose.render_arrangement(arr, out=tmp_path / "q.wav", stems_dir=tmp_path / "clips", force=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "clips").iterdir()} == before
    assert not (tmp_path / "q.wav").exists()


def test_out_and_stems_under_a_file_and_a_non_utf8_arrangement_are_one_line(tmp_path):
    _write_clips(tmp_path / "clips", n=2)
    _arrangement(tmp_path / "p.toml", [dict(clip="clip-00")], clips_dir="clips")
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "bad.toml").write_bytes(b'clips_dir = "clips"\n# caf\xe9\n[[part]]\nclip = "clip-00"\n')
    cases = [
        (["bad.toml", "--out", "x.wav"], "bad.toml: not UTF-8 text (byte 0xe9"),
        (["p.toml", "--out", "afile/x.wav"], "--out afile/x.wav: afile is a file, not a folder"),
        (["p.toml", "--out", "y.wav", "--stems", "afile"], "--stems afile: is a file, not a folder"),
        (["p.toml", "--out", "y.wav", "--stems", "afile/stems"], "--stems afile/stems: afile is a file"),
        (["--auto", "clips", "--out", "y.wav", "--stems", "afile"], "--stems afile: is a file, not a folder"),
    ]
    for args, needle in cases:
        rc, err = _compose_cli(*args, cwd=tmp_path)
        assert rc == 2 and len(err) == 1 and needle in err[0] and err[0].startswith("inspire compose: error:"), err
    # Stems are checked before rendering: no mix was written.
    assert not (tmp_path / "y.wav").exists() and (tmp_path / "afile").read_text() == "mine"


def test_streamed_analysis_and_spans_agree_with_the_whole_clip(tmp_path):
    from inspire.audio.io import read_audio, read_span, resample
    from inspire.compose import arrange

    rng = np.random.default_rng(3)
    x = np.concatenate([_tone(1.3, f, amp=a) for f, a in zip(rng.uniform(150, 900, 12), rng.uniform(0.02, 0.4, 12),
                                                             strict=True)])
    x = (x + 0.003 * rng.standard_normal(len(x))).astype(np.float32)
    write_audio(tmp_path / "c.wav", x, SR, subtype="FLOAT")
    write_audio(tmp_path / "c22.wav", resample(x, SR, 22050), 22050, subtype="FLOAT")
    whole = arrange.analyse_blocks([x], SR)
    for block in (1000, 7777, len(x)):  # any block size gives the same levels and flux
        parts = arrange.analyse_blocks([x[i: i + block] for i in range(0, len(x), block)], SR)
        np.testing.assert_array_equal(parts.db, whole.db)
        np.testing.assert_allclose(parts.flux, whole.flux, atol=1e-9)
    streamed = arrange.analyse(tmp_path / "c.wav", sample_rate=SR)
    np.testing.assert_array_equal(streamed.db, whole.db)
    # A span read alone is the whole read's slice (resampled: within a hair of it).
    np.testing.assert_array_equal(read_span(tmp_path / "c.wav", 5000, 20000), x[5000:20000])
    assert len(read_span(tmp_path / "c.wav", len(x) - 10, len(x) + 99)) == 10
    full, _ = read_audio(tmp_path / "c22.wav", sample_rate=SR)
    span = read_span(tmp_path / "c22.wav", 40000, 60000, sample_rate=SR)
    assert len(span) == 20000 and np.abs(span - full[40000:60000]).max() < 0.02
    # The plan from the file (streamed, passages read alone) is the in-memory one.
    clip = arrange.Clip("c", tmp_path / "c.wav", 1, 0.0, None)
    mem = arrange.passages_of(clip, x, SR)
    got = arrange._passages(clip, streamed, SR, lambda i, j: read_span(tmp_path / "c.wav", i, j))
    assert [(p.in_s, p.out_s, p.level_db, p.brightness) for p in got] == \
        [(p.in_s, p.out_s, p.level_db, p.brightness) for p in mem] and len(mem) >= 2


def test_hand_over_at_48k_24_bit_for_a_daw(tmp_path):
    """`--sample-rate 48000 --bit-depth 24`: piece and stems as a DAW takes them, same length in
    seconds, the same music (the 48 kHz mix resampled back matches the native render), positions
    in piece.json in the written file's samples."""
    _write_clips(tmp_path / "clips", n=2)
    arr = _arrangement(tmp_path / "p.toml", [
        dict(clip="clip-00", in_s=0.2, out_s=2.0, crossfade_s=0.3),
        dict(clip="clip-01", in_s=0.0, out_s=1.5),
    ], clips_dir="clips")
    native = compose.render_arrangement(arr, out=tmp_path / "n.wav")
    from inspire.cli import main

    assert main(["compose", str(arr), "--out", str(tmp_path / "d.wav"), "--stems", str(tmp_path / "stems"),
                 "--sample-rate", "48000", "--bit-depth", "24"]) == 0
    info = sf.info(str(tmp_path / "d.wav"))
    assert (info.samplerate, info.subtype) == (48000, "PCM_24")
    piece = json.loads((tmp_path / "d.json").read_text())
    assert piece["sample_rate"] == 48000 and piece["bit_depth"] == 24 and piece["samples"] == info.frames
    assert abs(info.frames / 48000 - native["seconds"]) < 1e-3
    for part, ref in zip(piece["parts"], native["parts"], strict=True):
        assert (part["start_sample"], part["end_sample"]) == (ref["start_sample"] * 3, ref["end_sample"] * 3)
        stem = sf.info(str(tmp_path / part["stem"]))
        assert (stem.samplerate, stem.subtype, stem.frames) == (48000, "PCM_24", info.frames)
    from inspire.audio.io import resample

    back = resample(sf.read(str(tmp_path / "d.wav"), dtype="float32")[0], 48000, SR)
    want = _read(tmp_path / "n.wav")
    n = min(len(back), len(want))
    # Within 5 % RMS (soxr's filters at the edges, 16-bit rounding); a shift of one 16 kHz sample
    # or a wrong rate would be far off (about 17 % for these 440 Hz partials).
    assert np.sqrt(np.mean((back[:n] - want[:n]) ** 2)) < 0.05 * np.sqrt(np.mean(want[:n] ** 2))


def test_bad_hand_over_formats_are_one_line(tmp_path, capsys):
    _write_clips(tmp_path / "clips", n=1)
    arr = _arrangement(tmp_path / "p.toml", [dict(clip="clip-00", in_s=0.0, out_s=1.0)], clips_dir="clips")
    from inspire.cli import main

    for flags, message in [(["--sample-rate", "100"], "--sample-rate must be a whole number of Hz"),
                           (["--bit-depth", "24"], "is a lossy format with no bit depth")]:
        out = tmp_path / ("x.mp3" if "--bit-depth" in flags else "x.wav")
        assert main(["compose", str(arr), "--out", str(out), *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]
        assert not out.exists()
