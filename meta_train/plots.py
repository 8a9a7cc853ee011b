"""Loss-curve plots of an evaluation summary (matplotlib, Agg backend: no display needed).

`write_all(summary, directory)` draws one PNG per task and an overview grid
from the per-optimizer curves in `meta_train.evaluate`'s summary: the seed-mean
training curve of each optimizer's tuned setting (solid), a min-max band over
seeds, and, on tasks with held-out data, the final test loss of its
validation-picked setting (dashed over the last tenth of the steps, a marker at
the end); log-scale y, one color per optimizer (the same color in every figure).
"""

from __future__ import annotations

import math
import pathlib
import re
from typing import Any

try:
  import matplotlib
except ImportError as err:
  raise ImportError("meta_train's plots need matplotlib: install the package's plots extra "
                    "(pip install 'learned-opt[plots]') or matplotlib itself.") from err

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402


def _array(values) -> np.ndarray:
  return np.asarray([np.nan if v is None else v for v in values], np.float64)


def colors(specs: list[str]) -> dict[str, Any]:
  """One fixed color per optimizer spec, in order of first appearance."""
  cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  return {spec: cycle[i % len(cycle)] for i, spec in enumerate(specs)}


def _draw_test(ax, curve: dict[str, Any], test_loss: float | None, last_step: int,
               color) -> None:
  """The test loss, dashed: its curve where the run recorded one (the validation-picked
  setting's), and the final test loss over the whole split as a marker at the end."""
  if test_loss is None or not np.isfinite(test_loss):
    return
  if "test_mean" in curve:
    ax.plot(curve["test_step"], _array(curve["test_mean"]), color=color, ls="--", lw=1.2)
  else:
    ax.plot([0.9 * last_step, last_step], [test_loss, test_loss], color=color, ls="--",
            lw=1.5)
  ax.plot([last_step], [test_loss], color=color, marker="o", ms=4)


def draw_task(ax, task: dict[str, Any], palette: dict[str, Any]) -> None:
  """Curves of one task summary on `ax` (mean over seeds, min-max band)."""
  tops, lows = [], []
  for row in task["rows"]:
    curve = row["curve"]
    steps, mean = np.asarray(curve["step"]), _array(curve["mean"])
    lo, hi = _array(curve["lo"]), _array(curve["hi"])
    color = palette[row["optimizer"]]
    mark = " (diverged)" if row["diverged_runs"] else ""
    ax.plot(steps, mean, color=color, lw=1.5,
            label=f"{row['optimizer']} {row['setting'] if row['setting'] != 'default' else ''}"
            .strip() + mark)
    ax.fill_between(steps, lo, hi, color=color, alpha=0.2, lw=0)
    _draw_test(ax, curve, row.get("test_loss"), steps[-1], color)
    if row.get("test_loss") is not None and np.isfinite(row["test_loss"]):
      tops.append(row["test_loss"])
    if np.isfinite(mean[0]):
      tops.append(mean[0])
    lows.append(np.nanmin(lo, initial=np.inf))
  if task["target"] is not None and np.isfinite(task["target"]):
    ax.axhline(task["target"], color="gray", ls=":", lw=1)  # tuned baseline's final loss
  if min(lows, default=1.0) >= 0 or not tops:  # exact zeros (memorized batches) are masked
    ax.set_yscale("log", nonpositive="mask")
  else:  # a loss that can be negative (e.g. a noisy quadratic): log away from zero
    ax.set_yscale("symlog", linthresh=1e-3 * max(abs(t) for t in tops))
  if tops:
    ax.set_ylim(top=1.5 * max(tops))
  ax.set_xlabel("step")
  ax.set_ylabel("loss (train solid, test dashed)")
  ax.set_title(task["task"] + (" (long horizon)" if task["long_horizon"] else ""), fontsize=9)
  ax.grid(True, which="both", alpha=0.3)


def _slug(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "task"


def write_all(summary: dict[str, Any], directory: pathlib.Path) -> list[pathlib.Path]:
  """Writes `<task>.png` per task and `overview.png`; returns the paths (overview last)."""
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  specs = [r["optimizer"] for t in summary["tasks"] for r in t["rows"]]
  palette = colors(list(dict.fromkeys(specs)))
  paths = []
  for task in summary["tasks"]:
    fig, ax = plt.subplots(figsize=(6, 4))
    draw_task(ax, task, palette)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(directory / f"{_slug(task['task'])}.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
  n = max(1, len(summary["tasks"]))
  cols = min(4, n)
  rows = math.ceil(n / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
  for ax, task in zip(axes.flat, summary["tasks"]):
    draw_task(ax, task, palette)
  for ax in axes.flat[len(summary["tasks"]):]:
    ax.axis("off")
  handles = [plt.Line2D([], [], color=c, lw=2) for c in palette.values()]
  fig.legend(handles, list(palette), loc="lower center", ncol=min(4, len(palette)),
             fontsize=9, frameon=False)
  fig.tight_layout(rect=(0, 0.05, 1, 1))
  paths.append(directory / "overview.png")
  fig.savefig(paths[-1], dpi=90)
  plt.close(fig)
  return paths
