"""Mean logged per-rule relative squared error of imitation runs over step windows.

  PYTHONPATH=. python results/imitate/experiments/compare_logs.py LO-HI[,LO-HI...] LOG ...

Each LOG is a run's metrics.jsonl (`logs/` holds this folder's runs'); the log of
`imitate_v3`, the executor shipped until `imitate_scaled2` replaced it
(`logs/imitate_v3.jsonl`; "shipped" in this folder's tables), is printed first for the
same logged steps.
A window LO-HI averages the entries with LO < step <= HI.
"""

import json
import pathlib
import sys

import numpy as np

SHIPPED = pathlib.Path("results/imitate/experiments/logs/imitate_v3.jsonl")


def read(path) -> dict[int, dict]:
  return {row["step"]: row for row in map(json.loads, pathlib.Path(path).read_text().splitlines())}


def window_means(rows: list[dict]) -> dict[str, float]:
  rules = sorted(rows[0]["rel_err"])
  return {r: float(np.mean([row["rel_err"][r] for row in rows if r in row["rel_err"]]))
          for r in rules}


def main(windows: str, *logs: str) -> None:
  shipped = read(SHIPPED)
  for window in windows.split(","):
    lo, hi = (int(x) for x in window.split("-"))
    for path in logs:
      run = read(path)
      steps = [s for s in run if lo < s <= hi]
      if not steps:
        continue
      for label, rows in (("shipped", [shipped[s] for s in steps if s in shipped]),
                          (pathlib.Path(path).stem, [run[s] for s in steps])):
        if rows:
          means = " ".join(f"{k}={v:.4f}" for k, v in window_means(rows).items())
          print(f"{lo}-{hi} {label}: {means}")


if __name__ == "__main__":
  main(*sys.argv[1:])
