"""The steering study: does conditioning on tracks help, does steering reach its target, what
does it cost? Prints figures (and writes WORK/results.json); asserts nothing.

    python bench/bench_steer.py --quick            # tiny model on the CPU, ~6 min on 2 busy cores
    python bench/bench_steer.py --work W           # standard preset, device auto (a CUDA GPU): ~22 min

In stages (a machine that runs one command for at most 10 minutes; the same --work, kept):
    python bench/bench_steer.py --work W --stage plain        # ~8 min of training
    python bench/bench_steer.py --work W --stage labelled     # ~8 min of training
    python bench/bench_steer.py --work W --stage measure      # bits, attribution, speed: ~4 min on a GPU

On the dev corpus (4 songs), every track is split in time: its last `--val-fraction` is held
out, after a one-second gap (a time split inside tracks, so every track has a held-out stretch).
Two models train for the same wall-clock time from the same preset and seed: one without labels,
one labelled by track (`--label-by track`, the default share of "no label" chunks). Then:

1. bits/sample on each track's held-out stretch (teacher forcing): the unlabelled model; the
   labelled model given the track's label, "no label", and (mean over them) the other labels.
2. attribution by a measure that does not use the model: a logistic-regression classifier
   (scipy L-BFGS) over 1-s windows of 40 mel-band log energies (mean and spread per band, level
   removed) fitted on the training stretches of the tracks (as quantized, like generated audio).
   Its accuracy on the held-out stretches says how well it tells the tracks apart at all. Clips
   steered to each track (plain, and with guidance), unsteered clips and the unlabelled model's
   clips are attributed window by window: the share of windows given to the steered-to track,
   against chance (1 / tracks). Morph clips (`0.25:A,0.75:B`: A for the first quarter, B for the
   last) are attributed at their first and last quarter.
3. generation speed (samples per second per stream, and over the batch) of the labelled model:
   unsteered, steered (constant), morphing, guided; and the unlabelled model; at batch 1 and a
   full batch; on CUDA also through the period stepper (CUDA graphs), which generate uses there.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from inspire import schedule
from inspire.audio.dataset import PrepareSettings, Track, load_prepared, prepare
from inspire.audio.io import read_audio, write_audio
from inspire.audio.labels import Labelling
from inspire.audio.quantize import dequantize
from inspire.curate.scores import band_energies_db, stft_power
from inspire.files import read_json, write_json
from inspire.samplernn import checkpoint, graph, sample
from inspire.samplernn.device import pick_device

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "dev" / "muldjord"
if not CORPUS.is_dir():
    CORPUS = Path("/work/shared/corpora/dev/muldjord")
SR = 16000
WINDOW_S = 1.0  # attribution window


# ----------------------------------------------------------------------------------------------
# Data: the corpus with a time split inside every track


def split_in_time(run_dir: Path, *, fraction: float, gap_s: float = 1.0) -> None:
    """Rewrite the run's manifest so every track trains on its start and holds out its end."""
    path = run_dir / "data" / "manifest.json"
    manifest = read_json(path)
    tracks = []
    for d in manifest["tracks"]:
        t = Track.from_json(d)
        n, gap = t.samples, round(gap_s * SR)
        val = max(round(fraction * n), SR)
        segs = ({"split": "train", "start": 0, "end": n - val - gap}, {"split": "val", "start": n - val, "end": n})
        tracks.append(Track.from_json({**t.to_json(), "split": "mixed", "segments": list(segs)}).to_json())
    manifest["tracks"] = tracks
    write_json(path, manifest)


def prepare_corpus(work: Path, corpus: Path, *, quick: bool, fraction: float) -> Path:
    """WORK/base: the corpus prepared (quick: the first 40 s of each song), split in time."""
    base = work / "base"
    if (base / "data" / "manifest.json").is_file():
        return base
    src = corpus
    if quick:
        src = work / "quick-corpus"
        src.mkdir(parents=True, exist_ok=True)
        for f in sorted(corpus.glob("*.flac")):
            audio, _ = read_audio(f, sample_rate=SR)
            write_audio(src / f"{f.stem}.wav", audio[: 40 * SR], SR)
    prepare([src], base, PrepareSettings(), progress=False)
    split_in_time(base, fraction=fraction)
    return base


def run_with(base: Path, run: Path) -> Path:
    """A fresh run folder holding a copy of the prepared data."""
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(base / "data", run / "data")
    return run


# ----------------------------------------------------------------------------------------------
# 1. Held-out bits per sample


@torch.no_grad()
def heldout_bits(model, pieces: np.ndarray, rows: list[int] | None, *, seq_len: int, device) -> np.ndarray:
    """Mean bits/sample of each piece (B, lookback + T) with labels `rows` (None: none given)."""
    lb = model.lookback
    x = torch.from_numpy(pieces).to(device)
    lab = None if rows is None else torch.tensor(rows, device=device)
    state, nats, n = None, torch.zeros(len(pieces), device=device), 0
    for w in range(0, x.shape[1] - lb, seq_len):
        window = x[:, w : w + lb + seq_len]
        logits, state = model(window, state, labels=lab)
        nll = F.cross_entropy(logits.transpose(1, 2).float(), window[:, lb:], reduction="none")  # (B, T)
        nats += nll.sum(1)
        n += nll.shape[1]
    return (nats / n / np.log(2)).cpu().numpy()


def heldout_pieces(prep, *, lookback: int, seq_len: int, max_s: float) -> tuple[list[Track], np.ndarray]:
    """Each track's held-out stretch, the same whole number of windows from each: (tracks, (B, lb + T))."""
    tracks, segs = [], []
    for t in prep.tracks:
        for s in t.segments:
            if s.split == "val":
                tracks.append(t)
                segs.append(s)
    usable = min(s.end - s.start for s in segs) - lookback
    n = min(usable, int(max_s * SR)) // seq_len * seq_len
    rows = [np.asarray(prep.array(t)[s.start : s.start + lookback + n], dtype=np.int64)
            for t, s in zip(tracks, segs, strict=True)]
    return tracks, np.stack(rows)


# ----------------------------------------------------------------------------------------------
# 2. Attribution by a classifier over spectral frames (no model involved)


def window_features(audio: np.ndarray) -> np.ndarray:
    """(windows, 80): per 1-s window (half overlapping), the mean and spread of 40 mel-band log
    energies over its 16-ms frames; the window's mean level is removed (spectral shape only)."""
    bands = band_energies_db(stft_power(audio, SR)[0], SR)  # (frames, 40)
    w = max(1, round(WINDOW_S / 0.016))
    feats = []
    for a in range(0, max(1, bands.shape[0] - w + 1), w // 2):
        block = bands[a : a + w]
        mean = block.mean(0)
        feats.append(np.concatenate([mean - mean.mean(), block.std(0)]))
    return np.asarray(feats, dtype=np.float64)


class Attributor:
    """Multinomial logistic regression (L2, class-balanced) fitted with scipy's L-BFGS."""

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = 1e-2) -> "Attributor":
        from scipy.optimize import minimize

        self.mu, self.sd = x.mean(0), x.std(0) + 1e-6
        z = (x - self.mu) / self.sd
        onehot = np.eye(n_classes)[y]
        weight = (1.0 / np.bincount(y, minlength=n_classes))[y]
        weight /= weight.sum()
        d = z.shape[1]

        def loss(theta):
            w, b = theta[: d * n_classes].reshape(d, n_classes), theta[d * n_classes :]
            logits = z @ w + b
            logits -= logits.max(1, keepdims=True)
            logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
            p = np.exp(logp)
            value = -(weight * (onehot * logp).sum(1)).sum() + 0.5 * l2 * (w**2).sum()
            g = (p - onehot) * weight[:, None]
            return value, np.concatenate([(z.T @ g + l2 * w).ravel(), g.sum(0)])

        res = minimize(loss, np.zeros(d * n_classes + n_classes), jac=True, method="L-BFGS-B", options={"maxiter": 500})
        self.w, self.b = res.x[: d * n_classes].reshape(d, n_classes), res.x[d * n_classes :]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mu) / self.sd @ self.w + self.b).argmax(1)


def fit_attributor(prep) -> tuple[Attributor, dict]:
    """Fit on every track's training stretch; accuracy on every held-out stretch."""
    xs, ys, val = [], [], {}
    kind, levels = prep.settings.quantization, prep.settings.levels
    for i, t in enumerate(prep.tracks):
        for s in t.segments:
            audio = dequantize(np.asarray(prep.array(t)[s.start : s.end]), kind=kind, levels=levels)
            f = window_features(audio)
            if s.split == "train":
                xs.append(f)
                ys.append(np.full(len(f), i))
            else:
                val[i] = f
    clf = Attributor().fit(np.concatenate(xs), np.concatenate(ys), len(prep.tracks))
    acc = {prep.tracks[i].name: float((clf.predict(f) == i).mean()) for i, f in val.items()}
    return clf, acc


def shares(clf: Attributor, clips: np.ndarray, n_classes: int, *, part: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """(n_classes,) share of the clips' windows (inside the `part` of each clip) given to each track."""
    counts = np.zeros(n_classes)
    for audio in clips:
        a, b = round(part[0] * audio.size), round(part[1] * audio.size)
        counts += np.bincount(clf.predict(window_features(audio[a:b])), minlength=n_classes)
    return counts / max(counts.sum(), 1)


def generate(model, n_streams: int, seconds: float, *, steers: list[str] | None, names, device, temperature: float,
             guidance: float | None = None, seed: int = 0, kind: str = "mu-law") -> np.ndarray:
    """(n_streams, samples) float audio; steers: one spec per stream (None: unsteered)."""
    n = round(seconds * SR)
    labels = None
    if steers is not None:
        bound = [schedule.parse_steer(s) for s in steers]
        rows = [s.rows(names) for s in bound]
        last = (n - 1) / SR

        def labels(positions):
            t = positions.cpu().numpy() / SR
            w = np.stack([s.weights(t, last, r, len(names) + 1) for s, r in zip(bound, rows, strict=True)])
            return torch.from_numpy(w).to(device)

    run = graph.stream if device.type == "cuda" else sample.stream
    chunks = run(model, n_samples=n, temperature=torch.full((n_streams,), temperature, device=device),
                 seeds=[seed * 1000 + i for i in range(n_streams)], labels=labels, guidance=guidance)
    classes = torch.cat([c.cpu() for c in chunks], 1).numpy()
    return dequantize(classes, kind=kind, levels=model.cfg.levels)


# ----------------------------------------------------------------------------------------------
# 3. Speed


def speed(model, batch: int, n: int, device, *, labels=None, guidance=None, use_graph=False) -> float:
    """Samples per second per stream."""
    run = graph.stream if use_graph else sample.stream
    temps = torch.ones(batch, device=device)

    def once(k):
        for _ in run(model, n_samples=k, temperature=temps, seeds=list(range(batch)), labels=labels, guidance=guidance,
                     block=k):
            pass
        if device.type == "cuda":
            torch.cuda.synchronize()

    once(model.lookback * 2)  # warm-up (and graph capture)
    t0 = time.perf_counter()
    once(n)
    return n / (time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny model, short songs, CPU-sized figures")
    ap.add_argument("--preset", default=None, help="model preset (default: tiny with --quick, else standard)")
    ap.add_argument("--minutes", type=float, default=None, help="training minutes per model (default: 1.5 quick, 8)")
    ap.add_argument("--steps", type=int, default=None,
                    help="train each model this many steps instead of --minutes (equal work on a shared machine)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work", default=None, help="working folder (default: a temporary one, removed)")
    ap.add_argument("--val-fraction", type=float, default=0.1, help="held-out end of every track")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--clips", type=int, default=None, help="steered clips per track (default: 3 quick, 8)")
    ap.add_argument("--seconds", type=float, default=None, help="steered clip length (default: 4 quick, 10)")
    ap.add_argument("--corpus", default=str(CORPUS), help="folder of the dev corpus's songs")
    ap.add_argument("--stage", default="all", choices=["all", "plain", "labelled", "measure"],
                    help="train one model (plain, labelled) or measure two trained ones; all: everything")
    args = ap.parse_args()
    quick = args.quick
    preset = args.preset or ("tiny" if quick else "standard")
    minutes = args.minutes or (1.5 if quick else 8.0)
    n_clips = args.clips or (3 if quick else 8)
    clip_s = args.seconds or (4.0 if quick else 10.0)
    dev = pick_device(args.device)
    if args.stage != "all" and not args.work:
        ap.error("--stage needs --work (the stages share it)")
    import tempfile

    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="bench-steer-")
    work = Path(args.work or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    from inspire.samplernn.train import train

    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    print(f"# steering study: {platform.node()}, {dev} ({where}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    corpus = Path(args.corpus)
    budget = f"{args.steps} steps" if args.steps else f"{minutes:g} min"
    print(f"# preset {preset}, {budget} of training per model, corpus {corpus}"
          + (" (first 40 s of each song)" if quick else ""))
    base = prepare_corpus(work, corpus, quick=quick, fraction=args.val_fraction)
    prep = load_prepared(base)
    results: dict = {"preset": preset, "minutes": minutes, "device": str(dev), "quick": quick}

    runs = {}
    for name, label_by in (("plain", "none"), ("labelled", "track")):
        run = work / name
        if args.stage not in ("all", name):
            continue
        if not (run / "checkpoints" / "last.pt").is_file():
            run_with(base, run)
            t0 = time.time()
            over = {"label_by": label_by, "val_every": 10**9, "checkpoint_every": 10**9}  # time goes to training
            train(run, preset=preset, train_overrides=over, max_steps=args.steps,
                  max_minutes=None if args.steps else minutes, device=str(dev), previews=False, progress=False)
            print(f"# trained {name} in {time.time() - t0:.0f} s", file=sys.stderr)
    if args.stage in ("plain", "labelled"):
        return
    for name in ("plain", "labelled"):
        run = work / name
        model, ckpt = checkpoint.load_model(checkpoint.checkpoint_dir(run) / "last.pt", device=dev)
        runs[name] = (model, ckpt)
        results[f"{name}_steps"] = ckpt["step"]
    plain, (labelled, lck) = runs["plain"][0], runs["labelled"]
    names = labelled.cfg.labels
    labelling = Labelling.from_json(lck.get("labels"))
    print(f"# steps ({budget} each): plain {results['plain_steps']}, labelled {results['labelled_steps']}; "
          f"labels: {', '.join(names)}")

    # 1. held-out bits
    seq = runs["plain"][1]["train_config"]["seq_len"]
    tracks, pieces = heldout_pieces(prep, lookback=labelled.lookback, seq_len=seq, max_s=10.0 if quick else 20.0)
    own = [labelling.row_of(t.id, 0, t.samples) for t in tracks]
    b_plain = heldout_bits(plain, pieces, None, seq_len=seq, device=dev)
    b_own = heldout_bits(labelled, pieces, own, seq_len=seq, device=dev)
    b_none = heldout_bits(labelled, pieces, [0] * len(tracks), seq_len=seq, device=dev)
    others = [heldout_bits(labelled, pieces, [((r - 1 + k) % len(names)) + 1 for r in own], seq_len=seq, device=dev)
              for k in range(1, len(names))]
    b_wrong = np.mean(others, axis=0)
    held_s = (pieces.shape[1] - labelled.lookback) / SR
    print(f"\n## 1. held-out bits/sample ({held_s:.1f} s from the end of each track)")
    print(f"{'track':<24} {'no labels':>10} {'own label':>10} {'no label':>10} {'other':>10}")
    rows_out = []
    for i, t in enumerate(tracks):
        print(f"{t.name:<24} {b_plain[i]:>10.3f} {b_own[i]:>10.3f} {b_none[i]:>10.3f} {b_wrong[i]:>10.3f}")
        rows_out.append({"track": t.name, "unlabelled_model": float(b_plain[i]), "own_label": float(b_own[i]),
                         "no_label": float(b_none[i]), "other_labels": float(b_wrong[i])})
    print(f"{'mean':<24} {b_plain.mean():>10.3f} {b_own.mean():>10.3f} {b_none.mean():>10.3f} {b_wrong.mean():>10.3f}")
    results["heldout_bits"] = rows_out

    # 2. attribution
    clf, acc = fit_attributor(prep)
    order = [t.name for t in prep.tracks]
    print(f"\n## 2. attribution (classifier on {WINDOW_S:g}-s windows; held-out accuracy per track: "
          + ", ".join(f"{k} {v:.2f}" for k, v in acc.items()) + f"; chance {1 / len(order):.2f})")
    results["classifier_heldout_accuracy"] = acc
    kind = prep.settings.quantization
    idx = {n: order.index(next(t.name for t in prep.tracks if labelling.row_of(t.id, 0, t.samples) == i + 1))
           for i, n in enumerate(names)}
    specs = [n for n in names for _ in range(n_clips)]
    gen_kw = dict(names=names, device=dev, temperature=args.temperature, kind=kind)
    t0 = time.time()
    steered = generate(labelled, len(specs), clip_s, steers=specs, **gen_kw)
    guided = generate(labelled, len(specs), clip_s, steers=specs, guidance=args.guidance, seed=1, **gen_kw)
    unsteered = generate(labelled, len(specs), clip_s, steers=None, seed=2, **gen_kw)
    baseline = generate(plain, len(specs), clip_s, steers=None, seed=3, **{**gen_kw, "names": ()})
    print(f"# generated {4 * len(specs)} clips of {clip_s:g} s in {time.time() - t0:.0f} s", file=sys.stderr)
    print(f"{'steered to':<24} {'plain':>8} {'guided':>8} {'unsteered':>10} {'no labels':>10}")
    attr = []
    un, base_sh = shares(clf, unsteered, len(order)), shares(clf, baseline, len(order))
    for k, name in enumerate(names):
        sl = slice(k * n_clips, (k + 1) * n_clips)
        a = shares(clf, steered[sl], len(order))[idx[name]]
        g = shares(clf, guided[sl], len(order))[idx[name]]
        print(f"{name:<24} {a:>8.2f} {g:>8.2f} {un[idx[name]]:>10.2f} {base_sh[idx[name]]:>10.2f}")
        attr.append({"label": name, "steered": float(a), "guided": float(g), "unsteered": float(un[idx[name]]),
                     "unlabelled_model": float(base_sh[idx[name]])})
    results["attribution"] = {"chance": 1 / len(order), "clips_per_label": n_clips, "seconds": clip_s,
                              "guidance": args.guidance, "temperature": args.temperature, "rows": attr}
    morph_s = 2 * clip_s
    pairs = [(names[i], names[(i + 1) % len(names)]) for i in range(len(names))]
    m_specs = [f'0.25:"{a}",0.75:"{b}"' for a, b in pairs for _ in range(max(1, n_clips // 2))]
    per = max(1, n_clips // 2)
    mo = []
    for how, guidance in (("plain", None), (f"guided (w={args.guidance:g})", args.guidance)):
        morphs = generate(labelled, len(m_specs), morph_s, steers=m_specs, seed=4, guidance=guidance, **gen_kw)
        print(f"morphs, {how} ({morph_s:g} s, A for the first quarter, B for the last): share of A at the start / "
              "B at the end")
        for k, (a, b) in enumerate(pairs):
            clips = morphs[k * per : (k + 1) * per]
            start = shares(clf, clips, len(order), part=(0.0, 0.25))
            end = shares(clf, clips, len(order), part=(0.75, 1.0))
            print(f"  {a} -> {b}: start A {start[idx[a]]:.2f} (B {start[idx[b]]:.2f}), "
                  f"end B {end[idx[b]]:.2f} (A {end[idx[a]]:.2f})")
            mo.append({"from": a, "to": b, "guidance": guidance, "start_from": float(start[idx[a]]),
                       "start_to": float(start[idx[b]]), "end_to": float(end[idx[b]]), "end_from": float(end[idx[a]])})
    results["morphs"] = mo

    # 3. speed
    batch = 512 if dev.type == "cuda" else 64
    n = 4000 if quick else 16000
    rows = labelled.cfg.label_rows
    steer = torch.zeros(rows, device=dev)
    steer[1] = 1.0

    def const(b):
        return steer.expand(b, rows).contiguous()

    def morph(b):  # row 1 -> row 2 over the block
        def labels(pos):
            alpha = torch.linspace(0, 1, pos.numel(), device=dev)
            w = torch.zeros(b, pos.numel(), rows, device=dev)
            w[:, :, 1], w[:, :, 2 % rows] = 1 - alpha, alpha
            return w
        return labels

    print(f"\n## 3. generation speed (samples/s per stream; x unsteered), {n} samples, "
          f"load average {os.getloadavg()[0]:.2f}")
    sp = []
    for b in (1, batch):
        for use_graph in ((False, True) if dev.type == "cuda" else (False,)):
            base_v = speed(labelled, b, n, dev, use_graph=use_graph)
            cases = [("unsteered", base_v),
                     ("unlabelled model", speed(plain, b, n, dev, use_graph=use_graph)),
                     ("steered", speed(labelled, b, n, dev, labels=const(b), use_graph=use_graph)),
                     ("morphing", speed(labelled, b, n, dev, labels=morph(b), use_graph=use_graph)),
                     ("guided", speed(labelled, b, n, dev, labels=const(b), guidance=args.guidance,
                                      use_graph=use_graph))]
            path = "graph" if use_graph else "stream"
            print(f"batch {b:>4} ({path}): " + ", ".join(f"{k} {v:,.0f} ({v / base_v:.2f}x)" for k, v in cases))
            sp += [{"batch": b, "path": path, "case": k, "samples_per_s_per_stream": v, "vs_unsteered": v / base_v}
                   for k, v in cases]
    results["speed"] = sp
    results["load_average"] = os.getloadavg()[0]
    write_json(work / "results.json", results)
    print(f"\nresults: {work / 'results.json'}" + (" (temporary: pass --work to keep)" if tmp else ""))
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
