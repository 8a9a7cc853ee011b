r"""`make demo`: the whole job end to end, offline, in a few minutes on 2 CPU cores.

  python -m meta_train.demo [--steps=300] [--task=digits_mlp] [--workdir=runs/demo]

1. Reads the parameter graph of a real network (an MLP on scikit-learn digits).
2. Runs classic rules on it as graph programs and shows the hints each emits
   (name, graph location, shape) beside the loss they reach.
3. Trains the same network with the shipped neural executor imitating Adam,
   SGD with momentum and Adafactor, next to the rules themselves.
4. A short imitation (the NAR phase) from scratch, then a short meta-training
   (PES) starting from it: the same binaries as the real runs, tiny configs.
5. Evaluates the shipped learned optimizer (`learned_opt.pretrained()`, no
   tuning) against the best of learning-rate-tuned Adam and Muon on a few tasks it
   never saw, and
   prints where the table and the plots are.
"""

from __future__ import annotations

import pathlib
import shutil
import time

import jax
import jax.numpy as jnp
import optax
from absl import app, flags, logging

import learned_opt
import tasks

_STEPS = flags.DEFINE_integer("steps", 300, "Inner training steps per optimizer.")
_TASK = flags.DEFINE_string("task", "digits_mlp", "Named task (tasks.names()).")
_WORKDIR = flags.DEFINE_string("workdir", "runs/demo", "Where the demo's runs are written.")

RULES = [("sgd", dict(learning_rate=0.1, momentum=0.9)),
         ("adam", dict(learning_rate=3e-3)),
         ("adafactor", dict(learning_rate=3e-2, min_dim_size_to_factor=16)),
         ("lamb", dict(learning_rate=3e-3, weight_decay=1e-3)),
         ("lion", dict(learning_rate=3e-4)),
         ("muon", dict(learning_rate=2e-2))]


def train_curve(task: tasks.Task, tx: optax.GradientTransformation, steps: int,
                seed: int = 0) -> jax.Array:
  """Training losses of `task` under `tx` for `steps` steps (one lax.scan)."""
  key = jax.random.PRNGKey(seed)
  params = task.init(key)
  batches = task.datasets.train.stacked(jax.random.fold_in(key, 1), steps)

  @jax.jit
  def run(params, batches):
    def body(carry, batch):
      params, state = carry
      loss, grads = jax.value_and_grad(task.loss)(params, key, batch)
      updates, state = tx.update(grads, state, params, value=loss)
      return (optax.apply_updates(params, updates), state), loss
    return jax.lax.scan(body, (params, tx.init(params)), batches)[1]

  return run(params, batches)


def _hint_table(task: tasks.Task, name: str, kwargs: dict) -> str:
  rule = learned_opt.algorithms.get(name, **kwargs)
  params = task.init(jax.random.PRNGKey(0))
  grads = jax.tree.map(jnp.ones_like, params)
  _, _, trace = rule.step(grads, rule.init(params), params)
  parts = []
  for hint_name, hint in trace.items():
    leaves = jax.tree.leaves(hint.value)
    parts.append(f"{hint_name}@{hint.location}[{len(leaves)}]")
  return ", ".join(parts)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  steps = _STEPS.value
  task = tasks.get(_TASK.value)
  params = task.init(jax.random.PRNGKey(0))
  print("== The parameter graph of", task.name)
  print(learned_opt.ParamGraph.from_params(params).describe())

  print(f"\n== Rules as graph programs ({steps} steps each): final training loss and hints")
  finals = {}
  for name, kwargs in RULES:
    t0 = time.time()
    losses = train_curve(task, learned_opt.algorithms.get(name, **kwargs).as_optax(), steps)
    finals[name] = float(jnp.mean(losses[-20:]))
    print(f"  {name:10s} loss {float(losses[0]):.3f} -> {finals[name]:.4f} "
          f"({time.time() - t0:.1f}s)  hints: {_hint_table(task, name, kwargs)}")

  if "executor" not in learned_opt.pretrained_names():
    print("\n(no shipped executor in this install; run meta_train.imitate to make one)")
    return
  print("\n== The shipped neural executor imitating the rules (same steps, same data)")
  for name, kwargs in RULES[:3]:
    try:
      tx = learned_opt.pretrained("executor", algorithm=name, **kwargs)
    except (KeyError, ValueError) as e:
      print(f"  {name:10s} not imitated by the shipped executor: {e}")
      continue
    losses = train_curve(task, tx, steps)
    final = float(jnp.mean(losses[-20:]))
    gap = 100 * (final - finals[name]) / finals[name]
    print(f"  executor~{name:10s} loss -> {final:.4f}  (rule {finals[name]:.4f}, "
          f"gap {gap:+.1f}%)")
  _pipeline(_WORKDIR.value)


def _pipeline(workdir: str) -> None:
  """Short imitation -> short meta-training -> evaluation of the shipped optimizer."""
  # Imported here: these pull in the binaries' configs (flags are defined under __main__).
  from configs import evaluate as evaluate_config
  from configs import imitate as imitate_config, meta_train as meta_train_config
  from meta_train import evaluate, imitate, train

  root = pathlib.Path(workdir).absolute()
  for sub in ("imitate", "meta_train", "evaluate"):  # a fresh run each time, not a resume
    shutil.rmtree(root / sub, ignore_errors=True)
  print(f"\n== A short imitation of adam and sgd (configs/imitate.py, tiny) -> {root}/imitate")
  config = imitate_config.get_config()
  config.rules = {k: config.rules[k] for k in ("adam", "sgd")}
  config.update(dict(num_steps=60, unroll=20, batch_size=4, num_structures=2, log_every=20,
                     checkpoint_every=60, warmup_choices=(0,)))
  config.family.widths, config.family.depths = (16, 32), (1, 1)
  t0 = time.time()
  last = imitate.train(config, str(root / "imitate"))
  print(f"  {time.time() - t0:.0f}s; update cosine " + ", ".join(
      f"{k} {v:.3f}" for k, v in sorted(last["cosine"].items())))

  print(f"\n== A short meta-training from it (configs/meta_train.py:smoke, PES) -> "
        f"{root}/meta_train")
  config = meta_train_config.get_config("smoke")
  config.init_from = str(root / "imitate" / "checkpoints")
  t0 = time.time()
  last = train.train(config, str(root / "meta_train"))
  print(f"  {time.time() - t0:.0f}s; learned_opt.load('{root}/meta_train/checkpoints') "
        "is the result")

  print("\n== The shipped learned optimizer vs tuned Adam and Muon "
        f"(configs/evaluate.py:quick) -> {root}/evaluate")
  t0 = time.time()
  evaluate.evaluate(evaluate_config.get_config("quick"), str(root / "evaluate"))
  print(f"  {time.time() - t0:.0f}s")
  print((root / "evaluate" / "summary.md").read_text())
  print(f"Table: {root}/evaluate/summary.md   Plots: {root}/evaluate/*.png")


if __name__ == "__main__":
  app.run(main)
