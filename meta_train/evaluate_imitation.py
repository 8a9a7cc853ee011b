r"""How well does the executor imitate each rule? Writes a Markdown table and JSON.

  python -m meta_train.evaluate_imitation --config=configs/evaluate_imitation.py \
      --checkpoint=learned_opt/weights/executor --workdir=DIR

Per rule (optax kwargs from the config):
* teacher-forced: along the rule's own trajectory on the base task, the median
  per-step cosine similarity and relative error between executor and rule updates;
* closed loop: the executor trains each evaluation network by itself next to the
  rule (same init and batches); the final-loss gap is
  (executor - rule) / rule on the mean training loss of the last 5% of steps.
"""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import jax
import ml_collections
import numpy as np
import optax
from absl import app, flags, logging
from ml_collections import config_flags

import learned_opt
import tasks
from learned_opt import checkpoint
from meta_train import imitation

_CONFIG = config_flags.DEFINE_config_file("config", None, "Evaluation config.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Executor checkpoint directory; "
                                  "default: the shipped executor.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where results.json and summary.md go.")


def closed_loop(task: tasks.Task, tx: optax.GradientTransformation, steps: int,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Training loss and global update norm per step of `tx` training `task` from the
  seed's initialization (batches drawn per 1000-step chunk, so runs of different
  lengths share their first steps)."""
  key = jax.random.PRNGKey(seed)
  params = task.init(key)
  chunk = min(steps, 1000)

  @jax.jit
  def run(params, state, batches):
    def body(carry, batch):
      params, state = carry
      loss, grads = jax.value_and_grad(task.loss)(params, key, batch)
      updates, state = tx.update(grads, state, params, value=loss)
      return (optax.apply_updates(params, updates), state), (loss, optax.global_norm(updates))
    return jax.lax.scan(body, (params, state), batches)

  state, losses, norms = tx.init(params), [], []
  for i in range(0, steps, chunk):
    batches = task.datasets.train.stacked(jax.random.fold_in(key, i), chunk)
    (params, state), (chunk_losses, chunk_norms) = run(params, state, batches)
    losses.append(np.asarray(chunk_losses))
    norms.append(np.asarray(chunk_norms))
  return np.concatenate(losses)[:steps], np.concatenate(norms)[:steps]


def final_loss(task: tasks.Task, tx: optax.GradientTransformation, steps: int,
               seed: int) -> tuple[float, bool]:
  """Mean training loss over the last 5% of `steps` (and whether it stayed finite)."""
  losses, _ = closed_loop(task, tx, steps, seed)
  tail = losses[-max(1, steps // 20):]
  return float(np.mean(tail)), bool(np.all(np.isfinite(losses)))


def teacher_forced(weights, exec_config, task: tasks.Task, name: str, kwargs: dict,
                   steps: int, seed: int) -> dict[str, float]:
  """Median per-step cosine and relative error along the rule's trajectory."""
  traj, cond = imitation.rule_run(exec_config, name, kwargs, task, steps, seed)
  cos, err = imitation.per_step_agreement(weights, exec_config, traj, cond)
  return {"cosine_median": float(np.median(cos)), "rel_err_median": float(np.median(err))}


def evaluate(config: ml_collections.ConfigDict, checkpoint_dir: str | None,
             workdir: str) -> list[dict[str, Any]]:
  if checkpoint_dir is None:
    optimizer = learned_opt.shipped.pretrained_optimizer("executor", "adam",
                                                          learning_rate=1e-3)
    weights, exec_config = optimizer.weights, optimizer.config
    load = lambda n, kw: learned_opt.pretrained("executor", algorithm=n, **kw)  # noqa: E731
  else:
    weights, exec_config, _ = checkpoint.restore(checkpoint_dir)
    load = lambda n, kw: checkpoint.load(checkpoint_dir, algorithm=n, **kw)  # noqa: E731
  rows = []
  base = tasks.get(config.base_task.name, **config.base_task.kwargs)
  for name, kwargs in config.rules.items():
    kwargs = dict(kwargs)
    row = {"rule": name, "kwargs": kwargs}
    t0 = time.time()
    row.update(teacher_forced(weights, exec_config, base, name, kwargs,
                              config.teacher_forced_steps, config.seed))
    tx_exec, tx_rule = load(name, kwargs), learned_opt.algorithms.get(name, **kwargs).as_optax()
    for label, spec in config.networks.items():
      task = tasks.get(spec.name, **spec.kwargs)
      steps = spec.get("steps", config.steps)
      exec_loss, exec_finite = final_loss(task, tx_exec, steps, config.seed)
      rule_loss, _ = final_loss(task, tx_rule, steps, config.seed)
      row[label] = {"executor": exec_loss, "rule": rule_loss, "finite": exec_finite,
                    "gap": (exec_loss - rule_loss) / abs(rule_loss), "steps": steps}
    row["seconds"] = time.time() - t0
    logging.info("%s: %s", name, row)
    rows.append(row)
  write(rows, config, pathlib.Path(workdir))
  return rows


def write(rows: list[dict[str, Any]], config, workdir: pathlib.Path) -> None:
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "results.json").write_text(json.dumps(rows, indent=1))
  labels = list(config.networks.keys())
  lines = ["| rule | teacher-forced cosine (median) | rel. error (median) | " +
           " | ".join(f"gap {label}" for label in labels) + " |",
           "|---|---|---|" + "---|" * len(labels)]
  for row in rows:
    gaps = []
    for label in labels:
      cell = row[label]
      mark = "" if cell["finite"] else " (diverged)"
      gaps.append(f"{100 * cell['gap']:+.1f}% ({cell['executor']:.4f} vs {cell['rule']:.4f})"
                  f"{mark}")
    lines.append(f"| {row['rule']} | {row['cosine_median']:.4f} | {row['rel_err_median']:.4f}"
                 f" | " + " | ".join(gaps) + " |")
  (workdir / "summary.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


def main(argv):
  del argv
  evaluate(_CONFIG.value, _CHECKPOINT.value, _WORKDIR.value)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
