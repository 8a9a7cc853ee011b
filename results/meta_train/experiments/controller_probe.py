"""What the step-size controller reads and does along a run, seed 0.

  PYTHONPATH=.:results/meta_train/experiments python \
      results/meta_train/experiments/controller_probe.py CHECKPOINT LABEL [LABEL ...]

LABEL is a task of any suite (`cosine_probe.suite_task`). At a few steps, means over
tensors of: the integrator's log step size (and its range), the cosine between the
gradient and the old first moment over the whole tensor (the integrator reads it on
a row sample; mean of the last 20 steps), |f| (`step.gradient_fall`: log RMS(g) -
log RMS(v)) and the open width of the dead band it gives
(`step.gated_width` with the checkpoint's band and gate).
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import learned_opt
from compare_mean_log import trace
from cosine_probe import executor_state, suite_task, tensor_cosines
from learned_opt import checkpoint
from learned_opt.executor import step as step_lib


def record(grads, before, updates, after):
  """(log steps, cosines, falls) per tensor at one step."""
  del updates
  old, new = executor_state(before), executor_state(after)
  square = jnp.stack([jnp.mean(g * g) for g in jax.tree.leaves(grads)])
  fall = 0.5 * (jnp.log(square + 1e-30) - jnp.log(new.grad_mean_square / new.z[1] + 1e-30))
  return new.log_step, tensor_cosines(grads, old.s1), fall


def main(path: str, labels: list[str]) -> None:
  config = checkpoint.restore(path)[1]
  for label in labels:
    task, steps = suite_task(label)
    _, losses, (log_step, cosine, fall) = trace(task, learned_opt.load(path), steps, record)
    print(f"## {label} ({steps} steps): final loss {losses[-steps // 20:].mean():.4g}\n")
    print("| step | loss | log step (range) | cosine | abs(f) | open band |\n|---|---|---|---|---|---|")
    for i in [10, 50, 100, 200, 400, 600, 800, steps - 1]:
      if i >= steps:
        continue
      width = step_lib.gated_width(config.step_size_deadband, np.abs(fall[i]),
                                   config.step_size_deadband_fall or np.inf)
      print(f"| {i} | {losses[max(0, i - 10):i + 1].mean():.4g} | {log_step[i].mean():+.2f} "
            f"({log_step[i].min():+.2f}, {log_step[i].max():+.2f}) | "
            f"{cosine[max(0, i - 20):i + 1].mean():+.3f} | {np.abs(fall[i]).mean():.2f} | "
            f"{float(np.mean(width)):.3f} |")
    print()


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2:])
