#!/usr/bin/env bash
# The GPU benchmark, as one prepared script for a lent accelerator machine:
#   bash benchmarks/gpu.sh OUT_DIR
# Packages the GPU image lacks (dm-haiku, jmp, ml_collections) come as wheels in .whl/
# (see README "Speed"); the image's own jax, optax and orbax are used.
set -euo pipefail
out=${1:-/tmp/gpu_bench}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import jax, optax; print(jax.__version__, optax.__version__, jax.devices())" \
  | tee -a "$out/gpu.txt"
python3 -m benchmarks.executor_speed --sizes=1e7,1e8,5e8 --repeats=21 --warmup=3 \
  --modes=update,step --out="$out/executor_speed_gpu.md" 2>&1 | tee "$out/executor_speed.log"
python3 -m benchmarks.executor_ablation --size=1e8 --trace \
  --out="$out/executor_ablation_gpu.md" 2>&1 | tee "$out/executor_ablation.log"
# The shipped imitation executor's output forms (normalizer_constant='scaled', sign_gain='abs').
python3 -m benchmarks.executor_speed --sizes=1e7,1e8 --repeats=15 --warmup=3 \
  --modes=update,step --architecture_of=shipped:executor \
  --out="$out/executor_speed_gpu_shipped_executor_forms.md" 2>&1 | tee "$out/executor_speed_shipped.log"
# Meta-training throughput at two population sizes (one JSON line each).
for p in 8 64; do
  python3 -m benchmarks.meta_train_speed --json --population=$p --repeats=3 \
    | grep '^{' | tee -a "$out/meta_train_speed_gpu.jsonl"
done
