"""GPU figures: training and generation throughput against the card's own measured peaks.

Run on a machine with a CUDA GPU (on a CPU it runs tiny sizes, to check the script itself):

    python bench/bench_gpu.py                 # all sections, ~5 min on one H200
    python bench/bench_gpu.py --only gen      # one section: peak, train, gen

Prints, with the GPU's name and the fp32 / tf32 / bf16 GEMM peaks measured in the same run:
- train: one teacher-forced window per step (forward, backward, grad clip, Adam) of the
  `standard` preset at several batch sizes, fp32 (tf32 matmuls) and bf16 autocast: audio samples
  per second and the share of the matching GEMM peak (model FLOPs counted analytically, 3x the
  forward for forward + backward);
- gen: aggregate real-time factor (audio seconds per wall second, summed over streams) of
  `standard` through `inspire.samplernn.graph.stream` (one CUDA graph per top-tier frame) at
  batch 1 ... the largest that fits, and batch 1 eagerly (sample.stream) for comparison.
Random-init weights: speed does not depend on training. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from bench_generate import flops_per_sample  # bench/ is the script's folder
from inspire.config import ModelConfig, get_preset
from inspire.samplernn import graph, sample
from inspire.samplernn.model import SampleRNN

SR = 16000


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def gemm_peak(dev: torch.device, dtype: torch.dtype, *, tf32: bool = False, n: int = 8192, reps: int = 10) -> float:
    """TFLOP/s of a large square matmul on random data (median of `reps` after warm-up)."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        sync(dev)
        t = time.perf_counter()
        a @ b
        sync(dev)
        times.append(time.perf_counter() - t)
    torch.backends.cuda.matmul.allow_tf32 = False
    return 2 * n**3 / sorted(times)[len(times) // 2] / 1e12


def train_speed(cfg: ModelConfig, batch: int, seq_len: int, dev: torch.device, *, bf16: bool, steps: int) -> float:
    """Audio samples per second of training steps (one window each, state carried)."""
    torch.manual_seed(0)
    model = SampleRNN(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lb = model.lookback
    x = torch.randint(0, cfg.levels, (batch, lb + seq_len), device=dev)
    state = None

    def step():
        nonlocal state
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            logits, state = model(x, state)
            loss = F.cross_entropy(logits.reshape(-1, cfg.levels).float(), x[:, lb:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state = [s.detach() for s in state]

    for _ in range(3):
        step()
    sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(dev)
    return steps * batch * seq_len / (time.perf_counter() - t)


def gen_speed(cfg: ModelConfig, batch: int, n_samples: int, dev: torch.device, *, use_graph: bool) -> float:
    """Aggregate real-time factor of `batch` streams (after a warm-up stream of one block)."""
    torch.manual_seed(0)
    model = SampleRNN(cfg).eval().fold_weight_norm().to(dev)
    temps = torch.full((batch,), 1.0, device=dev)
    seeds = list(range(batch))
    run = (lambda n: graph.stream(model, n_samples=n, temperature=temps, seeds=seeds, block=n)) if use_graph else (
        lambda n: sample.stream(model, n_samples=n, temperature=temps, seeds=seeds, block=n))
    for _ in run(model.lookback * 2):
        pass
    sync(dev)
    t = time.perf_counter()
    for _ in run(n_samples):
        pass
    sync(dev)
    return batch * n_samples / SR / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["peak", "train", "gen"], help="run one section")
    ap.add_argument("--preset", default="standard")
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = dev.type == "cuda"
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(dev) if gpu else f"CPU ({os.cpu_count()} cores)"
    print(f"device: {name}; torch {torch.__version__}; load average {os.getloadavg()[0]:.2f}", flush=True)
    cfg = get_preset(args.preset).model
    fps = flops_per_sample(cfg)
    print(f"model: {args.preset} {cfg.frame_sizes} dim {cfg.dim}: {fps / 1e6:.1f} MFLOP forward per sample", flush=True)

    peaks = {}
    if args.only in (None, "peak", "train"):
        n = 8192 if gpu else 1024
        peaks = {
            "fp32": gemm_peak(dev, torch.float32, n=n),
            "tf32": gemm_peak(dev, torch.float32, tf32=True, n=n) if gpu else None,
            "bf16": gemm_peak(dev, torch.bfloat16, n=n),
        }
        print("GEMM peak TFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in peaks.items() if v), flush=True)

    if args.only in (None, "train"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        batches = [64, 128, 256, 512] if gpu else [4]
        seq_len = 1024 if gpu else 256
        print(f"\ntrain ({args.preset}, window {seq_len} samples; 3x forward FLOPs per sample)")
        print(f"{'batch':>6} {'precision':>9} {'samples/s':>12} {'TFLOP/s':>8} {'of peak':>8}")
        for b in batches:
            for bf16 in (False, True):
                try:
                    sps = train_speed(cfg, b, seq_len, dev, bf16=bf16, steps=10 if gpu else 2)
                except torch.OutOfMemoryError:
                    print(f"{b:>6} {'bf16' if bf16 else 'tf32':>9} {'out of memory':>12}")
                    torch.cuda.empty_cache()
                    continue
                tflops = 3 * fps * sps / 1e12
                peak = peaks.get("bf16" if bf16 else ("tf32" if gpu else "fp32"))
                share = f"{100 * tflops / peak:.1f} %" if peak else "-"
                precision = "bf16" if bf16 else ("tf32" if gpu else "fp32")
                print(f"{b:>6} {precision:>9} {sps:>12,.0f} {tflops:>8.2f} {share:>8}", flush=True)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    if args.only in (None, "gen"):
        print(f"\ngeneration ({args.preset}, fp32, aggregate x real time)")
        print(f"{'batch':>6} {'path':>12} {'x real time':>12} {'per stream':>11}")
        n = SR * 2 if gpu else 512
        big = [(b, True) for b in (64, 256, 1024, 4096, 16384, 65536)] if gpu else [(8, True)]
        rows = [(1, False), (1, True)] + big
        for b, use_graph in rows:
            try:
                rtf = gen_speed(cfg, b, n if b < 4096 else n // 4, dev, use_graph=use_graph)
            except torch.OutOfMemoryError:
                print(f"{b:>6} {'graph' if use_graph else 'eager':>12} {'out of memory':>12}")
                torch.cuda.empty_cache()
                break
            print(f"{b:>6} {'cuda graph' if use_graph and gpu else ('periods' if use_graph else 'eager'):>12} "
                  f"{rtf:>12.2f} {rtf / b:>11.3f}", flush=True)


if __name__ == "__main__":
    main()
