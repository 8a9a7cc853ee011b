"""Where a learned optimizer's batch losses jump back up after a fit: validation4's wine MLP.

  PYTHONPATH=.:results/meta_train/experiments python \
      results/meta_train/experiments/coasting_trace.py [CHECKPOINT]

Runs `mlp_wine_2layer` (configs/evaluate_validation4.py) for 1000 steps with the
evaluation's seed-0 keys (`meta_train.evaluate.make_runner`: init, data and loss keys
split from PRNGKey(0)'s first seed key) and prints every step where the batch loss
jumps from below 1e-4 to above 1e-2, with the gradient's and the update's RMS over all
leaves and the log step sizes before the jump, plus every 100th step.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import learned_opt
from cosine_probe import executor_state, suite_task


def _rms(tree) -> jax.Array:
  return jnp.sqrt(jnp.mean(jnp.stack([jnp.mean(x * x) for x in jax.tree.leaves(tree)])))


def main(path: str = "learned_opt/weights/meta_executor") -> None:
  task, steps = suite_task("mlp_wine_2layer")
  tx = learned_opt.load(path)
  key = jax.random.split(jax.random.PRNGKey(0), 3)[0]
  k_init, k_data, k_loss = jax.random.split(key, 3)

  def step(carry, batch):
    params, state = carry
    loss, grads = jax.value_and_grad(task.loss)(params, k_loss, batch)
    updates, state = tx.update(grads, state, params, value=loss)
    return ((optax.apply_updates(params, updates), state),
            (loss, _rms(grads), _rms(updates), executor_state(state).log_step))

  run = jax.jit(lambda p, b: jax.lax.scan(step, (p, tx.init(p)), b)[1])
  loss, grad_rms, update_rms, log_step = map(
      np.asarray, run(task.init(k_init), task.datasets.train.stacked(k_data, steps)))
  print(f"final (mean of the last 50 steps) {loss[-50:].mean():.4g}")
  for i in range(1, steps):
    if (loss[i] > 1e-2 and loss[i - 1] < 1e-4) or i % 100 == 0:
      print(f"{i} loss {loss[i - 1]:.2g} -> {loss[i]:.3g} | grad RMS {grad_rms[i]:.2e} | "
            f"update RMS {update_rms[i - 1]:.2e} -> {update_rms[i]:.2e} | log steps "
            f"{np.array2string(log_step[i - 1], precision=1)}")


if __name__ == "__main__":
  main(*sys.argv[1:])
