"""Benchmark the real-time engine: can one stream be played, on ONE thread?

For each preset (random-init weights: speed does not depend on training), one stream generated
in blocks of 20 ms (320 samples at 16 kHz), as `inspire play` makes them:
  numba-fp32 / numba-int8   the compiled engine (inspire.samplernn.engine)
  torch-fp32                the portable path (FastStepper in a Python loop): the figure before
x real time (audio seconds per wall second), p50 and p99 wall time per 20 ms block (an instrument
cares about the worst block), and the achieved GFLOP/s against this machine's GEMM peak measured
in the same run. Then batch-64 throughput of `inspire generate`'s batched path (the torch stepper,
which generate keeps for large batches) beside the engine's at batch 64, and the knob-to-sound
latency of a headless Session (set() to the first sample played with it, paced like a card).

One thread (torch.set_num_threads(1), NUMBA_NUM_THREADS=1), so the other core stays free for the
audio and the UI. Prints figures; asserts nothing. The load average is printed at the start and
end: other processes on these cores make every figure lower.

    .venv/bin/python bench/bench_engine.py                      # ~2 min on 2 cores
    .venv/bin/python bench/bench_engine.py --presets small --seconds 2

Measured on the 2-core dev machine (AMD EPYC, Zen 5; load average 3.4-3.8 from other jobs,
fp32 GEMM peak 89 GFLOP/s on one thread in the same run), x real time, p50 / p99 per 20 ms block:
    small     numba-int8 2.82x (6.9 / 12.0 ms)   numba-fp32 0.56x   torch-fp32 (before) 0.46x
    standard  numba-int8 0.77x (24.6 / 36.6 ms)  numba-fp32 0.17x   torch-fp32 (before) 0.13x
    live      numba-int8 5.33x (2.6 / 9.9 ms)    numba-fp32 2.73x (5.5 / 17.2 ms)
    batch 64 (generate's torch path, unchanged): small 2.89x, standard 0.80x
    knob to sound (live, int8, 80 ms ahead): median 92 ms, max 98 ms, plus the card's latency
fp32 is memory-bound (small's fp32 weights, ~42 MB, stream from DRAM every few samples); int8
quarters that. Standard stays under real time: its bottom tier's upsampling alone reads 16 MB
of int8 weights every 16 samples.
Quality of `live` against `small` after 10 minutes of training on the dev corpus (muldjord,
same machine and load, one thread each, side by side): live 6.65 bits/sample at step 349,
small 6.79 at step 137 (memoryless baseline 7.53).
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402 - after the thread count is fixed for numba
import platform  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_generate import flops_per_sample, gemm_peak  # noqa: E402 (bench/ is the script's folder)
from inspire.config import PRESETS, get_preset  # noqa: E402
from inspire.samplernn import controls  # noqa: E402
from inspire.samplernn import engine as eng  # noqa: E402
from inspire.samplernn.model import SampleRNN  # noqa: E402
from inspire.samplernn.sample import FastStepper, stream  # noqa: E402

SR = 16000
BLOCK = 320  # 20 ms


def blocks(engine: eng.Engine, seconds: float) -> np.ndarray:
    """Wall seconds of each 20 ms block of one stream (after a warm-up second)."""
    u = eng.Uniforms([1])
    temps = np.ones((BLOCK, 1), np.float32)
    for _ in range(max(2, int(0.25 * SR / BLOCK))):  # compile, warm the caches
        engine.generate(temps, u.next(BLOCK))
    times = []
    for _ in range(max(5, int(seconds * SR / BLOCK))):
        start = time.perf_counter()
        engine.generate(temps, u.next(BLOCK))
        times.append(time.perf_counter() - start)
    return np.array(times)


def batch_speed(model, batch: int, n: int, *, mode: str) -> float:
    """Aggregate audio seconds per wall second at `batch` streams."""
    if mode == "torch":
        kw = dict(temperature=torch.ones(batch), seeds=list(range(batch)), stepper=FastStepper(model), block=n)
        for _ in stream(model, n_samples=model.lookback, **kw):
            pass
        start = time.perf_counter()
        for _ in stream(model, n_samples=n, **kw):
            pass
    else:
        e = eng.Engine(model, streams=batch, backend="numba")
        u, temps = eng.Uniforms(list(range(batch))), np.ones((n, batch), np.float32)
        e.generate(temps[: model.lookback], u.next(model.lookback))
        start = time.perf_counter()
        e.generate(temps, u.next(n))
    return batch * n / SR / (time.perf_counter() - start)


def knob_latency(model, *, trials: int = 8, ahead: float = 0.08) -> list[float]:
    """Seconds from Session.set() to the first sample played with it, the reader paced in real
    time in 20 ms reads (like a sound card's callback; the card's own latency comes on top)."""
    e = eng.Engine(model, backend="numba", precision="int8")
    tl = controls.Timeline("1.0", sample_rate=SR)
    s = eng.Session(e, seed=0, timeline=tl, decode=lambda c: c.astype(np.float32), sample_rate=SR, ahead=ahead)
    s.start()
    s.wait_ready()
    read, asked, results = 0, [], []
    period = BLOCK / SR
    next_t = time.monotonic()

    def turn_knobs():
        for i in range(trials):
            time.sleep(0.3 + 0.0137 * i)  # not in step with the blocks
            asked.append((time.monotonic(), len(tl.events)))
            s.set("temperature", 1.0 + 0.01 * (i + 1))

    knob = threading.Thread(target=turn_knobs)
    knob.start()
    pending = 0
    while knob.is_alive() or pending < trials:
        s.read(BLOCK)
        read += BLOCK
        now = time.monotonic()
        while pending < len(asked) and pending < len(tl.events) and tl.events[pending]["at"] < read:
            results.append(now - asked[pending][0])  # the block holding the change is being played now
            pending += 1
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))
    s.stop()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default=",".join(p for p in ("tiny", "live", "small", "standard") if p in PRESETS))
    ap.add_argument("--seconds", type=float, default=3.0, help="audio per measurement (less for slow paths)")
    ap.add_argument("--no-batch", action="store_true", help="skip the batch-64 figures")
    args = ap.parse_args()
    torch.manual_seed(0)
    cores = os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, numba {__import__('numba').__version__}, {cores} cores, "
          f"{platform.processor() or platform.machine()}, load average {load:.2f} at start")
    peak_all = gemm_peak()
    torch.set_num_threads(1)
    peak = gemm_peak()
    print(f"fp32 GEMM peak (2048^3 torch.mm, best of 10): {peak:.0f} GFLOP/s on 1 thread, {peak_all:.0f} on {cores}")
    print("one stream, ONE thread, 20 ms blocks (320 samples):\n")
    print(f"{'preset':<9} {'engine':<11} {'x real time':>11} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'GFLOP/s':>8} {'of peak':>7}")
    models = {}
    with torch.inference_mode():
        for name in args.presets.split(","):
            cfg = get_preset(name).model
            model = models[name] = SampleRNN(cfg).fold_weight_norm().eval()
            fps = flops_per_sample(cfg)
            for label, backend, precision in (("numba-fp32", "numba", "fp32"), ("numba-int8", "numba", "int8"),
                                              ("torch-fp32", "torch", "fp32")):
                secs = args.seconds if backend == "numba" else min(args.seconds, 1.0)
                t = blocks(eng.Engine(model, backend=backend, precision=precision), secs)
                rt = BLOCK / SR / t.mean()
                gflops = rt * SR * fps / 1e9
                p50, p99 = np.median(t) * 1e3, np.percentile(t, 99) * 1e3
                print(f"{name:<9} {label:<11} {rt:>10.2f}x {p50:>7.1f} {p99:>7.1f} "
                      f"{t.max() * 1e3:>7.1f} {gflops:>8.1f} {gflops / peak:>6.0%}", flush=True)
            print(f"{'':<9} ({fps / 1e6:.2f} MFLOP per sample: real time needs {fps * SR / 1e9:.1f} GFLOP/s)")
        if not args.no_batch:
            print("\nbatch 64, ONE thread (aggregate x real time): inspire generate's batched path, and the engine")
            for name in (n for n in ("small", "standard") if n in models):
                m = models[name]
                n = 256
                print(f"{name:<9} torch-fp32 (generate, unchanged) {batch_speed(m, 64, n, mode='torch'):6.2f}x   "
                      f"numba-fp32 {batch_speed(m, 64, n // 4, mode='numba'):6.2f}x", flush=True)
        played = next((n for n in ("live", "small") if n in models), None)
        if played:
            lat = knob_latency(models[played])
            print(f"\nknob to sound ({played}, numba-int8, 80 ms ahead, paced reader; the card's latency comes on "
                  f"top): median {np.median(lat) * 1e3:.0f} ms, max {max(lat) * 1e3:.0f} ms over {len(lat)} turns")
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average {load_end:.2f} at the end (other processes share these cores)")


if __name__ == "__main__":
    main()
