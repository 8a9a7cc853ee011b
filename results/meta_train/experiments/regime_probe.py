"""Statistics that might tell interpolating tasks from noisy ones, along a learned run.

  PYTHONPATH=.:results/meta_train/experiments python results/meta_train/experiments/regime_probe.py \
      CHECKPOINT LABEL[,LABEL...]

LABEL is a task of configs/evaluate.py, `long`, or `draw_N` (configs/evaluate_family.py).
For a seed-0 run it prints, per span of steps, medians over tensors of per-span medians of:
cos(g, s1) (what the integrator reads), trend = log rms(g) minus its value 10 steps back,
snr = rms(s1 / z1) / rms(s2 / sqrt(z2)) (the debiased moments: near 1 when the
gradient is consistent, near sqrt((1 - b1) / (1 + b1)) under pure noise), fall = log
RMS(g) - log RMS(s2 / sqrt(z2)) (how far the gradient sits below its long memory), and the log
step sizes at the end of the span.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import learned_opt
from compare_mean_log import trace
from cosine_probe import executor_state, suite_task


def _rms(x):
  return jnp.sqrt(jnp.mean(jnp.square(x.astype(jnp.float32))))


def statistics(grads, before, updates, after):
  del updates
  old, new = executor_state(before), executor_state(after)
  g, m_old = jax.tree.leaves(grads), jax.tree.leaves(old.s1)
  m, v = jax.tree.leaves(new.s1), jax.tree.leaves(new.s2)
  cos = jnp.stack([jnp.vdot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + 1e-30)
                   for a, b in zip(g, m_old)])
  log_g = jnp.stack([jnp.log(_rms(a) + 1e-30) for a in g])
  snr = jnp.stack([_rms(a / new.z[0]) / (_rms(b / jnp.sqrt(new.z[1])) + 1e-30)
                   for a, b in zip(m, v)])
  fall = jnp.stack([jnp.log(_rms(a) + 1e-30) - jnp.log(_rms(b / jnp.sqrt(new.z[1])) + 1e-30)
                    for a, b in zip(g, v)])
  return cos, log_g, snr, fall, new.log_step


def main(path: str, labels: str) -> None:
  for label in labels.split(","):
    task, steps = suite_task(label)
    _, loss, (cos, log_g, snr, fall, log_step) = trace(task, learned_opt.load(path), steps,
                                                      statistics)
    trend = np.zeros_like(log_g)
    trend[10:] = log_g[10:] - log_g[:-10]
    print(f"{label}: final {loss[-steps // 20:].mean():.3g}")
    spans = ((1, steps // 20), (steps // 20, steps // 5), (steps // 5, steps // 2),
             (steps // 2, steps))
    for a, b in spans:
      med = lambda x: np.round(np.median(np.median(x[a:b], 0)), 3)   # noqa: E731
      print(f"  {a:5d}-{b:5d}: cos {med(cos):+.3f} trend {med(trend):+.3f} snr {med(snr):.3f}"
            f" fall {med(fall):+.2f}"
            f" log step {np.round(np.median(log_step[b - 1]), 2):+.2f}")


if __name__ == "__main__":
  main(*sys.argv[1:])
