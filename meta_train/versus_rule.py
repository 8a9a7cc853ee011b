r"""Learned optimizers against the rule they started from, from an evaluation's summary.

  python -m meta_train.versus_rule --summary=DIR/summary.json --learning_rate=3e-3 \
      [--out=FILE.md]

Reads `summary.json` written by `meta_train.evaluate` (which sweeps optax:adam
over learning rates) and, per task, compares every optimizer that is not a
tuned rule with Adam at one fixed learning rate (the rule a meta-trained
optimizer was conditioned on) by final training loss, beside the best tuned
rule's final training loss (the task's target). A diverged run never wins.
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

from absl import app, flags


def _label(learning_rate: float) -> str:
  return f"lr={learning_rate:g}"


RULE = "optax:adam"


def _baselines(summary: dict[str, Any]) -> list[str]:
  """The tuned rules of a summary (`baselines`; older summaries: `baseline`)."""
  return list(summary.get("baselines") or [summary["baseline"]])


def compare(summary: dict[str, Any], learning_rate: float) -> str:
  """Markdown: per task and optimizer, final loss vs Adam at `learning_rate` and the
  best tuned rule."""
  setting = _label(learning_rate)
  baselines = _baselines(summary)
  optimizers = [o for o in summary["optimizers"] if o not in baselines]
  lines = [f"| task | Adam {setting} | best tuned rule | "
           + " | ".join(f"{o} | beats Adam {setting}" for o in optimizers) + " |",
           "|---|---|---|" + "---|---|" * len(optimizers)]
  wins = {o: 0 for o in optimizers}
  count = 0
  for task in summary["tasks"]:
    rows = {r["optimizer"]: r for r in task["rows"]}
    base = rows.get(RULE)
    if base is None or setting not in base["sweep"]:
      raise ValueError(f"{task['task']}: the evaluation has no {RULE} "
                       f"{setting}; it swept {sorted(base['sweep']) if base else 'nothing'}.")
    reference = base["sweep"][setting]
    cells = [task["task"], f"{reference:.4g}", f"{task['target']:.4g}"]
    count += 1
    for name in optimizers:
      row = rows[name]
      loss = row["final_train_loss"]
      better = (not row["diverged_runs"] and math.isfinite(loss)
                and (not math.isfinite(reference) or loss <= reference))
      wins[name] += better
      cells += [f"{loss:.4g}" + (" (diverged)" if row["diverged_runs"] else ""),
                "yes" if better else "no"]
    lines.append("| " + " | ".join(cells) + " |")
  lines.append("")
  for name, won in wins.items():
    lines.append(f"- {name}: at or below Adam {setting} on {won}/{count} tasks "
                 f"({100 * won / max(count, 1):.0f}%).")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  summary = json.loads(pathlib.Path(flags.FLAGS.summary).read_text())
  text = compare(summary, flags.FLAGS.learning_rate)
  print(text)
  if flags.FLAGS.out:
    pathlib.Path(flags.FLAGS.out).write_text(text)


if __name__ == "__main__":
  flags.DEFINE_string("summary", None, "summary.json of a meta_train.evaluate run.")
  flags.DEFINE_float("learning_rate", 3e-3, "Adam learning rate to compare with.")
  flags.DEFINE_string("out", None, "Also write the Markdown here.")
  flags.mark_flags_as_required(["summary"])
  app.run(main)
