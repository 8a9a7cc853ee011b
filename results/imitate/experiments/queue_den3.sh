#!/bin/sh
# 500 steps at 5e-4 from imitate_ph's step 5000 with a 3x denominator hint: does the blend move?
N=ph_den3
cd "$(dirname "$0")/../../.."
PY=.venv/bin/python
A="--config=configs/imitate.py --config.executor.sign_gain=abs --config.executor.normalizer_constant=scaled --config.executor.rule_node_degree=True --config.warmup_gradient=True --config.standardize_decay_features=True --config.preconditioner_hint_weight=1.0 --config.denominator_hint_weight=3.0"
R="--config.rules.adam.b2=('log1m', 0.95, 0.9995)"
C="--config.executor.clock_slopes=('node',)"
exec > runs/imitate_$N.log 2>&1
date
mkdir -p runs/imitate_$N/checkpoints && cp -r runs/imitate_ph/checkpoints/5000 runs/imitate_$N/checkpoints/
$PY -m meta_train.imitate $A "$R" "$C" --workdir=runs/imitate_$N --config.num_steps=5500 --config.learning_rate=5e-4 "--config.family.batch_sizes=(32, 64, 128)" "--config.warmup_choices=(0, 160, 1000)" --config.checkpoint_every=100
date
$PY -m meta_train.evaluate_imitation --config=configs/evaluate_imitation.py \
  --config.seed=0 --workdir=runs/eval_${N}_seed0 --checkpoint=runs/imitate_$N/checkpoints
date
