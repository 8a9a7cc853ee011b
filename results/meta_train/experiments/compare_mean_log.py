"""A learned optimizer against Adam(3e-3) on deep MNIST-1D MLPs, over 2000 steps.

  python results/meta_train/experiments/compare_mean_log.py CHECKPOINT_DIR [digits|mnist1d] \
      [FIELD=VALUE ...]

With `digits`, a digits MLP 64x64 (batch 64) instead of the MNIST-1D MLPs.
FIELD=VALUE runs the checkpoint with that ExecutorConfig field replaced (same
weights), e.g. `direction_readout=False` (the layer gain ignores the direction's
RMS) or `max_time=200` (the clock the networks see stops there).

Prints, per task and optimizer, the mean over steps of the log normalized training
loss, log(clip(loss / first loss, 1e-6, 2)) (the meta-objective's scale), the mean
normalized loss, the final loss (mean of the last 100 steps) and the loss around steps
500, 1000 and 1500 (means over 100 steps). The checkpoint is conditioned on
Adam(3e-3) (what the meta-trained ones default to; imitation checkpoints default to
Adam(1e-3)). Seed 0, one run each.
"""

import ast
import dataclasses
import sys
from typing import Callable

import jax
import numpy as np
import optax

import learned_opt
import tasks

TASKS = (
    dict(hidden=(128,) * 3, activation="gelu", batch_size=128),   # the evaluation's MLP
    dict(hidden=(121,) * 3, activation="relu", batch_size=64),
    dict(hidden=(130,) * 4, activation="gelu", batch_size=128),
)
DIGITS_TASKS = (dict(hidden=(64, 64), batch_size=64),)
STEPS = 2000


def trace(task: tasks.Task, tx: optax.GradientTransformation, steps: int = STEPS,
          record: Callable = lambda grads, before, updates, after: ()):
  """(final optimizer state, per-step training losses, per-step records) of a seed-0 run.

  `record(grads, state before, updates, state after)` is called inside the jitted
  scan at every step; its outputs come back stacked over the steps.
  """
  key = jax.random.PRNGKey(0)
  params = task.init(key)

  @jax.jit
  def run(params, batches):
    def body(carry, batch):
      p, s = carry
      loss, grads = jax.value_and_grad(task.loss)(p, key, batch)
      updates, new_s = tx.update(grads, s, p)
      return (optax.apply_updates(p, updates), new_s), (loss, record(grads, s, updates, new_s))
    (_, state), (losses, records) = jax.lax.scan(body, (params, tx.init(params)), batches)
    return state, losses, records

  state, losses, records = run(params, task.datasets.train.stacked(key, steps))
  return state, np.asarray(losses), jax.tree.map(np.asarray, records)


def train(task: tasks.Task, tx: optax.GradientTransformation, steps: int = STEPS):
  """(final optimizer state, per-step training losses) of a seed-0 run of `steps` steps."""
  state, losses, _ = trace(task, tx, steps)
  return state, losses


def losses(task: tasks.Task, tx: optax.GradientTransformation) -> np.ndarray:
  return train(task, tx)[1]


def main(path: str, task_set: str = "mnist1d", *overrides: str) -> None:
  opt = learned_opt.checkpoint.load_optimizer(path, algorithm="adam", learning_rate=3e-3)
  fields = {}
  for item in overrides:
    key, _, value = item.partition("=")
    fields[key] = ast.literal_eval(value)
  opt = dataclasses.replace(opt, config=dataclasses.replace(opt.config, **fields))
  learned = opt.as_optax()
  task_name, task_list = (("digits_mlp", DIGITS_TASKS) if task_set == "digits"
                          else ("mnist1d_mlp", TASKS))
  for kwargs in task_list:
    task = tasks.get(task_name, **kwargs)
    for label, tx in (("adam(3e-3)", optax.adam(3e-3)), (path, learned)):
      loss = losses(task, tx)
      ratio = np.clip(loss / loss[0], 1e-6, 2.0)
      print(f"{kwargs} {label}: mean log {np.mean(np.log(ratio)):.3f}  mean "
            f"{np.mean(ratio):.4f}  final {loss[-100:].mean():.3g}  " + "  ".join(
                f"step {t} {loss[t - 50:t + 50].mean():.3g}" for t in (500, 1000, 1500)))


if __name__ == "__main__":
  main(*sys.argv[1:])
