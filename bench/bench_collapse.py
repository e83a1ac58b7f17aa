"""The collapse study: how many clips on the story's temperature ramp fall into noise, with plain
temperature, with min-p and top-p truncation at a few values and with the collapse guard, and
whether the survivors' endings still sound bold next to plain T = 1.0 clips.

Given a prepared run folder (`inspire prepare`; with --corpus it is prepared here), for each
training budget in --steps it trains the run's model up to that many steps (continuing from its
last checkpoint, so budgets add up; `small` preset, `tiny` with --quick), or it takes the given
--checkpoints, and then:

1. generates --clips clips of --seconds for every setting, all settings in one batch (every
   stream has its own controls; the guard watches only the guard settings' streams), through
   `inspire.samplernn.guard.stream` (the CUDA-graph period stepper on a GPU, eager on a CPU);
2. writes each as a WAV with a sidecar (temperature curve, truncation, guard interventions) under
   OUT/<label>/<setting>/ and curates every setting's folder (`inspire.curate.curate_folder`:
   report.html there shows every clip's spectrogram);
3. writes each setting's figures to OUT/<label>/<setting>/stats.json (from its WAVs and
   sidecars alone: a setting with stats.json is done, and a rerun skips it, so a killed study
   resumes and --only lets several processes share the settings of one budget);
4. prints a table per budget from every setting's stats.json under OUT/<label> (those of other
   processes too): clips that collapsed (into noise part-way, or noise from the start) and the
   temperatures where they did; how many clips curation keeps; for the survivors, the median
   variety and spectral flatness of their last 10 s against the plain T = 1.0 clips' (with a
   90 % bootstrap interval on the variety difference) and how many endings are noisy; for the
   guard, its interventions and the share of samples it redrew; and, for reference, the same
   measures over the source audio's own 10-s stretches (--source: --corpus or the dev corpus);
5. prints the guard's own speed cost (unless --no-speed): the same batch with and without the
   guard watching (nothing to redraw), samples per second.

    python bench/bench_collapse.py RUN_DIR --steps 1500,7000                  # the study (GPU)
    python bench/bench_collapse.py RUN_DIR --checkpoints a.pt,b.pt --clips 24
    python bench/bench_collapse.py /tmp/study --corpus DIR --quick            # tiny, on a CPU
    # two CPU processes sharing one budget's settings (the second prints the whole table):
    python bench/bench_collapse.py RUN --checkpoints c.pt --only 'plain ramp,min-p 0.02,plain T=1.0' --no-speed &
    python bench/bench_collapse.py RUN --checkpoints c.pt --only 'guard,top-p 0.95'

Device: --device auto (cuda, then mps, then cpu). Asserts nothing; prints figures (with the load
average on a CPU, where they depend on what else runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from inspire import clips, schedule
from inspire.audio.io import write_audio
from inspire.audio.quantize import dequantize
from inspire.curate import scores
from inspire.curate.curate import curate_folder
from inspire.samplernn import checkpoint, graph, guard, sample
from inspire.samplernn.device import pick_device

DEV_CORPUS = Path("/work/shared/corpora/dev/muldjord")
LAST_S = 10.0  # the survivors' ending that is compared
STATS = "stats.json"  # a setting's figures, in its folder: the setting is done


@dataclass(frozen=True)
class Setting:
    name: str
    temperature: str
    min_p: str = "0"
    top_p: str = "1"
    guard: bool = False


def settings(ramp: str, min_ps: list[str], top_ps: list[str], combos: list[str]) -> list[Setting]:
    out = [Setting("plain ramp", ramp)]
    out += [Setting(f"min-p {v}", ramp, min_p=v) for v in min_ps]
    out += [Setting(f"top-p {v}", ramp, top_p=v) for v in top_ps]
    out += [Setting("guard", ramp, guard=True)]
    for c in combos:  # "min-p=0.05+guard", "top-p=0.9+min-p=0.02", "T=1.0+min-p=0:0.05" (T: instead of the ramp)
        kw, parts = {"temperature": ramp}, c.split("+")
        for part in parts:
            if part == "guard":
                kw["guard"] = True
            else:
                key, _, value = part.partition("=")
                kw[{"min-p": "min_p", "top-p": "top_p", "T": "temperature"}[key]] = value
        out.append(Setting(c.replace("=", " "), **kw))
    out.append(Setting("plain T=1.0", "1.0"))
    return out


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in name)


def generate(
    model,
    sets: list[Setting],
    *,
    clips_per: int,
    seconds: float,
    sample_rate: int,
    quantization: str,
    out: Path,
    seed: int,
    device,
    config: guard.GuardConfig,
) -> tuple[float, list[Path]]:
    """Every setting's clips in one batch; returns (wall seconds, setting folders)."""
    n = round(seconds * sample_rate)
    plan = [(s, k) for s in sets for k in range(clips_per)]
    temps = [schedule.parse(s.temperature) for s, _ in plan]
    mins = [schedule.parse(s.min_p, control="min-p") for s, _ in plan]
    tops = [schedule.parse(s.top_p, control="top-p") for s, _ in plan]
    def curve(scheds: list) -> object:
        return sample.schedule_curve(scheds, n_samples=n, sample_rate=sample_rate, device=device)

    seeds = [seed * 1_000_003 + k for _, k in plan]  # the same seed for clip k of every setting: paired comparisons
    log: list = []
    start = time.perf_counter()
    chunks = list(
        guard.stream(
            model,
            n_samples=n,
            temperature=curve(temps),
            seeds=seeds,
            sample_rate=sample_rate,
            quantization=quantization,
            config=config,
            min_p=curve(mins) if any(not m.neutral for m in mins) else None,
            top_p=curve(tops) if any(not t.neutral for t in tops) else None,
            log=log,
            guarded=[s.guard for s, _ in plan],
        )
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    audio = dequantize(torch.cat(chunks, dim=1).numpy(), kind=quantization, levels=model.cfg.levels)
    folders = {s.name: out / _slug(s.name) for s in sets}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for i, ((s, k), x) in enumerate(zip(plan, audio, strict=True)):
        folder = folders[s.name]
        cid = f"{k:04d}"
        write_audio(folder / f"{cid}.wav", x, sample_rate)
        clips.write(
            clips.ClipRecord(
                cid,
                temperature=temps[i].resolved(n, sample_rate),
                min_p=None if mins[i].neutral else mins[i].resolved(n, sample_rate),
                top_p=None if tops[i].neutral else tops[i].resolved(n, sample_rate),
                guard={"settings": config.to_dict(), "interventions": log[i]} if s.guard else None,
                seconds=n / sample_rate,
                samples=n,
                sample_rate=sample_rate,
                seed=seeds[i],
                index=k,
            ),
            folder,
        )
    return wall, list(folders.values())


def clip_stats(folder: Path) -> list[dict]:
    """Curate one setting's folder; per clip: collapsed (part-way or from the start), where and at
    what temperature, the noise's flatness, and for a survivor its last 10 s' variety and flatness."""
    cur = curate_folder(folder, progress=False)
    out = []
    for e in cur["clips"]:
        f = e["features"]
        x, sr = _read(folder / e["file"])
        from_start = f.get("collapse_s") is None and any(r in ("white noise", "mostly noise") for r in e["reasons"])
        row = {
            "id": e["id"],
            "reasons": e["reasons"],
            "collapse_s": f.get("collapse_s"),
            "from_start": from_start,
            "t_collapse": f.get("collapse_temperature"),
            "noise_flatness": None,
            "variety": None,
            "flatness": None,
        }
        if from_start:
            row["t_collapse"] = float(json.loads((folder / f"{e['id']}.json").read_text())["temperature"]["values"][0])
        if row["collapse_s"] is not None or from_start:
            power, _ = scores.stft_power(x[round((row["collapse_s"] or 0.0) * sr) :], sr)
            row["noise_flatness"] = float(np.median(scores.frame_flatness(power)))
        else:
            ending, _ = scores.compute_features(x[-round(LAST_S * sr) :], sr)
            row["variety"], row["flatness"] = ending["variety_db"], ending["spectral_flatness"]
        out.append(row)
    return out


def setting_stats(folder: Path, setting: Setting, generate_s: float | None = None) -> dict:
    """One setting's figures from its folder alone (WAVs and sidecars), written to stats.json:
    collapses and their temperatures, the survivors' endings, the guard's activity."""
    stats = clip_stats(folder)
    fell = [r for r in stats if r["collapse_s"] is not None or r["from_start"]]
    temps = [r["t_collapse"] for r in fell if r["t_collapse"] is not None]
    kept = [r for r in stats if r not in fell]
    records = clips.scan(folder)
    events = [e for rec in records if rec.guard for e in rec.guard["interventions"]]
    total = sum(rec.samples or 0 for rec in records)
    row = {
        "setting": setting.name,
        "spec": asdict(setting),
        "clips": len(stats),
        "collapsed": len(fell),
        "from_start": sum(r["from_start"] for r in fell),
        "t_collapse": (float(np.median(temps)), min(temps), max(temps)) if temps else None,
        "noise_flatness": float(np.median([r["noise_flatness"] for r in fell])) if fell else None,
        "variety": float(np.median([r["variety"] for r in kept])) if kept else None,
        "flatness": float(np.median([r["flatness"] for r in kept])) if kept else None,
        "interventions": sum("to" in e for e in events),
        "gave_up": sum(bool(e.get("gave_up")) for e in events),
        "redrawn": sum(e["at"] - e["to"] for e in events if "to" in e) / total if setting.guard and total else None,
        "generate_s": generate_s,
        "clips_detail": stats,
    }
    (folder / STATS).write_text(json.dumps(row, indent=1))
    return row


def summarize(sets: list[Setting], folders: list[Path], *, generate_s: float) -> None:
    """Every setting's stats.json, settings curated in parallel processes (curation is numpy on
    one core each)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=max(1, min(len(folders), os.cpu_count() or 1))) as pool:
        list(pool.map(setting_stats, folders, sets, [generate_s] * len(sets)))


def gathered(label_dir: Path, order: list[Setting]) -> list[dict]:
    """Every finished setting's row under one budget's folder (whichever process made it), in the
    order of `order` first, then the others by name, the plain T = 1.0 reference last."""
    rows = []
    for f in sorted(label_dir.glob(f"*/{STATS}")):
        row = json.loads(f.read_text())
        row["kept"] = sum(rec.auto_verdict == "keep" for rec in clips.scan(f.parent))  # curation's verdicts
        rows.append(row)
    rank = {s.name: i for i, s in enumerate(order)}
    return sorted(rows, key=lambda r: (r["setting"] == "plain T=1.0", rank.get(r["setting"], len(rank)), r["setting"]))


def _read(path: Path) -> tuple[np.ndarray, int]:
    from inspire.audio.io import read_audio

    x, info = read_audio(path)
    return x, info.sample_rate


def print_table(label: str, rows: list[dict], source: dict | None = None) -> None:
    """The study's table. Variety and flatness are medians over the survivors' last 10 s; "vs
    T=1.0" is the difference of medians from the plain T = 1.0 clips', with a 90 % bootstrap
    interval for variety (clips resampled with replacement, 4,000 times)."""
    ref = next((r for r in rows if r["setting"] == "plain T=1.0"), None)
    noise = scores.Thresholds().collapse_flatness
    print(f"\n{label}")
    head = (
        f"{'setting':22} {'collapsed':>9}  {'T at collapse (median, range)':29} {'kept':>5} {'end variety dB':>14} "
        f"{'vs T=1.0 (90% interval)':>24} {'end flatness':>12} {'vs T=1.0':>8} {'noisy ends':>10}  guard"
    )
    print(head)
    print("-" * len(head))
    rng = np.random.default_rng(0)
    for r in rows:
        tc = f"{r['t_collapse'][0]:.3f} ({r['t_collapse'][1]:.3f}-{r['t_collapse'][2]:.3f})" if r["t_collapse"] else "-"
        var = "-" if r["variety"] is None else f"{r['variety']:.2f}"
        flat = "-" if r["flatness"] is None else f"{r['flatness']:.3f}"
        dv = df = "-"
        ends = [c for c in r["clips_detail"] if c["variety"] is not None]
        if ref is not None and r["variety"] is not None and ref["variety"] is not None:
            mine = np.array([c["variety"] for c in ends])
            theirs = np.array([c["variety"] for c in ref["clips_detail"] if c["variety"] is not None])
            boot = [np.median(rng.choice(mine, mine.size)) - np.median(rng.choice(theirs, theirs.size))
                    for _ in range(4000)]
            low, high = np.quantile(boot, [0.05, 0.95])
            dv = f"{r['variety'] - ref['variety']:+.2f} ({low:+.2f} to {high:+.2f})"
            df = f"{r['flatness'] - ref['flatness']:+.3f}"
        noisy = f"{sum(c['flatness'] > noise for c in ends)}/{len(ends)}"
        g = (
            f"{r['interventions']} redraws, {r['gave_up']} let be, {100 * r['redrawn']:.1f}% redrawn"
            if r["redrawn"] is not None
            else ""
        )
        kept = f"{r.get('kept', '?')}/{r['clips']}"
        print(
            f"{r['setting']:22} {r['collapsed']:>4}/{r['clips']:<4}  {tc:29} {kept:>5} {var:>14} {dv:>24} {flat:>12} "
            f"{df:>8} {noisy:>10}  {g}"
        )
    fell = [r["noise_flatness"] for r in rows if r["noise_flatness"] is not None]
    starts = sum(r["from_start"] for r in rows)
    print(
        f"kept: curation's verdict; noisy ends: last 10 s flatter than {noise} (curation's noise frame). Collapsed "
        f"clips: {starts} noise from the start; the noise's median frame flatness "
        f"{f'{np.median(fell):.3f}' if fell else '- (none fell)'} (white noise ~0.56; the guard steps in above "
        f"{guard.GuardConfig().flatness} over {guard.GuardConfig().span_s:g} s)"
    )
    if source:
        print(
            f"the source's own {LAST_S:g}-s stretches ({source['stretches']}): flatness {source['flatness']:.3f} "
            f"median, {source['flatness_max']:.3f} at most; variety {source['variety']:.2f} dB median"
        )


def source_reference(folder: Path | None) -> dict | None:
    """Curation's flatness and variety over every whole 10-s stretch of the source audio in
    `folder` (what the survivors' endings are compared with), or None without a folder."""
    if folder is None or not folder.is_dir():
        return None
    from inspire.audio.io import find_audio_files, read_audio

    flat, var = [], []
    for f in find_audio_files([folder]):
        x, info = read_audio(f)
        step = round(LAST_S * info.sample_rate)
        for start in range(0, x.size - step + 1, step):
            feats, _ = scores.compute_features(x[start : start + step], info.sample_rate)
            flat.append(feats["spectral_flatness"])
            var.append(feats["variety_db"])
    if not flat:
        return None
    return {"stretches": len(flat), "flatness": float(np.median(flat)), "flatness_max": float(max(flat)),
            "variety": float(np.median(var))}


def guard_speed(
    model, *, batch: int, seconds: float, sample_rate: int, quantization: str, device
) -> tuple[float, float]:
    """Samples per second per stream, (plain period stepper, the same with the guard watching)."""
    n = round(seconds * sample_rate)
    flat = torch.full((batch,), 1.0, device=device)
    quiet = guard.GuardConfig(flatness=0.999)  # it watches everything and never steps in
    rates = []
    for guarded in (False, True):
        start = time.perf_counter()
        if guarded:
            for _ in guard.stream(
                model,
                n_samples=n,
                temperature=lambda s, k: flat[:, None].expand(batch, k),
                seeds=list(range(batch)),
                sample_rate=sample_rate,
                quantization=quantization,
                config=quiet,
            ):
                pass
        else:
            for chunk in graph.stream(model, n_samples=n, temperature=flat, seeds=list(range(batch))):
                chunk.cpu()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(n / (time.perf_counter() - start))
    return rates[0], rates[1]


def study(label: str, ckpt_path: Path, args, device, out: Path) -> None:
    model, ckpt = checkpoint.load_model(ckpt_path, device=device)
    data = ckpt.get("data") or {}
    sr, quantization = int(data["sample_rate"]), str(data["quantization"])
    every = settings(args.ramp, args.min_p, args.top_p, args.combos)
    sets = every
    if args.only:
        wanted = [w.strip() for w in _values(args.only) if w.strip()]
        unknown = [w for w in wanted if w not in {s.name for s in every}]
        if unknown:
            raise SystemExit(f"--only: unknown setting(s) {unknown}; the settings are {[s.name for s in every]}")
        sets = [s for s in every if s.name in wanted]
    here = out / label
    todo = [s for s in sets if args.fresh or not (here / _slug(s.name) / STATS).exists()]
    done = [s.name for s in sets if s not in todo]
    if done:
        print(f"{label}: already measured, skipped: {', '.join(done)}", file=sys.stderr)
    if todo:
        print(
            f"{label}: {ckpt_path} (step {ckpt.get('step')}, val {ckpt.get('val_bits', '?')} bits): {len(todo)} "
            f"settings x {args.clips} clips x {args.seconds:g} s = {len(todo) * args.clips} streams at once",
            file=sys.stderr,
        )
        wall, folders = generate(
            model,
            todo,
            clips_per=args.clips,
            seconds=args.seconds,
            sample_rate=sr,
            quantization=quantization,
            out=here,
            seed=args.seed,
            device=device,
            config=guard.GuardConfig(),
        )
        seconds = len(todo) * args.clips * args.seconds
        print(f"{label}: generated {seconds:.0f} s of audio in {wall:.1f} s", file=sys.stderr)
        start = time.perf_counter()
        summarize(todo, folders, generate_s=wall)
        print(f"{label}: curated in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    rows = gathered(here, every)
    print_table(
        f"{label} (step {ckpt.get('step')}): {args.clips} clips x {args.seconds:g} s per setting, ramp "
        f"{args.ramp}; clips and report.html in {here}",
        rows,
        source_reference(args.source),
    )
    (here / "results.json").write_text(
        json.dumps({"checkpoint": str(ckpt_path), "step": ckpt.get("step"), "rows": rows}, indent=1)
    )
    if args.no_speed:
        return
    plain, guarded = guard_speed(
        model,
        batch=args.clips,
        seconds=min(args.seconds, 4.0 if args.quick else 20.0),
        sample_rate=sr,
        quantization=quantization,
        device=device,
    )
    print(
        f"guard speed, batch {args.clips}: {plain:,.0f} samples/s per stream plain, {guarded:,.0f} watched "
        f"({100 * (plain / guarded - 1):+.1f}% time; redraws cost their share of samples on top)"
    )


def _values(v: str) -> list[str]:
    """A list flag's values: comma-separated, or semicolon-separated when a value holds commas
    (a curve with breakpoints: '0.02;0s:0,5s:0.05')."""
    return [c for c in v.split(";" if ";" in v else ",") if c]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run_dir", type=Path, help="a run folder with prepared data (or with --corpus, made here)")
    p.add_argument(
        "--corpus", type=Path, default=None, help="audio to prepare into RUN_DIR first (e.g. the dev corpus)"
    )
    p.add_argument(
        "--steps", default=None, help="training budgets in steps, comma-separated (default 1500,7000; --quick 40,120)"
    )
    p.add_argument("--checkpoints", default=None, help="checkpoint files to study instead of training, comma-separated")
    p.add_argument("--clips", type=int, default=None, help="clips per setting (default 24; --quick 3)")
    p.add_argument("--seconds", type=float, default=None, help="clip length (default 45; --quick 4)")
    p.add_argument("--ramp", default="0.875:1.15", help="the temperature ramp studied")
    p.add_argument(
        "--min-p", default="0.02,0.05,0.1", type=_values, help="min-p values or curves ('' none; ';' between curves)"
    )
    p.add_argument(
        "--top-p", default="0.98,0.95,0.9", type=_values, help="top-p values or curves ('' none)"
    )
    p.add_argument(
        "--combos",
        default="min-p=0.05+guard",
        type=_values,
        help="combined settings, e.g. min-p=0.05+guard,top-p=0.95+min-p=0.02,T=1.0+min-p=0:0.05 (T: a temperature "
        "instead of the ramp)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes (preset tiny, a few steps, short clips): checks the script on a CPU",
    )
    p.add_argument(
        "--only", default=None, help="study only these settings (names as in the table, comma- or semicolon-separated)"
    )
    p.add_argument("--fresh", action="store_true", help="measure settings again even where stats.json exists")
    p.add_argument("--no-speed", action="store_true", help="skip the guard's speed measurement")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: on a shared CPU several threads per sample step are many times slower)",
    )
    p.add_argument("--out", type=Path, default=None, help="where clips go (default RUN_DIR/collapse-study)")
    p.add_argument(
        "--source", type=Path, default=None, help="the source audio the endings are compared with (default: --corpus, "
        "else the dev corpus where it is)"
    )
    args = p.parse_args(argv)
    args.source = args.source or args.corpus or (DEV_CORPUS if DEV_CORPUS.is_dir() else None)
    args.clips = args.clips or (3 if args.quick else 24)
    args.seconds = args.seconds or (4.0 if args.quick else 45.0)
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    out = args.out or args.run_dir / "collapse-study"
    if device.type == "cpu":
        print(
            f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores", file=sys.stderr
        )
    if args.corpus is not None:
        from inspire.audio.dataset import PrepareSettings, prepare

        prepare([args.corpus], args.run_dir, PrepareSettings(), progress=False)
    if args.checkpoints:
        for path in args.checkpoints.split(","):
            study(Path(path).stem, Path(path), args, device, out)
        return 0
    from inspire.samplernn.train import train

    budgets = [int(v) for v in (args.steps or ("40,120" if args.quick else "1500,7000")).split(",")]
    for steps in sorted(budgets):
        start = time.perf_counter()
        code = train(
            args.run_dir,
            preset="tiny" if args.quick else "small",
            max_steps=steps,
            device=args.device,
            previews=False,
            progress=False,
        )
        if code:
            return code
        print(f"trained to step {steps} ({(time.perf_counter() - start) / 60:.1f} min this budget)", file=sys.stderr)
        study(f"step{steps}", checkpoint.checkpoint_dir(args.run_dir) / "last.pt", args, device, out)
    if device.type == "cpu":
        print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
