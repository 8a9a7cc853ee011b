"""Update norm of the shipped executor's Adam against Adam's own, over a 10x-steps run.

  PYTHONPATH=. python results/imitate/experiments/long_run_ratio.py [CHECKPOINT]

On the evaluation's "10x steps" network (digits MLP 64-32-10, 10000 steps, Adam at
the kwargs of configs/evaluate_imitation.py), each optimizer trains its own copy
from the same initialization and batches (evaluate_imitation.closed_loop);
prints, at a few steps, the mean over the preceding 50 steps of each run's loss and
global update norm, and the ratio of the norms (executor / Adam).
"""

import sys

import numpy as np

import learned_opt
import tasks
from configs import evaluate_imitation
from learned_opt import checkpoint
from meta_train.evaluate_imitation import closed_loop

SHOWN = (100, 1000, 2000, 5000, 7000, 9999)


def main(path: str | None = None) -> None:
  config = evaluate_imitation.get_config()
  spec = config.networks["10x steps"]
  task = tasks.get(spec.name, **spec.kwargs)
  kwargs = dict(config.rules["adam"])
  executor = (checkpoint.load(path, algorithm="adam", **kwargs) if path else
              learned_opt.pretrained("executor", algorithm="adam", **kwargs))
  ours = np.stack(closed_loop(task, executor, spec.steps, seed=0), 1)
  adam = np.stack(closed_loop(task, learned_opt.algorithms.get("adam", **kwargs).as_optax(),
                              spec.steps, seed=0), 1)
  print("| step | loss executor / Adam | update norm executor / Adam | norm ratio |")
  print("|---|---|---|---|")
  for t in SHOWN:
    e, a = ours[max(0, t - 50):t + 1].mean(0), adam[max(0, t - 50):t + 1].mean(0)
    print(f"| {t} | {e[0]:.5f} / {a[0]:.5f} | {e[1]:.2e} / {a[1]:.2e} | {e[1] / a[1]:.2f} |")


if __name__ == "__main__":
  main(*sys.argv[1:])
