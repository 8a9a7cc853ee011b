r"""The ablation table of recipe runs: evaluation counts, speedups and meta-training progress.

  python -m meta_train.ablation --rows=recipe=DIR1,no_controller=DIR2,... \
      --evaluations=EVAL1,EVAL2 [--out=FILE.md]

Each row is a `meta_train.recipe` workdir; its candidate is the last checkpoint of its
`meta_train` stage, evaluated by `meta_train.evaluate` as
`checkpoint:DIR/meta_train/checkpoints` in every evaluation workdir given (validation
suites). Per row and suite the table gives the tasks whose final training loss is at or
below the best tuned rule's, the same for test loss, and the median speedup against
the best tuned rule (`meta_train.evaluate.aggregate`), and, finer than the counts, the
median over tasks of the ratios L / L* of its final training loss and its test loss to
the best tuned rule's (below 1: better). From the row's
`meta_train/metrics.jsonl` it gives the final meta-loss (the estimator's objective, the
imitation regularizer excluded) and the meta-steps the row took to reach the first
row's final meta-loss, both on a running mean over `--window` logged records:

  m_t = mean(meta_loss_{t-w+1..t}),  final = m_T,
  steps to reach r = min{ step_t : m_t <= final_r }  (None when never).
"""

from __future__ import annotations

import json
import math
import pathlib
import statistics
from typing import Any, Sequence

from absl import app, flags


def candidate_of(workdir: str) -> str:
  """The optimizer spec `meta_train.evaluate` names a recipe workdir's candidate by."""
  return f"checkpoint:{workdir.rstrip('/')}/meta_train/checkpoints"


def running_meta_loss(metrics_path: pathlib.Path, window: int) -> list[tuple[int, float]]:
  """(step, running mean of meta_loss over `window` records), one per logged record."""
  if not metrics_path.exists():
    raise FileNotFoundError(f"{metrics_path} does not exist: the row's meta_train stage has "
                            "not logged yet; run its recipe first.")
  records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
  by_step = {r["step"]: r["meta_loss"] for r in records}  # a resumed run re-logs steps
  steps = sorted(by_step)
  out = []
  for i, step in enumerate(steps):
    recent = [by_step[s] for s in steps[max(0, i - window + 1):i + 1]]
    out.append((step, sum(recent) / len(recent)))
  return out


def steps_to_reach(curve: list[tuple[int, float]], level: float) -> int | None:
  """The first logged step whose running meta-loss is at or below `level`."""
  return next((step for step, value in curve if value <= level), None)


def median_loss_ratios(summary: dict[str, Any], spec: str) -> tuple[float, float]:
  """Medians over tasks of final train loss / target and test loss / test target (NaN
  where no task has a positive target; a non-finite final loss counts as an infinite
  ratio)."""
  train, test = [], []
  for task in summary.get("tasks", []):
    row = next((r for r in task["rows"] if r["optimizer"] == spec), None)
    if row is None:
      continue
    for ratios, loss, target in ((train, row["final_train_loss"], task["target"]),
                                 (test, row.get("test_loss"), task.get("test_target"))):
      if loss is not None and target is not None and target > 0:
        ratios.append(loss / target if math.isfinite(loss) else math.inf)
  median = lambda xs: statistics.median(xs) if xs else math.nan  # noqa: E731
  return median(train), median(test)


def _suite_cells(suite: str, summary: dict[str, Any], spec: str, name: str) -> list[str]:
  row = summary["aggregate"].get(spec)
  if row is None:
    raise KeyError(f"The evaluation in {suite!r} has no row for "
                   f"{name!r} ({spec}); add it with --config.optimizers and rerun "
                   "meta_train.evaluate on that workdir (the baselines are reused).")
  train_ratio, test_ratio = median_loss_ratios(summary, spec)
  return [f"{row['at_or_below']}/{row['tasks']}", f"{row['at_or_below_test']}/{row['tasks_test']}",
          f"{row['median_speedup']:.2f}x", f"{train_ratio:.2f}", f"{test_ratio:.3f}",
          str(row["diverged_runs"])]


def table(rows: Sequence[tuple[str, str]], evaluations: Sequence[str], window: int = 10) -> str:
  """Markdown: one line per (name, recipe workdir) row; see the module docstring."""
  summaries = []
  for evaluation in evaluations:
    path = pathlib.Path(evaluation) / "summary.json"
    if not path.exists():
      raise FileNotFoundError(f"{path} does not exist: run meta_train.evaluate with "
                              f"--workdir={evaluation} first.")
    summaries.append((pathlib.Path(evaluation).name, json.loads(path.read_text())))
  curves = [running_meta_loss(pathlib.Path(d) / "meta_train" / "metrics.jsonl", window)
            for _, d in rows]
  reference = curves[0][-1][1]
  header = ["row"]
  for suite, _ in summaries:
    header += [f"{suite}: train at or below", "test at or below", "median speedup",
               "median train L/L*", "median test L/L*", "diverged"]
  header += ["meta-steps", "final meta-loss", f"meta-steps to {reference:.3f} (row 1's final)"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for (name, workdir), curve in zip(rows, curves):
    cells = [name]
    for suite, summary in summaries:
      cells += _suite_cells(suite, summary, candidate_of(workdir), name)
    reached = steps_to_reach(curve, reference)
    cells += [str(curve[-1][0]), f"{curve[-1][1]:.3f}",
              "not reached" if reached is None else str(reached)]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def parse_rows(specs: Sequence[str]) -> list[tuple[str, str]]:
  """'name=workdir' strings as (name, workdir) pairs."""
  rows = []
  for spec in specs:
    name, sep, workdir = spec.partition("=")
    if not sep or not name or not workdir:
      raise ValueError(f"--rows entry {spec!r} is not name=workdir (e.g. "
                       "no_controller=/runs/abl/no_controller).")
    rows.append((name, workdir))
  return rows


def main(argv: Sequence[str]) -> None:
  del argv
  text = table(parse_rows(FLAGS.rows), FLAGS.evaluations, FLAGS.window)
  print(text, end="")
  if FLAGS.out:
    pathlib.Path(FLAGS.out).write_text(text)


if __name__ == "__main__":
  flags.DEFINE_list("rows", None, "name=recipe_workdir entries; the first is the reference.")
  flags.DEFINE_list("evaluations", None, "meta_train.evaluate workdirs (validation suites).")
  flags.DEFINE_integer("window", 10, "Logged records in the meta-loss running mean.")
  flags.DEFINE_string("out", "", "Also write the Markdown here.")
  flags.mark_flags_as_required(["rows", "evaluations"])
  FLAGS = flags.FLAGS
  app.run(main)
