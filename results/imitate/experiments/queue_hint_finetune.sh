#!/bin/sh
# Fine-tunes an imitate_ph checkpoint with the Adafactor hints (node clock slopes, the shipped
# output forms), then evaluates it on the given seeds. Run from anywhere:
#   queue_hint_finetune.sh NAME FROM_RUN FROM_STEP TO_STEP LR DENOMINATOR_WEIGHT "SEEDS"
# as run for the experiments README:
#   queue_hint_finetune.sh ph_den   ph      5000 6000 1e-4 1.0 "0 1 2"
#   queue_hint_finetune.sh ph_den3  ph      5000 5500 5e-4 3.0 "0"
#   queue_hint_finetune.sh ph_den3a ph_den3 5500 6000 1e-4 3.0 "0 1 2"
N=$1; FROM=$2; FROM_STEP=$3; TO_STEP=$4; LR=$5; DW=$6; SEEDS=$7
cd "$(dirname "$0")/../../.."
PY=.venv/bin/python
A="--config=configs/imitate.py --config.executor.sign_gain=abs --config.executor.normalizer_constant=scaled --config.executor.rule_node_degree=True --config.warmup_gradient=True --config.standardize_decay_features=True --config.preconditioner_hint_weight=1.0 --config.denominator_hint_weight=$DW"
R="--config.rules.adam.b2=('log1m', 0.95, 0.9995)"
C="--config.executor.clock_slopes=('node',)"
exec > runs/imitate_$N.log 2>&1
date
mkdir -p runs/imitate_$N/checkpoints && cp -r runs/imitate_$FROM/checkpoints/$FROM_STEP runs/imitate_$N/checkpoints/
$PY -m meta_train.imitate $A "$R" "$C" --workdir=runs/imitate_$N --config.num_steps=$TO_STEP --config.learning_rate=$LR "--config.family.batch_sizes=(32, 64, 128)" "--config.warmup_choices=(0, 160, 1000)" --config.checkpoint_every=100
date
for s in $SEEDS; do $PY -m meta_train.evaluate_imitation --config=configs/evaluate_imitation.py \
  --config.seed=$s --workdir=runs/eval_${N}_seed$s --checkpoint=runs/imitate_$N/checkpoints; done
date
