r"""Closed-loop gaps of an executor with the readout's row sample and with exact readouts.

  PYTHONPATH=. python results/imitate/experiments/exact_readout.py [NETWORK [CHECKPOINT]]

NETWORK (default "4x wider (256)") is a key of configs/evaluate_imitation.py's
networks; CHECKPOINT (a directory or 'shipped:NAME') defaults to the shipped
executor. For LAMB and Adafactor (that config's kwargs) at seeds 0-2: the gap of the
1000-step closed loop against optax's rule, as meta_train.evaluate_imitation computes
it, with the layer readouts read on every k-th row of tensors with more than 64
in-neurons (ExecutorConfig.readout_rows=64, learned_opt.executor.step._row_sample) and
on whole tensors (readout_rows=0). LAMB's trust ratio and Adafactor's clipping and
parameter scale are read there. (Before readout_rows existed this script set
_row_sample's default instead.)
"""
import dataclasses
import sys

import optax

import tasks
from configs import evaluate_imitation
from learned_opt import checkpoint, shipped
from learned_opt.executor import ExecutorOptimizer
from meta_train.evaluate_imitation import final_loss

cfg = evaluate_imitation.get_config()
net = sys.argv[1] if len(sys.argv) > 1 else "4x wider (256)"
with shipped.source_path(sys.argv[2] if len(sys.argv) > 2 else "shipped:executor") as path:
  weights, config, _ = checkpoint.restore(path)
spec = cfg.networks[net]
task = tasks.get(spec["name"], **spec["kwargs"])
for seed in (0, 1, 2):
  for rule in ("lamb", "adafactor"):
    kwargs = dict(cfg.rules[rule])
    ref, _ = final_loss(task, getattr(optax, rule)(**kwargs), cfg.steps, seed)
    out = []
    for rows in (64, 0):
      tx = ExecutorOptimizer(weights, dataclasses.replace(config, readout_rows=rows), rule,
                             kwargs).as_optax()
      loss, _ = final_loss(task, tx, cfg.steps, seed)
      out.append(f"{(loss - ref) / ref * 100:+.1f}%")
    print(net, seed, rule, "sampled", out[0], "exact", out[1], flush=True)
