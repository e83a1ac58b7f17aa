#!/usr/bin/env bash
# Issue 16's checks on a machine with a CUDA GPU, in one go (about 9 minutes on one H200):
# time to quality (tf32 and bf16), DDP with two processes (nccl forced, then the default choice),
# that GPU checkpoint continued on the CPU, and the test suite.
#
#   bash bench/gpu_checks.sh RUN_DIR      # RUN_DIR: prepared with `inspire prepare` (the dev corpus)
#
# Each step has its own time limit, so one that hangs does not cost the others. Prints figures;
# asserts nothing (the suite's own result is its last line).
set -u
run=${1:?usage: bash bench/gpu_checks.sh RUN_DIR}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
cp -r "$run/data" "$work/data"
echo "=== time to quality"
(cd "$here" && timeout 330 python3 bench_gpu_reach.py "$work" --minutes 2 --precisions tf32,bf16 --val-every 25)
for backend in nccl ""; do
  echo "=== DDP, two processes, backend ${backend:-chosen by inspire}"
  rm -rf "$work/ddp" && mkdir -p "$work/ddp" && cp -r "$run/data" "$work/ddp/data"
  INSPIRE_DIST_BACKEND=$backend timeout 100 python3 -m torch.distributed.run --nproc-per-node=2 \
    -m inspire train "$work/ddp" --preset gpu --max-steps 20 --no-previews --quiet 2>&1 | tail -8
done
echo "=== the GPU checkpoint continued on the CPU"
timeout 90 python3 -m inspire train "$work/ddp" --device cpu --max-steps 21 --no-previews --quiet 2>&1 | tail -3
echo "=== the suite"
(cd "$here/.." && timeout 200 python3 -m pytest -q -x -n 12 -p no:cacheprovider tests 2>&1 | tail -15)
rm -rf "$work"
