"""Closed-loop gaps of `meta_train.evaluate_imitation` runs side by side, per seed.

  PYTHONPATH=. python results/imitate/experiments/seed_spread.py LABEL=DIR [LABEL=DIR ...]

Each DIR holds a results.json written by evaluate_imitation (one seed each, e.g.
--config.seed=1). Prints, for the four target rules of the imitation issue on the
four 1000-step networks, every run's gap and each run's count of cells within 5%:
a single seed's gap on these networks moves by up to tens of percent for a 5%
change of the rule's own learning rate (rule_sensitivity.md), so one run of each
executor is a noisy comparison.
"""

import json
import pathlib
import sys

RULES = ("adam", "sgd", "lamb", "adafactor")
NETWORKS = ("2x deeper (4x32)", "4x wider (256)", "convnet", "mlp 64-32-10")
TARGET = 0.05


def main(specs: list[str]) -> None:
  runs = []
  for spec in specs:
    label, directory = spec.split("=", 1)
    rows = json.loads((pathlib.Path(directory) / "results.json").read_text())
    runs.append((label, {row["rule"]: row for row in rows}))
  print("| rule | network | " + " | ".join(label for label, _ in runs) + " |")
  print("|---|---|" + "---|" * len(runs))
  within = [0] * len(runs)
  per_rule = {rule: [0] * len(runs) for rule in RULES}
  for rule in RULES:
    for network in NETWORKS:
      cells = []
      for i, (_, rows) in enumerate(runs):
        gap = rows[rule][network]["gap"]
        within[i] += abs(gap) <= TARGET
        per_rule[rule][i] += abs(gap) <= TARGET
        cells.append(f"{100 * gap:+.1f}%")
      print(f"| {rule} | {network} | " + " | ".join(cells) + " |")
  for rule in RULES:
    print(f"| within 5%: {rule} | | " + " | ".join(f"{n}/4" for n in per_rule[rule]) + " |")
  print("| **within 5%** | | " + " | ".join(f"**{n}/16**" for n in within) + " |")


if __name__ == "__main__":
  main(sys.argv[1:])
