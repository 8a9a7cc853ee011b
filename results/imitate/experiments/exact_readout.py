r"""Closed-loop gaps of the shipped executor with the readout's row sample and with exact readouts.

  PYTHONPATH=. python results/imitate/experiments/exact_readout.py [NETWORK]

NETWORK (default "4x wider (256)") is a key of configs/evaluate_imitation.py's
networks. For LAMB and Adafactor (that config's kwargs) at seeds 0-2: the gap of
the 1000-step closed loop against the rule, as meta_train.evaluate_imitation
computes it, with the layer readouts read on every k-th row of tensors with more
than 64 in-neurons (learned_opt.executor.step._row_sample, the default) and on
whole tensors (its default max_rows raised for the run). LAMB's trust ratio and
Adafactor's clipping and parameter scale are read there.
"""
import sys
import optax
import tasks
import learned_opt
from configs import evaluate_imitation
from learned_opt.executor import step as step_lib
from meta_train.evaluate_imitation import final_loss

cfg = evaluate_imitation.get_config()
net = sys.argv[1] if len(sys.argv) > 1 else "4x wider (256)"
spec = cfg.networks[net]
task = tasks.get(spec["name"], **spec["kwargs"])
for seed in (0, 1, 2):
  for rule in ("lamb", "adafactor"):
    kwargs = dict(cfg.rules[rule])
    ref, _ = final_loss(task, getattr(optax, rule)(**kwargs), cfg.steps, seed)
    out = []
    for rows in (64, 10**9):
      step_lib._row_sample.__defaults__ = (rows,)
      tx = learned_opt.pretrained("executor", algorithm=rule, **kwargs)
      loss, _ = final_loss(task, tx, cfg.steps, seed)
      out.append(f"{(loss - ref) / ref * 100:+.1f}%")
    step_lib._row_sample.__defaults__ = (64,)
    print(net, seed, rule, "sampled", out[0], "exact", out[1], flush=True)
