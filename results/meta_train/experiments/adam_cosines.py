"""Adam's own cosines between each gradient and the momentum before it, per tensor.

  PYTHONPATH=.:results/meta_train/experiments python results/meta_train/experiments/adam_cosines.py \
      LR LABEL[,LABEL...]

LABEL is a task of the evaluation, family or validation suites (`cosine_probe.suite_task`).
Along optax.adam(LR)'s seed-0 run it prints, per span of steps, the median over tensors
of the per-span median of cos(g_t, m_{t-1}) (what the learned optimizer's step-size
integrator reads, on its own run) and of cos(g_t, m_{t-1} / sqrt(v_{t-1})) (the same
in Adam's preconditioned metric, the hypergradient of the learning rate up to scale).
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from compare_mean_log import trace
from cosine_probe import suite_task, tensor_cosines


def cosines(grads, before, updates, after):
  """(raw, preconditioned) cosines per tensor, from the Adam state before the step."""
  del updates, after
  m, v = before[0].mu, before[0].nu
  preconditioned = jax.tree.map(lambda mu, nu: mu / (jnp.sqrt(nu) + 1e-8), m, v)
  return tensor_cosines(grads, m), tensor_cosines(grads, preconditioned)


def main(lr: str, labels: str) -> None:
  for label in labels.split(","):
    task, steps = suite_task(label)
    _, loss, (raw, pre) = trace(task, optax.adam(float(lr)), steps, cosines)
    print(f"{label} adam({lr}): final {loss[-steps // 20:].mean():.4g}")
    for a, b in ((2, steps // 10), (steps // 10, steps // 2), (steps // 2, steps)):
      print(f"  steps {a}-{b}: cos(g, m) {np.median(np.median(raw[a:b], 0)):+.3f} | "
            f"cos(g, m / sqrt(v)) {np.median(np.median(pre[a:b], 0)):+.3f}")


if __name__ == "__main__":
  main(*sys.argv[1:])
