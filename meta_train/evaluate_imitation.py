r"""How well does the executor imitate each rule? Writes a Markdown report and JSON.

  python -m meta_train.evaluate_imitation --config=configs/evaluate_imitation.py \
      --checkpoint=learned_opt/weights/executor --workdir=DIR \
      [--config.seeds='(0, 1, 2)'] [--config.floor_factors='()']

For each seed of `seeds` and each rule (optax kwargs from the config):
* teacher-forced: along the rule's own trajectory on the base task, the median
  per-step cosine similarity and relative error between executor and rule updates;
* closed loop: the executor trains each evaluation network by itself next to the
  rule (same init and batches); the final-loss gap is
  (executor - rule) / rule on the mean training loss of the last 5% of steps.

The rule's own spread. On the cells `floor_rules` x `floor_networks`, the rule
also runs at each of `floor_factors` x its learning rate (same seed, init and
batches); the cell's floor is the largest |gap| of those runs against the rule
itself. A cell is chaotic when its floor exceeds `target`: a change of the
learning rate that small already moves the rule's final loss past the target, so
nothing short of a near-exact copy of the rule imitates it within the target
there. The report counts, per rule, per seed and in total, the cells whose
executor gap is within `target`, the chaotic cells, and the calm (not chaotic)
cells within `target`. An empty `floor_factors` skips the floors.

Writes DIR/results.json (`evaluate`'s report) and DIR/summary.md. Seeds can run as
separate processes (`--config.seed=S --workdir=DIR_S`, one per core) and be merged
into one report:

  python -m meta_train.evaluate_imitation --config=SAME_CONFIG --workdir=DIR \
      --merge=DIR_0,DIR_1,DIR_2
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Callable, Iterator, Sequence
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

Loader = Callable[[str, dict], optax.GradientTransformation]


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


def teacher_forced(weights, exec_config, hand_set, task: tasks.Task, name: str, kwargs: dict,
                   steps: int, seed: int) -> dict[str, float]:
  """Median per-step cosine and relative error along the rule's trajectory, and each
  hint's median relative error ('hints', imitation.hint_agreement)."""
  traj, cond = imitation.rule_run(exec_config, name, kwargs, task, steps, seed)
  cos, err = imitation.per_step_agreement(weights, exec_config, hand_set, traj, cond)
  return {"cosine_median": float(np.median(cos)), "rel_err_median": float(np.median(err)),
          "hints": imitation.hint_agreement(weights, exec_config, hand_set, traj, cond)}


def run_seeds(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """The seeds to evaluate: (config.seed,) when that single-seed option is set,
  otherwise config.seeds."""
  if config.get("seed") is not None:
    return (int(config.seed),)
  return tuple(int(s) for s in config.seeds)


def executor(checkpoint_dir: str | None) -> tuple[Any, Any, Any, Loader]:
  """(weights, executor config, hand-set record, load(rule name, kwargs) -> optax
  transformation) of the checkpoint in `checkpoint_dir`, or of the shipped executor
  when None."""
  if checkpoint_dir is None:
    optimizer = learned_opt.shipped.pretrained_optimizer("executor", "adam",
                                                          learning_rate=1e-3)
    return (optimizer.weights, optimizer.config, optimizer.hand_set,
            lambda n, kw: learned_opt.pretrained("executor", algorithm=n, **kw))
  weights, exec_config, hand_set, _ = checkpoint.restore(checkpoint_dir)
  return (weights, exec_config, hand_set,
          lambda n, kw: checkpoint.load(checkpoint_dir, algorithm=n, **kw))


def rule_row(config: ml_collections.ConfigDict, seed: int, name: str, weights, exec_config,
             hand_set, load: Loader) -> dict[str, Any]:
  """One rule at one seed: its teacher-forced agreement, and per network (by label) the
  executor's and the rule's final losses, whether the executor stayed finite and the gap."""
  kwargs = dict(config.rules[name])
  row: dict[str, Any] = {"rule": name, "kwargs": kwargs}
  t0 = time.time()
  base = tasks.get(config.base_task.name, **config.base_task.kwargs)
  row.update(teacher_forced(weights, exec_config, hand_set, base, name, kwargs,
                            config.teacher_forced_steps, seed))
  tx_exec, tx_rule = load(name, kwargs), learned_opt.algorithms.get(name, **kwargs).as_optax()
  for label, spec in config.networks.items():
    task = tasks.get(spec.name, **spec.kwargs)
    steps = spec.get("steps", config.steps)
    exec_loss, exec_finite = final_loss(task, tx_exec, steps, seed)
    rule_loss, _ = final_loss(task, tx_rule, steps, seed)
    row[label] = {"executor": exec_loss, "rule": rule_loss, "finite": exec_finite,
                  "gap": (exec_loss - rule_loss) / abs(rule_loss), "steps": steps}
  row["seconds"] = time.time() - t0
  return row


def rule_floor(task: tasks.Task, name: str, kwargs: dict, steps: int, seed: int,
               rule_loss: float, factors: Sequence[float]) -> float:
  """The rule's own spread on one network: the largest |(moved - rule) / rule| of its
  final loss over runs at each factor x its learning rate, against `rule_loss` (its
  run at the configured rate, same seed, init and batches).

  Raises:
    ValueError: the rule's kwargs have no learning_rate to move.
  """
  if "learning_rate" not in kwargs:
    raise ValueError(f"rule {name!r} has no learning_rate in its kwargs {kwargs}, so "
                     "its floor cannot be measured; leave it out of floor_rules.")
  gaps = []
  for factor in factors:
    moved = dict(kwargs, learning_rate=kwargs["learning_rate"] * factor)
    loss, _ = final_loss(task, learned_opt.algorithms.get(name, **moved).as_optax(), steps,
                         seed)
    gaps.append(abs(loss - rule_loss) / abs(rule_loss))
  return float(max(gaps))


def floor_cells(config: ml_collections.ConfigDict, rows: list[dict[str, Any]]
                ) -> Iterator[tuple[dict[str, Any], str, dict[str, Any]]]:
  """(rule row, network label, its cell) of every floor_rules x floor_networks cell,
  rules in floor_rules' order, networks in floor_networks' order."""
  by_rule = {row["rule"]: row for row in rows}
  for name in config.floor_rules:
    for label in config.floor_networks:
      yield by_rule[name], label, by_rule[name][label]


def add_floors(config: ml_collections.ConfigDict, seed: int,
               rows: list[dict[str, Any]]) -> None:
  """Adds "floor" (see `rule_floor`) and "chaotic" (floor > target) to every floor cell
  of one seed's rows; nothing when floor_factors is empty."""
  if not config.floor_factors:
    return
  for row, label, cell in floor_cells(config, rows):
    spec = config.networks[label]
    task = tasks.get(spec.name, **spec.kwargs)
    cell["floor"] = rule_floor(task, row["rule"], row["kwargs"], cell["steps"], seed,
                               cell["rule"], config.floor_factors)
    cell["chaotic"] = cell["floor"] > config.target


def count(cells: list[dict[str, Any]], target: float) -> dict[str, int | None]:
  """How many `cells` there are, how many have |gap| <= target ("within"), and, when
  their floors are known, how many are chaotic, calm, calm and within, and pass:
  |gap| <= max(target, floor), the rule's own spread standing in for the target where
  it is larger (else None)."""
  within = [abs(c["gap"]) <= target for c in cells]
  out: dict[str, int | None] = {"cells": len(cells), "within": sum(within)}
  if all("floor" in c for c in cells):
    chaotic = [c["chaotic"] for c in cells]
    out.update(chaotic=sum(chaotic), calm=len(cells) - sum(chaotic),
               calm_within=sum(w and not c for w, c in zip(within, chaotic)),
               passes=sum(abs(c["gap"]) <= max(target, c["floor"]) for c in cells))
  else:
    out.update(chaotic=None, calm=None, calm_within=None, passes=None)
  return out


def counts(config: ml_collections.ConfigDict, runs: list[dict[str, Any]]) -> dict[str, Any]:
  """`count` of the floor cells per rule, per seed (keyed by str(seed)) and in total."""
  cells = [(run["seed"], row["rule"], cell) for run in runs
           for row, _, cell in floor_cells(config, run["rules"])]
  return {
      "per_rule": {name: count([c for _, r, c in cells if r == name], config.target)
                   for name in config.floor_rules},
      "per_seed": {str(run["seed"]): count([c for s, _, c in cells if s == run["seed"]],
                                           config.target) for run in runs},
      "total": count([c for _, _, c in cells], config.target)}


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError when a floor rule or network is not among the config's rules or
  networks."""
  for option, known in (("floor_rules", config.rules), ("floor_networks", config.networks)):
    unknown = [name for name in config[option] if name not in known]
    if unknown:
      raise ValueError(f"{option} names {unknown}, not among the config's "
                       f"{option.split('_')[1]}: {list(known)}.")


def evaluate(config: ml_collections.ConfigDict, checkpoint_dir: str | None,
             workdir: str) -> dict[str, Any]:
  """Evaluates the executor's imitation at every seed and writes the report.

  Args:
    config: configs/evaluate_imitation.py's options.
    checkpoint_dir: an executor checkpoint directory; None: the shipped executor.
    workdir: where results.json and summary.md go.

  Returns:
    The report (what results.json holds): seeds, target, floor_factors, "runs" (per
    seed, its rule rows, see `rule_row`, with floors on the floor cells) and "counts"
    (see `counts`).
  """
  check_config(config)
  weights, exec_config, hand_set, load = executor(checkpoint_dir)
  runs = []
  for seed in run_seeds(config):
    rows = []
    for name in config.rules:
      rows.append(rule_row(config, seed, name, weights, exec_config, hand_set, load))
      logging.info("seed %d, %s: %s", seed, name, rows[-1])
    add_floors(config, seed, rows)
    runs.append({"seed": seed, "rules": rows})
  report = {"seeds": [run["seed"] for run in runs], "target": config.target,
            "floor_factors": list(config.floor_factors), "runs": runs,
            "counts": counts(config, runs)}
  write(report, markdown(config, report), pathlib.Path(workdir))
  return report


def merge(config: ml_collections.ConfigDict, workdirs: Sequence[str],
          workdir: str) -> dict[str, Any]:
  """One report from the reports in `workdirs` (each of other seeds, same config), its
  counts recomputed, written to `workdir`.

  Raises:
    ValueError: a seed twice, or reports with different targets or floor factors.
  """
  reports = [json.loads((pathlib.Path(d) / "results.json").read_text()) for d in workdirs]
  runs = sorted((run for r in reports for run in r["runs"]), key=lambda run: run["seed"])
  seeds = [run["seed"] for run in runs]
  if len(set(seeds)) != len(seeds):
    raise ValueError(f"The reports in {list(workdirs)} repeat a seed: {seeds}.")
  kinds = {(r["target"], tuple(r["floor_factors"])) for r in reports}
  if len(kinds) != 1:
    raise ValueError(f"The reports in {list(workdirs)} differ in target or floor factors "
                     f"({sorted(kinds)}); merge reports of one config.")
  report = {"seeds": seeds, "target": reports[0]["target"],
            "floor_factors": reports[0]["floor_factors"], "runs": runs,
            "counts": counts(config, runs)}
  write(report, markdown(config, report), pathlib.Path(workdir))
  return report


def gap_table(labels: Sequence[str], rows: list[dict[str, Any]]) -> list[str]:
  """One seed's table: per rule, teacher-forced agreement and every network's gap."""
  lines = ["| rule | teacher-forced cosine (median) | rel. error (median) | "
           "hints: rel. error (median) | " +
           " | ".join(f"gap {label}" for label in labels) + " |",
           "|---|---|---|---|" + "---|" * len(labels)]
  for row in rows:
    gaps = []
    for label in labels:
      cell = row[label]
      mark = "" if cell["finite"] else " (diverged)"
      gaps.append(f"{100 * cell['gap']:+.1f}% ({cell['executor']:.4f} vs {cell['rule']:.4f})"
                  f"{mark}")
    hints = "; ".join(f"{_HINT_NAMES.get(k, k)} {v:.3g}" for k, v in row.get("hints", {}).items())
    lines.append(f"| {row['rule']} | {row['cosine_median']:.4f} | {row['rel_err_median']:.4f}"
                 f" | {hints or '-'} | " + " | ".join(gaps) + " |")
  return lines


_HINT_NAMES = {"first_moment": "m", "second_moment_rms": "v",
               **{f"ns_iterate_{k}": f"X{k}" for k in range(16)}}


def _gap_and_floor(cell: dict[str, Any]) -> str:
  if "floor" not in cell:
    return f"{100 * cell['gap']:+.1f}%"
  chaotic = " chaotic" if cell["chaotic"] else ""
  return f"{100 * cell['gap']:+.1f}% ({100 * cell['floor']:.1f}%{chaotic})"


def spread_table(config: ml_collections.ConfigDict, report: dict[str, Any]) -> list[str]:
  """Per floor cell, every seed's executor gap and (when measured) the rule's floor."""
  runs = report["runs"]
  lines = ["| rule | network | " + " | ".join(f"seed {run['seed']}: gap (floor)"
                                                for run in runs) + " |",
           "|---|---|" + "---|" * len(runs)]
  per_seed = [list(floor_cells(config, run["rules"])) for run in runs]
  for i, (row, label, _) in enumerate(per_seed[0] if per_seed else []):
    cells = [_gap_and_floor(seed_cells[i][2]) for seed_cells in per_seed]
    lines.append(f"| {row['rule']} | {label} | " + " | ".join(cells) + " |")
  return lines


def counts_table(report: dict[str, Any]) -> list[str]:
  """The counts per rule, per seed and in total."""
  target = f"{100 * report['target']:g}%"
  lines = [f"| cells of | cells | gap within {target} | chaotic (floor > {target}) | "
           f"calm | calm and within {target} | pass: gap within max({target}, floor) |",
           "|---|---|---|---|---|---|---|"]
  groups = ([(f"rule {name}", c) for name, c in report["counts"]["per_rule"].items()]
            + [(f"seed {seed}", c) for seed, c in report["counts"]["per_seed"].items()]
            + [("**all**", report["counts"]["total"])])
  for name, c in groups:
    known = lambda k, c=c: "—" if c[k] is None else str(c[k])  # noqa: E731
    lines.append(f"| {name} | {c['cells']} | {c['within']} | {known('chaotic')} | "
                 f"{known('calm')} | {known('calm_within')} | {known('passes')} |")
  return lines


def markdown(config: ml_collections.ConfigDict, report: dict[str, Any]) -> str:
  """The report as Markdown: each seed's table, the floor cells' gaps and floors, counts."""
  lines = []
  for run in report["runs"]:
    lines += [f"## Seed {run['seed']}", ""] + gap_table(list(config.networks), run["rules"])
    lines.append("")
  factors = ", ".join(f"{f:.7g}" for f in report["floor_factors"]) or "none (skipped)"
  lines += ["## The rule's own spread", "",
            f"Floor: the largest |gap| of the rule run at {factors} x its learning rate "
            "against itself (same seed, init and batches). A cell is chaotic when its "
            f"floor exceeds {100 * report['target']:g}%.", ""]
  lines += spread_table(config, report) + [""] + counts_table(report)
  return "\n".join(lines) + "\n"


def write(report: dict[str, Any], text: str, workdir: pathlib.Path) -> None:
  """Writes results.json (the report) and summary.md (`text`), and prints `text`."""
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "results.json").write_text(json.dumps(report, indent=1))
  (workdir / "summary.md").write_text(text)
  print(text)


def main(argv):
  del argv
  if flags.FLAGS.merge:
    merge(flags.FLAGS.config, flags.FLAGS.merge, flags.FLAGS.workdir)
  else:
    evaluate(flags.FLAGS.config, flags.FLAGS.checkpoint, flags.FLAGS.workdir)


if __name__ == "__main__":
  # Flags are defined here, not at import, so other binaries can import this module.
  config_flags.DEFINE_config_file("config", None, "Evaluation config "
                                  "(configs/evaluate_imitation.py).")
  flags.DEFINE_string("checkpoint", None, "Executor checkpoint directory; default: the "
                      "shipped executor.")
  flags.DEFINE_string("workdir", None, "Where results.json and summary.md go.")
  flags.DEFINE_list("merge", [], "Workdirs of per-seed runs to merge into one report.")
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
