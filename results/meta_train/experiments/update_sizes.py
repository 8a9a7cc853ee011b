"""Per-tensor update and gradient RMS along each optimizer's own run on the 128x3 GELU MLP.

  PYTHONPATH=. python results/meta_train/experiments/update_sizes.py CHECKPOINT [STEPS]

The checkpoint (conditioned on its default rule) against optax.adam(3e-3) and
adam(1e-3), seed 0; prints the loss (mean of the 21 steps up to t) and, per tensor
(bias, weights of each layer), the update RMS and the gradient RMS at a few steps t.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import learned_opt
import tasks


def trace(task: tasks.Task, tx: optax.GradientTransformation, steps: int):
  key = jax.random.PRNGKey(0)

  @jax.jit
  def run(params, batches):
    def body(carry, batch):
      params, state = carry
      loss, grads = jax.value_and_grad(task.loss)(params, key, batch)
      updates, state = tx.update(grads, state, params)
      rms = lambda tree: jnp.stack([jnp.sqrt(jnp.mean(x ** 2)) for x in jax.tree.leaves(tree)])
      return (optax.apply_updates(params, updates), state), (loss, rms(updates), rms(grads))
    params = task.init(key)
    return jax.lax.scan(body, (params, tx.init(params)), batches)[1]

  return [np.asarray(x) for x in run(task.init(key), task.datasets.train.stacked(key, steps))]


def main(path: str, steps: str = "2000") -> None:
  steps = int(steps)
  task = tasks.get("mnist1d_mlp", hidden=(128,) * 3, activation="gelu", batch_size=128)
  runs = {"learned": trace(task, learned_opt.load(path), steps),
          "adam(3e-3)": trace(task, optax.adam(3e-3), steps),
          "adam(1e-3)": trace(task, optax.adam(1e-3), steps)}
  for t in (10, 100, 300, 600, 1000, 1500, steps - 1):
    print(f"t={t}: " + " | ".join(f"{k} loss {v[0][max(0, t - 20):t + 1].mean():.3g}"
                                  for k, v in runs.items()))
    for k, (_, upd, grad) in runs.items():
      print(f"  {k:11s} update RMS " + " ".join(f"{x:.1e}" for x in upd[t]) +
            " | gradient RMS " + " ".join(f"{x:.1e}" for x in grad[t]))


if __name__ == "__main__":
  main(*sys.argv[1:])
