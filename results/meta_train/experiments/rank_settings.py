"""Ranks optimizers over several evaluation summaries by the selection rule.

  PYTHONPATH=. python results/meta_train/experiments/rank_settings.py SUMMARY.json [SUMMARY.json ...]

Rule (fixed before the runs it ranks): most tasks at or below tuned Adam over all
the summaries' tasks together, then the median speedup over those tasks (0 where
tuned Adam's final loss is not reached); `meta_train.evaluate.aggregate` counts
them. An optimizer is counted only over the summaries that ran it; `pretrained` is
named by what it was when each ran, so pass summaries where it means the same thing.
"""

import json
import sys

from meta_train import evaluate


def main(paths: list[str]) -> None:
  summaries = [json.load(open(path)) for path in paths]
  tasks = [task for summary in summaries for task in summary["tasks"]]
  totals = evaluate.aggregate(tasks, summaries[0]["baseline"])
  ranked = sorted((name for name in totals if not name.startswith("optax:")),
                  key=lambda n: (-totals[n]["at_or_below"], -totals[n]["median_speedup"]))
  for name in ranked:
    row = totals[name]
    print(f"{name:45s} {row['at_or_below']:2d}/{row['tasks']} "
          f"median speedup {row['median_speedup']:.2f}x")


if __name__ == "__main__":
  main(sys.argv[1:])
