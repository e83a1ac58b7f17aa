"""Benchmark training: throughput (audio samples per second) and, with --quality, what 10 minutes
of training on real music reaches. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_train.py                 # throughput, ~2 min on 2 cores
    .venv/bin/python bench/bench_train.py --quality       # + 10 min of `small` on ../shared/corpora/dev
    .venv/bin/python bench/bench_train.py --loop          # + the whole loop (`inspire train`) on the demo album

Throughput: `small` at batch 32 and `standard` at batch 128, one truncated-BPTT window of 1024
samples per step (forward, backward, gradient clipping, Adam), on random classes (speed does not
depend on the data), with this machine's fp32 GEMM peak measured in the same run and the
achieved fraction of it (FLOPs counted as 3x the forward multiply-adds x 2).
Reference points (the issue's measurements of the 2017 public PyTorch SampleRNN, same
architecture, this kind of machine): 8,160 samples/s for dim 512 at batch 32, 3,008 for dim 1024
at batch 128. The 2017 layout also spends levels x frame x dim multiply-adds per sample on its
embedding->convolution input layer, which the tap tables replace; FLOPs here count our model.

Loop: `train()` itself (data batches, loss, step, logging; no validation, checkpoints or previews
inside the timed rows) for `tiny` and `small` on the synthetic demo album: the median of the
logged samples/s after the first row (warm-up). What the loop adds to the model's own speed.

Quality: prepares the dev corpus (4 songs, 798 s; one song held out for validation), trains
`small` for `--minutes` of wall time and prints validation bits per sample next to the
memoryless baseline (the entropy of the quantized values). Reference: 5.88 bits after 10 minutes
for the 2017 model on the same songs (memoryless 6.9, linear quantization). Bits depend on the
quantization (mu-law spreads music over more levels: a higher baseline), so compare the distance
below the baseline, or run with --quantization linear --normalize none (the reference's set-up).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from inspire.config import ModelConfig, get_preset
from inspire.samplernn.model import SampleRNN

sys.path.insert(0, str(Path(__file__).parent))
from bench_generate import flops_per_sample, gemm_peak  # noqa: E402  (one FLOP count, one peak)

REFERENCE = {"small": 8160.0, "standard": 3008.0}
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "dev"


def train_throughput(name: str, *, batch: int, steps: int, warmup: int = 2) -> tuple[float, ModelConfig]:
    p = get_preset(name)
    torch.manual_seed(0)
    model = SampleRNN(p.model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    seq, lb = p.train.seq_len, model.lookback
    x = torch.randint(0, p.model.levels, (batch, lb + seq))
    state = None
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, p.model.levels), x[:, lb:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state = [s.detach() for s in state]
    dt = time.perf_counter() - t0
    return batch * seq * steps / dt, p.model


def loop_throughput(name: str, *, steps: int, device: str = "cpu", log_every: int = 5) -> float:
    from inspire.audio.dataset import PrepareSettings, prepare
    from inspire.audio.synth import write_album
    from inspire.samplernn.train import train

    with tempfile.TemporaryDirectory() as tmp:
        album = write_album(Path(tmp) / "album")
        run = Path(tmp) / "run"
        prepare(album, run, PrepareSettings(), progress=False)
        train(run, preset=name, max_steps=steps, previews=False, progress=False, log_every=log_every, device=device,
              train_overrides={"val_every": 10**9, "checkpoint_every": 10**9})
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        rates = sorted(r["samples_per_s"] for r in rows[1:-1])  # first row: the warm-up; last: the final save
        return rates[len(rates) // 2]


def quality(minutes: float, quantization: str, normalize: str) -> None:
    from inspire.audio.dataset import PrepareSettings, prepare
    from inspire.samplernn.train import train

    if not CORPUS.is_dir():
        print(f"quality: {CORPUS} not found; skipping the quality run")
        return
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        prepare([CORPUS], run, PrepareSettings(quantization=quantization, normalize=normalize), progress=False)
        t0 = time.monotonic()
        train(run, preset="small", max_minutes=minutes, previews=False, progress=False, log_every=20,
              train_overrides={"val_every": 500, "checkpoint_every": 10**9})
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        val = [r for r in rows if "val_bits" in r]
        wall = time.monotonic() - t0
        print(f"\nquality: small, {quantization} quantization, normalize {normalize}, {minutes:g} min wall "
              f"({wall:.0f} s incl. validation), {rows[-1]['step']} steps")
        for r in val:
            print(f"  step {r['step']:>5}  {r['elapsed_s']:7.0f} s  validation {r['val_bits']:.3f} bits/sample")
        print(f"  final validation {val[-1]['val_bits']:.3f} bits/sample; memoryless baseline "
              f"{val[-1]['baseline_bits']:.3f}; 2017 reference after 10 min: 5.88 (baseline 6.9)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per configuration")
    ap.add_argument("--quality", action="store_true", help="also train small on the dev corpus")
    ap.add_argument("--minutes", type=float, default=10.0, help="wall-clock minutes for the quality run")
    ap.add_argument("--quantization", default="mu-law", choices=["mu-law", "linear"],
                    help="how the corpus is quantized (the 2017 reference quantized linearly)")
    ap.add_argument("--normalize", default="peak", choices=["peak", "none"],
                    help="per-track level normalisation (the 2017 reference used the files' own levels)")
    ap.add_argument("--loop", action="store_true", help="also time the whole training loop (tiny and small)")
    ap.add_argument("--loop-steps", type=int, default=40, help="steps per configuration of the loop timing")
    ap.add_argument("--device", default="cpu", help="device of the loop timing (the throughput part runs on the CPU)")
    ap.add_argument("--skip-throughput", action="store_true", help="only the quality run")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    peak = gemm_peak()
    print(f"fp32 GEMM peak (torch.mm): {peak:.0f} GFLOP/s")
    for name, batch in () if args.skip_throughput else (("small", 32), ("standard", 128)):
        rate, cfg = train_throughput(name, batch=batch, steps=args.steps)
        gflops = rate * 3 * flops_per_sample(cfg) / 1e9
        print(f"train {name:<8} batch {batch:>3}: {rate:8.0f} samples/s  ({rate / REFERENCE[name]:.1f}x the 2017 "
              f"reference {REFERENCE[name]:.0f})  {gflops:.0f} GFLOP/s = {100 * gflops / peak:.0f} % of peak")
    if args.loop:
        for name in ("tiny", "small"):
            rate = loop_throughput(name, steps=args.loop_steps, device=args.device)
            print(f"train() loop {name:<6} on {args.device}: {rate:8.0f} samples/s (median of logged rows)")
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.quality:
        quality(args.minutes, args.quantization, args.normalize)


if __name__ == "__main__":
    main()
