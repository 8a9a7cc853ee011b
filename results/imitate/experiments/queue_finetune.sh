#!/bin/sh
# usage: queue_finetune.sh NAME PRIMITIVE_HINT_WEIGHT STEPS LR [FLAG...]
# Fine-tunes with the shipped recipe's output forms and last-leg batch sizes and warm-ups,
# from $INIT (default shipped:executor; ignored once runs/imitate_NAME has a checkpoint),
# with the primitive hint at the given weight. Run from the repository root; the second
# call with the same NAME and more STEPS continues the run (e.g. at a lower LR).
set -e
NAME=$1; W=$2; N=$3; LR=$4; shift 4
A="--config=configs/imitate.py --workdir=runs/imitate_$NAME --config.executor.sign_gain=abs --config.executor.normalizer_constant=scaled --config.executor.rule_node_degree=True --config.warmup_gradient=True --config.standardize_decay_features=True"
R="--config.rules.adam.b2=('log1m', 0.95, 0.9995)"
date
.venv/bin/python -m meta_train.imitate $A "$R" --config.init_from=${INIT:-shipped:executor} \
  --config.primitive_hint_weight=$W --config.num_steps=$N --config.learning_rate=$LR \
  "--config.family.batch_sizes=(32, 64, 128)" "--config.warmup_choices=(0, 160, 1000)" \
  --config.checkpoint_every=100 "$@"
date
