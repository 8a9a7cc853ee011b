"""The cosine the step-size integrator reads, along a learned optimizer's own run.

  PYTHONPATH=. python results/meta_train/experiments/cosine_probe.py CHECKPOINT LABEL[,LABEL...]

LABEL is a task of configs/evaluate.py (or `long`: its 5000-step MNIST-1D MLP). For a
seed-0 run it prints, over the first 10%, the next 40% and the last half of the
steps, the median per tensor of cos(g, s1) (the new gradient against the old first
moment, on whole tensors rather than the integrator's row sample) and of its
absolute value, and the log step sizes at the end of each span.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import learned_opt
import tasks
from configs import evaluate
from learned_opt.executor import ExecutorState


def executor_state(state) -> ExecutorState:
  is_state = lambda x: isinstance(x, ExecutorState)   # noqa: E731
  return [x for x in jax.tree.leaves(state, is_leaf=is_state) if is_state(x)][0]


def cosines(task: tasks.Task, tx: optax.GradientTransformation, steps: int):
  key = jax.random.PRNGKey(0)

  @jax.jit
  def run(params, batches):
    def body(carry, batch):
      params, state = carry
      s1 = executor_state(state).s1
      loss, grads = jax.value_and_grad(task.loss)(params, key, batch)
      cos = jnp.stack([jnp.vdot(g, m) / (jnp.linalg.norm(g) * jnp.linalg.norm(m) + 1e-30)
                       for g, m in zip(jax.tree.leaves(grads), jax.tree.leaves(s1))])
      updates, state = tx.update(grads, state, params)
      return ((optax.apply_updates(params, updates), state),
              (loss, cos, executor_state(state).log_step))
    params = task.init(key)
    return jax.lax.scan(body, (params, tx.init(params)), batches)[1]

  return [np.asarray(x) for x in run(task.init(key), task.datasets.train.stacked(key, steps))]


def main(path: str, labels: str) -> None:
  suite = dict(evaluate.get_config().tasks)
  suite["long"] = dict(name="mnist1d_mlp", kwargs=dict(hidden=(32, 32)), steps=5000)
  for label in labels.split(","):
    entry = suite[label]
    steps = int(entry.get("steps", 1000))
    task = tasks.get(entry["name"], **dict(entry.get("kwargs", {})))
    loss, cos, log_step = cosines(task, learned_opt.load(path), steps)
    print(f"{label}: final {loss[-steps // 20:].mean():.3g}")
    for a, b in ((1, steps // 10), (steps // 10, steps // 2), (steps // 2, steps)):
      print(f"  steps {a}-{b}: median cos {np.round(np.median(cos[a:b], 0), 2)} | median |cos| "
            f"{np.round(np.median(np.abs(cos[a:b]), 0), 2)} | log steps {np.round(log_step[b - 1], 1)}")


if __name__ == "__main__":
  main(*sys.argv[1:])
