"""A checkpoint's training curve on one task and its adapted log step sizes at the end.

  python results/meta_train/experiments/probe_step_size.py TASK STEPS CHECKPOINT_DIR ...

Trains the registered TASK (default kwargs, seed 0) for STEPS steps with each
checkpoint (`learned_opt.load`, its default rule) and prints the mean loss of
five equal chunks, the mean of the last 50 steps, and the per-tensor log step
sizes of the step-size integrator (ExecutorConfig.step_size_adaptation; all
zero when it is off).
"""

import sys

import numpy as np
import optax

import learned_opt
import tasks
from compare_mean_log import train
from cosine_probe import executor_state


def probe(task: tasks.Task, tx: optax.GradientTransformation, steps: int):
  state, losses = train(task, tx, steps)
  return losses, np.asarray(executor_state(state).log_step)


def main(task_name: str, steps: str, *checkpoints: str) -> None:
  task, steps = tasks.get(task_name), int(steps)
  for path in checkpoints:
    losses, log_step = probe(task, learned_opt.load(path), steps)
    chunks = " ".join(f"{c.mean():.4f}" for c in np.array_split(losses, 5))
    print(f"{path}: chunks {chunks} | last 50 {losses[-50:].mean():.5f} | "
          f"log steps {np.round(log_step, 2)}")


if __name__ == "__main__":
  main(*sys.argv[1:])
