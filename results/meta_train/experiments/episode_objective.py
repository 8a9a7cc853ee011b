"""The meta-objective of whole episodes, against the final loss, on held-out family draws.

  PYTHONPATH=. python results/meta_train/experiments/episode_objective.py CHECKPOINT ...

For each task of configs/evaluate_family.py (seed 0 of each draw, 2000 steps) and
each checkpoint, prints the meta-training objective of that whole episode on the
'log_mean' scale (the mean over 20-step segments of log max(mean_i min(l_i / l_0,
2), LOG_FLOOR), `meta_train.unroll`; lower is better) and the final loss (mean of the
last 5% of steps), then each checkpoint's mean objective and how many tasks it is
best on by each measure. It asks whether the objective PES follows ranks
optimizers the way the full-horizon evaluation does.
"""

import sys

import numpy as np

import learned_opt
import tasks
from compare_mean_log import train
from configs import evaluate_family
from meta_train import unroll

SEGMENT, CLIP = 20, 2.0


def episode_objective(losses: np.ndarray) -> float:
  normalized = np.minimum(losses / losses[0], CLIP)
  segments = normalized[: len(losses) // SEGMENT * SEGMENT].reshape(-1, SEGMENT).mean(1)
  return float(np.mean(np.log(np.maximum(segments, unroll.LOG_FLOOR))))


def main(*paths: str) -> None:
  config = evaluate_family.get_config()
  objective, final = [], []
  for label, entry in config.tasks.items():
    task = tasks.get(entry.name, **entry.kwargs)
    runs = [train(task, learned_opt.load(p), config.steps)[1] for p in paths]
    objective.append([episode_objective(l) for l in runs])
    final.append([l[-config.steps // 20:].mean() for l in runs])
    print(f"{label} {task.name}: " + " | ".join(
        f"{o:+.2f} / {f:.3g}" for o, f in zip(objective[-1], final[-1])), flush=True)
  objective, final = np.array(objective), np.array(final)
  for i, path in enumerate(paths):
    print(f"{path}: mean objective {objective[:, i].mean():+.3f}; best objective on "
          f"{(objective.argmin(1) == i).sum()}, best final loss on {(final.argmin(1) == i).sum()}")


if __name__ == "__main__":
  main(*sys.argv[1:])
