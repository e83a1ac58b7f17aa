"""Time to quality on a GPU: how long the `gpu` preset takes to reach a validation target.

Given a prepared run folder (`inspire prepare`), trains the `gpu` preset (the paper's 3-tier
dim-1024 model, batch 256 x 1024) from scratch for --minutes in each precision asked for (tf32
matmuls, and bf16 autocast), validating every --val-every steps on the run's validation
stretch, and prints:

- the validation curve (wall seconds since the start, step, bits/sample);
- the wall time at which validation first reached --target (by default 6.353 bits/sample: what
  `small` reached after 10 minutes of training on the 2-core development CPU, on the dev corpus);
- training throughput (audio samples per second over the whole session, validation included);
- bf16 against tf32 at equal steps (quality), when both ran;
- the story's 72 hours on a K80, in this GPU's hours. The K80 figure is an ESTIMATE, not a
  measurement (no K80 here): one GK210 die (what a framework sees as one K80 GPU) at its 4.37
  TFLOP/s fp32 boost peak, at a generous 50 % of it on this model's arithmetic.

    python bench/bench_gpu_reach.py RUN_DIR --minutes 3 --precisions tf32,bf16

Each precision trains in RUN_DIR/reach-<precision>/ (a copy of the prepared data; started over
each time). Asserts nothing; prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

from bench_generate import flops_per_sample  # bench/ is the script's folder
from inspire.config import get_preset
from inspire.samplernn.train import train

K80_TFLOPS = 4.37  # one GK210 die, fp32, boost clock
K80_SHARE = 0.5  # assumed share of that peak on SampleRNN's GEMMs (generous to the K80)
STORY_HOURS = 72.0


def curve(run: Path) -> list[tuple[float, int, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [(r["elapsed_s"], r["step"], r["val_bits"]) for r in rows if "val_bits" in r]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, help="a run folder prepared with `inspire prepare`")
    ap.add_argument("--target", type=float, default=6.353, help="validation bits/sample to reach")
    ap.add_argument("--minutes", type=float, default=3.0, help="training minutes per precision")
    ap.add_argument("--precisions", default="tf32,bf16", help="tf32 and/or bf16, comma-separated")
    ap.add_argument("--val-every", type=int, default=25)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--preset", default="gpu", help="another preset (tiny: checks the script on a CPU)")
    args = ap.parse_args()
    preset = get_preset(args.preset)
    batch, seq = preset.train.batch_size, preset.train.seq_len
    fps = flops_per_sample(preset.model)
    gpu = torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if gpu else f"CPU ({os.cpu_count()} cores)"
    print(f"# {name}; torch {torch.__version__}; load average {os.getloadavg()[0]:.2f}; "
          f"{args.preset} preset: batch {batch} x {seq}, {fps / 1e6:.1f} MFLOP forward per sample", flush=True)
    results = {}
    for precision in args.precisions.split(","):
        run = args.run_dir / f"reach-{precision}"
        if run.exists():
            shutil.rmtree(run)
        shutil.copytree(args.run_dir / "data", run / "data")
        over = {"val_every": args.val_every, "checkpoint_every": 10**9,
                "autocast": "bf16" if precision == "bf16" else "off"}
        t0 = time.time()
        train(run, preset=args.preset, train_overrides=over, max_minutes=args.minutes, device=args.device,
              previews=False, progress=False)
        wall = time.time() - t0
        points = curve(run)
        results[precision] = points
        print(f"\n## {precision}: {wall:.0f} s in all (start-up included)")
        print(f"{'seconds':>8} {'step':>6} {'val bits':>9}")
        for elapsed, step, bits in points:
            print(f"{elapsed:>8.1f} {step:>6} {bits:>9.3f}")
        hit = next(((e, s, b) for e, s, b in points if b <= args.target), None)
        steps, elapsed = points[-1][1], points[-1][0]
        sps = steps * batch * seq / elapsed
        print(f"throughput: {sps:,.0f} audio samples/s over the session (validation included), "
              f"{3 * fps * sps / 1e12:.1f} TFLOP/s")
        if hit:
            print(f"reached {args.target} bits/sample at {hit[0]:.1f} s (step {hit[1]}, {hit[2]:.3f})")
        else:
            print(f"did not reach {args.target} bits/sample in {elapsed:.0f} s (best {min(b for *_, b in points):.3f})")
        k80_sps = K80_TFLOPS * 1e12 * K80_SHARE / (3 * fps)
        hours = STORY_HOURS * k80_sps / sps
        print(f"the story's {STORY_HOURS:g} K80-hours (ESTIMATED at {k80_sps:,.0f} samples/s on a K80): "
              f"{hours:.2f} h here ({hours * 60:.0f} min)")
    if len(results) == 2 and all(results.values()):
        a, b = (dict((s, v) for _, s, v in results[p]) for p in ("tf32", "bf16"))
        common = sorted(set(a) & set(b))
        if common:
            print("\n## bf16 against tf32 at equal steps (validation bits/sample)")
            for s in sorted(set(common[:: max(1, len(common) // 8)]) | {common[-1]}):
                print(f"step {s:>5}: tf32 {a[s]:.3f}  bf16 {b[s]:.3f}  ({b[s] - a[s]:+.3f})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
