"""Per-tensor update and gradient RMS along each optimizer's own run on the 128x3 GELU MLP.

  PYTHONPATH=. python results/meta_train/experiments/update_sizes.py CHECKPOINT [STEPS [LABEL]]

The checkpoint (conditioned on its default rule) against optax.adam(3e-3) and
adam(1e-3), seed 0; prints the loss (mean of the 21 steps up to t) and, per tensor
(bias, weights of each layer), the update RMS and the gradient RMS at a few steps t.
Then the checkpoint's step-size controls on this network: the second moment's
decay at a few clocks and the step-size integrator's rate per tensor
(max(step_size_adaptation + learned offset, 0); 0 means it is off).
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import learned_opt
import tasks
from compare_mean_log import trace
from cosine_probe import suite_task
from learned_opt.executor import network, step as step_lib
from learned_opt.executor.optimizer import graph_of


def rms(tree) -> jax.Array:
  return jnp.stack([jnp.sqrt(jnp.mean(x ** 2)) for x in jax.tree.leaves(tree)])


def sizes(task: tasks.Task, tx: optax.GradientTransformation, steps: int):
  """(losses, update RMS [steps, tensors], gradient RMS [steps, tensors])."""
  _, losses, (updates, grads) = trace(
      task, tx, steps, lambda grads, before, updates, after: (rms(updates), rms(grads)))
  return losses, updates, grads


def controls(path: str, task: tasks.Task) -> None:
  opt = learned_opt.checkpoint.load_optimizer(path)
  config = opt.config
  params = task.init(jax.random.PRNGKey(0))
  feats = step_lib.tensor_features(graph_of(params), None)
  for clock in (0, 10, 100, 1000, 2000):
    c, coeffs = step_lib.hyper_coefficients(opt.weights, config, opt.rule_id,
                                            opt.hyper_features, jnp.asarray(clock))
    line = f"clock {clock}: second-moment decay {float(coeffs.decays[1]):.4f}"
    if config.learned_step_size:
      head = network.build(config).apply[2](opt.weights, c, feats)[:, network.NUM_TENSOR_OUTPUTS]
      rates = np.maximum(config.step_size_adaptation + np.asarray(head), 0.0)
      line += f" | integrator rate per tensor {np.round(rates, 3)}"
    else:
      line += f" | integrator rate {config.step_size_adaptation} on every tensor"
    print(line)


def main(path: str, steps: str = "2000", label: str | None = None) -> None:
  """LABEL, a task of `cosine_probe.suite_task`, replaces the 128x3 GELU MLP."""
  steps = int(steps)
  if label is None:
    task = tasks.get("mnist1d_mlp", hidden=(128,) * 3, activation="gelu", batch_size=128)
  else:
    task = suite_task(label)[0]
  runs = {"learned": sizes(task, learned_opt.load(path), steps),
          "adam(3e-3)": sizes(task, optax.adam(3e-3), steps),
          "adam(1e-3)": sizes(task, optax.adam(1e-3), steps)}
  for t in sorted({t for t in (10, 100, 300, 600, 1000, 1500) if t < steps} | {steps - 1}):
    print(f"t={t}: " + " | ".join(f"{k} loss {v[0][max(0, t - 20):t + 1].mean():.3g}"
                                  for k, v in runs.items()))
    for k, (_, upd, grad) in runs.items():
      print(f"  {k:11s} update RMS " + " ".join(f"{x:.1e}" for x in upd[t]) +
            " | gradient RMS " + " ".join(f"{x:.1e}" for x in grad[t]))
  controls(path, task)


if __name__ == "__main__":
  main(*sys.argv[1:])
