"""How much of the momentum is signal, per tensor, along a learned optimizer's own run.

  PYTHONPATH=.:results/meta_train/experiments python \
      results/meta_train/experiments/momentum_snr.py CHECKPOINT LABEL[,LABEL...]

LABEL is any suite's task (`cosine_probe.suite_task`). For a seed-0 run, per tensor,
r = RMS(s1 / z1) / RMS(s2 / sqrt(z2)): the debiased momentum's RMS against the
gradient's remembered RMS, and q = RMS(s1 / z1) / RMS(g) against the current
gradient's. Gradients that keep their direction and size give both near 1;
zero-mean noise averaged over a memory of T steps gives about 1 / sqrt(2 T) (0.06
for the shipped optimizer's 133 steps); a gradient that falls raises q above r.
Prints the median over tensors, averaged over the first 10%, the next 40% and the
last half of the steps, and the final loss.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import learned_opt
from compare_mean_log import trace
from cosine_probe import executor_state, suite_task


def signal_ratio(grads, before, updates, after):
  """(r, q) per tensor after the step (see the module docstring)."""
  del before, updates
  state = executor_state(after)
  m_scale, v_scale = 1.0 / state.z[0], jax.lax.rsqrt(state.z[1])
  momentum = jnp.stack([jnp.mean(jnp.square(m * m_scale)) for m in jax.tree.leaves(state.s1)])
  memory = jnp.stack([jnp.mean(jnp.square(v * v_scale)) for v in jax.tree.leaves(state.s2)])
  current = jnp.stack([jnp.mean(jnp.square(g)) for g in jax.tree.leaves(grads)])
  return jnp.sqrt(momentum / (memory + 1e-30)), jnp.sqrt(momentum / (current + 1e-30))


def main(path: str, labels: str) -> None:
  print("| task | final loss | r: first 10% / next 40% / last half | q: same spans |\n"
        "|---|---|---|---|")
  for label in labels.split(","):
    task, steps = suite_task(label)
    _, losses, ratios = trace(task, learned_opt.load(path), steps, signal_ratio)
    cells = []
    for ratio in ratios:
      median = np.median(np.asarray(ratio), axis=1)
      spans = [median[:steps // 10], median[steps // 10:steps // 2], median[steps // 2:]]
      cells.append(" / ".join(f"{span.mean():.3g}" for span in spans))
    print(f"| {label} | {losses[-steps // 20:].mean():.3g} | " + " | ".join(cells) + " |",
          flush=True)


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2])
