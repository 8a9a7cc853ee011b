"""Ranks optimizers over several evaluation summaries by the selection rule.

  python results/meta_train/experiments/select.py SUMMARY.json [SUMMARY.json ...]

Rule (fixed before the runs it ranks): most tasks at or below tuned Adam over all
the summaries' tasks together, then the median speedup over those tasks (0 where
tuned Adam's final loss is not reached). An optimizer is counted only over the
summaries that ran it; `pretrained` is named by what it was when each ran, so
pass summaries where it means the same thing.
"""

import json
import sys

import numpy as np


def main(paths: list[str]) -> None:
  at_or_below, speedups = {}, {}
  for path in paths:
    for task in json.load(open(path))["tasks"]:
      if task.get("long_horizon"):
        continue
      for row in task["rows"]:
        name = row["optimizer"]
        if name.startswith("optax:"):
          continue
        at_or_below.setdefault(name, []).append(bool(row["at_or_below"]))
        speedups.setdefault(name, []).append(float(row["speedup"] or 0.0))
  ranked = sorted(at_or_below, key=lambda n: (-sum(at_or_below[n]), -np.median(speedups[n])))
  for name in ranked:
    print(f"{name:45s} {sum(at_or_below[name]):2d}/{len(at_or_below[name])} "
          f"median speedup {np.median(speedups[name]):.2f}x")


if __name__ == "__main__":
  main(sys.argv[1:])
