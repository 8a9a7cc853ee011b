#!/usr/bin/env bash
# Two short from-scratch imitation runs with config.log_balance on a lent GPU machine
# (one on its GPU, one on its 16 CPU cores), each stopped after $SECONDS_PER_RUN seconds:
#   bash results/imitate/experiments/device_log_balance.sh OUT_DIR
# Packages the GPU image lacks come as wheels in .whl/ (see benchmarks/gpu.sh).
set -u
out=${1:-/tmp/device_out}; limit=${SECONDS_PER_RUN:-450}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
args=(--config=configs/imitate.py --config.log_balance=True --config.checkpoint_every=100)
timeout "$limit" python3 -m meta_train.imitate "${args[@]}" --workdir=/tmp/lb_gpu \
  > "$out/lb_gpu.log" 2>&1 &
JAX_PLATFORMS=cpu timeout "$limit" python3 -m meta_train.imitate "${args[@]}" \
  --config.direction_readout_penalty=0.3 "--config.readout_penalty_exempt=('lamb', 'lars', 'adafactor')" \
  --workdir=/tmp/lb_pen_cpu > "$out/lb_pen_cpu.log" 2>&1 &
wait
for run in lb_gpu lb_pen_cpu; do
  tar czf "$out/$run.tgz" -C /tmp "$run"
done
ls -la "$out"
