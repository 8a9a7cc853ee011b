"""The cosine the step-size integrator reads, along a learned optimizer's own run.

  PYTHONPATH=. python results/meta_train/experiments/cosine_probe.py CHECKPOINT LABEL[,LABEL...]

LABEL is a task of configs/evaluate.py, `long` or `draw_N` (see `suite_task`). For a
seed-0 run it prints, over the first 10%, the next 40% and the last half of the
steps, the median per tensor of cos(g, s1) (the new gradient against the old first
moment, on whole tensors rather than the integrator's row sample) and of its
absolute value, and the log step sizes at the end of each span.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import learned_opt
import tasks
from compare_mean_log import trace
from configs import (evaluate, evaluate_family, evaluate_validation, evaluate_validation2,
                     evaluate_validation3, evaluate_validation4)
from learned_opt.executor import ExecutorState


def executor_state(state) -> ExecutorState:
  is_state = lambda x: isinstance(x, ExecutorState)   # noqa: E731
  return [x for x in jax.tree.leaves(state, is_leaf=is_state) if is_state(x)][0]


def tensor_cosines(a, b) -> jax.Array:
  """cos(a, b) over all entries of each tensor of two same-structure trees (0 where
  either is all zero)."""
  return jnp.stack([jnp.vdot(x, y) / (jnp.linalg.norm(x) * jnp.linalg.norm(y) + 1e-30)
                    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))])


def alignment(grads, before, updates, after):
  """(cos(g, s1) per tensor, the log step sizes after the step)."""
  del updates
  return tensor_cosines(grads, executor_state(before).s1), executor_state(after).log_step


def suite_task(label: str, **overrides) -> tuple[tasks.Task, int]:
  """(task, steps) of a label of configs/evaluate.py, `long` (its 5000-step MNIST-1D
  MLP), `draw_N` (configs/evaluate_family.py) or a validation suite's task
  (configs/evaluate_validation.py, configs/evaluate_validation2.py,
  configs/evaluate_validation3.py, configs/evaluate_validation4.py); `overrides`
  replace the task's keyword arguments (e.g. batch_size)."""
  suite = dict(evaluate.get_config().tasks)
  suite.update(dict(evaluate_family.get_config().tasks))
  suite.update(evaluate_validation.suite())
  suite.update(evaluate_validation2.suite())
  suite.update(evaluate_validation3.suite())
  suite.update(evaluate_validation4.suite())
  suite["long"] = dict(name="mnist1d_mlp", kwargs=dict(hidden=(32, 32)), steps=5000)
  entry = suite[label]
  default = evaluate_family.get_config().steps if label.startswith("draw_") else 1000
  return (tasks.get(entry["name"], **dict(entry.get("kwargs", {}), **overrides)),
          int(entry.get("steps", default)))


def main(path: str, labels: str) -> None:
  for label in labels.split(","):
    task, steps = suite_task(label)
    _, loss, (cos, log_step) = trace(task, learned_opt.load(path), steps, alignment)
    print(f"{label}: final {loss[-steps // 20:].mean():.3g}")
    for a, b in ((1, steps // 10), (steps // 10, steps // 2), (steps // 2, steps)):
      print(f"  steps {a}-{b}: median cos {np.round(np.median(cos[a:b], 0), 2)} | median "
            f"|cos| {np.round(np.median(np.abs(cos[a:b]), 0), 2)} | log steps "
            f"{np.round(log_step[b - 1], 1)}")


if __name__ == "__main__":
  main(*sys.argv[1:])
