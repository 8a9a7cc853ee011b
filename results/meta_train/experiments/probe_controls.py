"""A checkpoint's final loss on a few tasks with its step-size controls changed at run time.

  PYTHONPATH=. python results/meta_train/experiments/probe_controls.py CHECKPOINT MODE[,MODE...] \
      [TASK,...]

MODE is `as_is`, `adamLR` (optax.adam at LR, for reference), or `;`-separated edits:
`scale=S` (updates times S, via optax.scale), `a2=A` (the second moment's decay
held at A at every step) and ExecutorConfig fields FIELD=VALUE (e.g.
`learned_step_size=False;step_size_adaptation=0.1;step_size_target=0.0`). TASK is
a key of TASKS or a label of `cosine_probe.suite_task` (any suite's task; default:
all of TASKS). Prints the mean loss of the last 5% of steps, seed 0.
"""

import ast
import dataclasses
import sys

import optax

import learned_opt
import tasks
from compare_mean_log import train
from cosine_probe import suite_task
from learned_opt.executor import step as step_lib

TASKS = {"128x3gelu": ("mnist1d_mlp", dict(hidden=(128,) * 3, activation="gelu",
                                           batch_size=128), 2000),
         "256x4digits": ("digits_mlp", dict(hidden=(256,) * 4), 1000),
         "32x8tanh": ("digits_mlp", dict(hidden=(32,) * 8, activation="tanh"), 1000),
         "convdigits": ("digits_convnet", {}, 1000),
         "logreg": ("logistic_regression", {}, 1000),
         "autoenc": ("digits_autoencoder", {}, 2000)}
_ORIGINAL = step_lib.hyper_coefficients


def with_second_decay(a2: float | None):
  """hyper_coefficients with the second moment's decay replaced by a2 (None: as is)."""
  def coefficients(*args):
    c, coeffs = _ORIGINAL(*args)
    if a2 is None:
      return c, coeffs
    return c, coeffs._replace(decays=coeffs.decays.at[1].set(a2))
  return coefficients


def optimizer(path: str, mode: str) -> optax.GradientTransformation:
  if mode.startswith("adam"):
    return optax.adam(float(mode[4:]))
  opt = learned_opt.checkpoint.load_optimizer(path, algorithm="adam", learning_rate=3e-3)
  scale, a2, fields = 1.0, None, {}
  for item in filter(None, mode.split(";")):
    key, _, value = item.partition("=")
    if key == "scale":
      scale = float(value)
    elif key == "a2":
      a2 = float(value)
    elif key != "as_is":
      fields[key] = ast.literal_eval(value)
  step_lib.hyper_coefficients = with_second_decay(a2)
  opt = dataclasses.replace(opt, config=dataclasses.replace(opt.config, **fields))
  return optax.chain(opt.as_optax(), optax.scale(scale))


def main(path: str, modes: str, names: str = ",".join(TASKS)) -> None:
  for name in names.split(","):
    if name in TASKS:
      task_name, kwargs, steps = TASKS[name]
      task = tasks.get(task_name, **kwargs)
    else:
      task, steps = suite_task(name)
    finals = [f"{mode}: {train(task, optimizer(path, mode), steps)[1][-steps // 20:].mean():.3g}"
              for mode in modes.split(",")]
    print(f"{name:12s} | " + " | ".join(finals), flush=True)


if __name__ == "__main__":
  main(*sys.argv[1:])
