#!/bin/sh
# usage: queue_imitate.sh NAME CLOCK_SLOPES HINT_WEIGHT [FLAG...]
# (each FLAG, e.g. --config.primitive_hint_weight=1.0, goes to every leg)
N=$1; CS=$2; HW=$3; shift 3
cd "$(dirname "$0")/../../.."
PY=.venv/bin/python
A="--config=configs/imitate.py --workdir=runs/imitate_$N --config.executor.sign_gain=abs --config.executor.normalizer_constant=scaled --config.executor.rule_node_degree=True --config.warmup_gradient=True --config.standardize_decay_features=True --config.preconditioner_hint_weight=$HW"
R="--config.rules.adam.b2=('log1m', 0.95, 0.9995)"
C="--config.executor.clock_slopes=$CS"
exec > runs/imitate_$N.log 2>&1
date
$PY -m meta_train.imitate $A "$R" "$C" "$@"
$PY -m meta_train.imitate $A "$R" "$C" "$@" --config.num_steps=4000 --config.learning_rate=1e-3
$PY -m meta_train.imitate $A "$R" "$C" "$@" --config.num_steps=5000 --config.learning_rate=5e-4 "--config.family.batch_sizes=(32, 64, 128)" "--config.warmup_choices=(0, 160, 1000)"
mkdir -p runs/imitate_${N}_anneal/checkpoints && cp -r runs/imitate_$N/checkpoints/5000 runs/imitate_${N}_anneal/checkpoints/
$PY -m meta_train.imitate $A "$R" "$C" "$@" --workdir=runs/imitate_${N}_anneal --config.num_steps=6000 --config.learning_rate=1e-4 "--config.family.batch_sizes=(32, 64, 128)" "--config.warmup_choices=(0, 160, 1000)" --config.checkpoint_every=100
date
for s in 0 1 2; do $PY -m meta_train.evaluate_imitation --config=configs/evaluate_imitation.py \
  --config.seed=$s --workdir=runs/eval_${N}_seed$s --checkpoint=runs/imitate_${N}_anneal/checkpoints; done
date
