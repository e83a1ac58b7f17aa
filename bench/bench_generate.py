"""Benchmark generation speed: audio seconds generated per wall second (aggregate over a batch).

For the `standard` (frame_sizes 16,4, dim 1024, GRU) and `small` (16,4, dim 512) presets with
random-init weights (speed does not depend on training), at batch 1 and batch 64, through
`inspire.samplernn.sample.stream` exactly as `inspire generate` runs it: the fp32 fast stepper, the
reference `model.step` loop, and the opt-in int8 stepper, with one CPU thread and with all
(`inspire generate` measures both at the start of a job and keeps the faster: on a CPU shared
with other processes several OpenMP threads can be many times slower than one). Also measures this machine's fp32
GEMM peak in the same run (a large torch.mm) and reports the achieved fraction of it, counting
the model's FLOPs per generated sample. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_generate.py            # ~2 min on 2 cores
    .venv/bin/python bench/bench_generate.py --quick    # fewer samples, fp32 fast path only

Reference point: the 2017 public PyTorch SampleRNN (standard architecture) manages 0.015x real
time at batch 1 and 0.078x at batch 16 on this kind of machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from inspire.config import ModelConfig, get_preset
from inspire.samplernn.model import SampleRNN
from inspire.samplernn.sample import FastStepper, stream

SR = 16000


def flops_per_sample(cfg: ModelConfig) -> float:
    """Multiply-adds x 2 per generated sample: frame tiers (input, RNN, upsample) amortised over
    their frames, plus the sample-level MLP (the tap-table sum is adds only, ignored)."""
    gates = 3 if cfg.rnn == "gru" else 4
    ratios = (cfg.tier_frames[0],) + tuple(cfg.frame_sizes[1:])
    total = 0.0
    for frame, ratio in zip(cfg.tier_frames, ratios, strict=True):
        rnn = cfg.rnn_layers * 2 * (2 * gates * cfg.dim * cfg.dim)
        per_frame = 2 * frame * cfg.dim + rnn + 2 * cfg.dim * ratio * cfg.dim
        total += per_frame / frame
    return total + 2 * cfg.dim * cfg.dim + 2 * cfg.dim * cfg.levels


def gemm_peak(n: int = 2048, reps: int = 10) -> float:
    """fp32 GFLOP/s of a large square torch.mm (best of `reps`)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def speed(model: SampleRNN, batch: int, n_samples: int, *, mode: str) -> float:
    """Audio seconds per wall second, aggregate over the batch (after a warm-up of one top frame)."""
    kw = dict(temperature=torch.full((batch,), 1.0), seeds=list(range(batch)), block=n_samples)
    if mode == "reference":
        kw["fast"] = False
    else:
        kw["stepper"] = FastStepper(model, int8=(mode == "int8"))
    for _ in stream(model, n_samples=model.lookback, **kw):
        pass
    t = time.perf_counter()
    for _ in stream(model, n_samples=n_samples, **kw):
        pass
    return batch * n_samples / SR / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer samples, fp32 fast path only")
    ap.add_argument("--presets", default="standard,small", help="comma-separated preset names")
    ap.add_argument("--batches", default="1,64", help="comma-separated batch sizes")
    ap.add_argument("--threads", default=f"1,{torch.get_num_threads()}", help="comma-separated CPU thread counts")
    args = ap.parse_args()
    torch.manual_seed(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, load average {load:.2f} at start")
    peak = gemm_peak()
    print(f"fp32 GEMM peak (2048^3 torch.mm, best of 10, {torch.get_num_threads()} threads): {peak:.1f} GFLOP/s\n")
    modes = ["fast"] if args.quick else ["fast", "reference", "int8"]
    print(f"{'preset':<9} {'batch':>5} {'threads':>7} {'path':<9} {'x real time':>11} {'GFLOP/s':>8} {'of peak':>7}")
    with torch.inference_mode():
        for name in args.presets.split(","):
            cfg = get_preset(name).model
            model = SampleRNN(cfg).fold_weight_norm().eval()
            fps = flops_per_sample(cfg)
            for batch in (int(b) for b in args.batches.split(",")):
                for threads in sorted({int(t) for t in args.threads.split(",")}):
                    torch.set_num_threads(threads)
                    for mode in modes if threads == 1 else [m for m in modes if m != "reference"]:
                        steps = (1024 if batch == 1 else 256) // (4 if args.quick else 1)
                        if mode == "reference":
                            steps //= 2
                        rt = speed(model, batch, steps, mode=mode)
                        gflops = rt * SR * fps / 1e9
                        print(f"{name:<9} {batch:>5} {threads:>7} {mode:<9} {rt:>10.3f}x {gflops:>8.1f} "
                              f"{gflops / peak:>6.0%}", flush=True)
            print(f"{'':<9} ({fps / 1e6:.2f} MFLOP per sample: real time needs {fps * SR / 1e9:.1f} GFLOP/s)")
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average {load_end:.2f} at the end (other processes share these cores)")


if __name__ == "__main__":
    main()
