#!/usr/bin/env bash
# Learning-rate-free optax baselines on the evaluation suite (one run, tuned Adam in it).
# On a lent GPU machine, from the repository root, with OUT set and the wheels the image
# lacks (dm-haiku, jmp, ml_collections, mnist1d) in .whl/:  bash results/meta_train/lr_free_baselines/run_on_device.sh
# On any machine with the venv: the evaluate command below, with --workdir of your choice.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -c "import jax, optax; print(jax.__version__, optax.__version__, jax.devices())"
timeout 500 python3 -m meta_train.evaluate --config=configs/evaluate.py --workdir=$OUT/eval_lrfree \
  "--config.optimizers=('pretrained','optax:adam','optax:contrib.prodigy:1.0','optax:contrib.dog:1.0','optax:contrib.dadapt_adamw:1.0')" 2>&1 \
  | grep -v "^I1\|^W1" | tail -40
ls $OUT/eval_lrfree
