"""Executor gaps beside each rule's own sensitivity to a small change of its learning rate.

  PYTHONPATH=. python results/imitate/experiments/chaos_floor.py \
      SENSITIVITY.md=RESULTS_DIR [SENSITIVITY.md=RESULTS_DIR ...]

One pair per seed: SENSITIVITY.md is what `rule_sensitivity.py --seed=N 0.999 1.001`
(or `0.999999 1.000001`, a change of about 8 float32 roundings) printed, RESULTS_DIR
an `evaluate_imitation --config.seed=N` workdir (its results.json). For the imitation
issue's four rules on its four 1000-step networks it prints every cell's executor gap
and the rule's own floor there, the larger |gap| of the rule run at the table's
factors (those within 0.11% of 1) against itself. A cell whose floor is above 5% is
chaotic: a step-size error of 0.1% (or 0.0001%), far below what a learned network's
updates carry, already moves the final loss past the issue's 5%.
The counts say how many cells are within 5%, how many are chaotic, and how many of
the others the executor gets within 5%; the issue's measure itself is unchanged.
"""

import json
import pathlib
import sys

from seed_spread import NETWORKS, RULES, TARGET


def sensitivity_floors(path: pathlib.Path) -> dict[tuple[str, str], float]:
  """(rule, network) -> max |gap| over the table's factors within 0.1% of 1 (rows at
  other factors, such as 0.99, are skipped)."""
  lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
  header = [cell.strip() for cell in lines[0].strip("|").split("|")]
  floors: dict[tuple[str, str], float] = {}
  for line in lines[2:]:
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    if abs(float(cells[1]) - 1.0) > 0.0011:
      continue
    for column, cell in zip(header[2:], cells[2:]):
      key = (cells[0], column.removeprefix("gap "))
      floors[key] = max(floors.get(key, 0.0), abs(float(cell.rstrip("%"))) / 100)
  return floors


def main(specs: list[str]) -> None:
  runs = []
  for spec in specs:
    table, directory = spec.split("=", 1)
    rows = json.loads((pathlib.Path(directory) / "results.json").read_text())
    runs.append((sensitivity_floors(pathlib.Path(table)), {row["rule"]: row for row in rows}))
  print("| rule | network | " + " | ".join(f"run {i}: gap (floor)" for i in range(len(runs)))
        + " |")
  print("|---|---|" + "---|" * len(runs))
  within = chaotic = calm = calm_within = 0
  for rule in RULES:
    for network in NETWORKS:
      cells = []
      for floors, rows in runs:
        gap, floor = rows[rule][network]["gap"], floors[(rule, network)]
        close, is_chaotic = abs(gap) <= TARGET, floor > TARGET
        within += close
        chaotic += is_chaotic
        calm += not is_chaotic
        calm_within += close and not is_chaotic
        cells.append(f"{100 * gap:+.1f}% ({100 * floor:.1f}%{' chaotic' if is_chaotic else ''})")
      print(f"| {rule} | {network} | " + " | ".join(cells) + " |")
  total = len(RULES) * len(NETWORKS) * len(runs)
  print(f"\nwithin 5%: {within}/{total}; chaotic cells (floor > 5%): {chaotic}/{total}; "
        f"within 5% among the other cells: {calm_within}/{calm}")


if __name__ == "__main__":
  main(sys.argv[1:])
