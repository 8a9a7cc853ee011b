"""The multi-hop executor conditioned on Muon against optax.contrib.muon, in one process.

  python -m benchmarks.muon_speed [--sizes=1e6,4e6] [--repeats=15] [--warmup=3] [--out=FILE|-]

Per size N (benchmarks.executor_speed's MLP-shaped tree of ~N float32 parameters)
it times training steps (update + apply_updates, params and state donated),
alternating call by call, medians over `repeats`:

  muon            optax.contrib.muon(1e-3)
  executor:muon   ExecutorConfig(processor='multi_hop') conditioned on 'muon'
  rule:muon       learned_opt.algorithms' Muon (the rule the executor imitates; its
                  rounds are the same two-hop passes, graph.ops.two_hop)
  adam            optax.adam(1e-3)
  executor:adam   the same executor conditioned on 'adam' (no rounds run)
  row_column:adam ExecutorConfig() (the one-hop processor) conditioned on 'adam'

and reports executor:muon / muon and the two executors' ratios to adam. The
executors are random-init; their speed does not depend on their weights (the
rounds run whatever the learned mix). The Markdown goes to stdout and to
benchmarks/results/muon_speed_<backend>.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import jax
import optax

from benchmarks import executor_speed as speed
from learned_opt.executor import ExecutorConfig, ExecutorOptimizer, init_weights
from learned_opt.executor.conditioning import EXTRA_KEYS

MULTI_HOP = ExecutorConfig(processor="multi_hop", extra_keywords=EXTRA_KEYS)


def _executor(config: ExecutorConfig, algorithm: str) -> optax.GradientTransformation:
  weights = init_weights(config, jax.random.PRNGKey(0))
  return ExecutorOptimizer(weights, config, algorithm, {"learning_rate": 1e-3}).as_optax()


def optimizers() -> dict[str, optax.GradientTransformation]:
  from learned_opt import algorithms  # pylint: disable=import-outside-toplevel
  return {"muon": optax.contrib.muon(1e-3), "executor:muon": _executor(MULTI_HOP, "muon"),
          "rule:muon": algorithms.get("muon", learning_rate=1e-3).as_optax(),
          "adam": optax.adam(1e-3), "executor:adam": _executor(MULTI_HOP, "adam"),
          "row_column:adam": _executor(ExecutorConfig(), "adam")}


def benchmark(sizes, repeats: int, warmup: int) -> list[dict[str, Any]]:
  rows = []
  txs = optimizers()
  for size in sizes:
    params = speed.mlp_params(size)
    grads = speed.random_like(params, seed=1)
    runners = {name: speed._Runner(tx, "step", params, grads)  # pylint: disable=protected-access
               for name, tx in txs.items()}
    med = speed.time_interleaved(runners, repeats, warmup)
    row = {"params": sum(x.size for x in jax.tree.leaves(params)), "times": med,
           "state": {name: speed.state_bytes(r.state, params) for name, r in runners.items()},
           "load": speed.load_average()}
    wall = {name: w for name, (w, _) in med.items()}
    print(f"  {row['params'] / 1e6:.1f}M: executor:muon / muon "
          f"{wall['executor:muon'] / wall['muon']:.2f}, "
          f"executor:adam / adam {wall['executor:adam'] / wall['adam']:.2f}, "
          f"row_column:adam / adam {wall['row_column:adam'] / wall['adam']:.2f} "
          f"(load {row['load']})", flush=True)
    rows.append(row)
    del runners, params, grads
  return rows


def markdown(rows: list[dict[str, Any]], command: str) -> str:
  names = list(rows[0]["times"])
  lines = [f"# Multi-hop executor vs optax.contrib.muon ({jax.default_backend()})", "",
           f"`{command}`", "",
           "Training steps (update + apply_updates), median wall ms (CPU-time ms); ratios "
           "of wall times.", "",
           "| params | " + " | ".join(names) + " | executor:muon / muon | executor:muon / "
           "rule:muon | executor:adam / adam | row_column:adam / adam | load |",
           "|" + "---|" * (len(names) + 6)]
  for row in rows:
    t = row["times"]
    ratio = lambda a, b: t[a][0] / t[b][0]  # noqa: E731
    cells = [f"{1e3 * w:.2f} ({1e3 * c:.2f})" for w, c in t.values()]
    lines.append(f"| {row['params'] / 1e6:.1f}M | " + " | ".join(cells)
                 + f" | {ratio('executor:muon', 'muon'):.2f} | "
                 f"{ratio('executor:muon', 'rule:muon'):.2f} | "
                 f"{ratio('executor:adam', 'adam'):.2f} | "
                 f"{ratio('row_column:adam', 'adam'):.2f} | {row['load']} |")
  lines += ["", "State, bytes per parameter (params-shaped subtrees) + other bytes:", ""]
  for name, (per_param, other) in rows[-1]["state"].items():
    lines.append(f"- {name}: {per_param:.1f} B/param + {other} B")
  return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="1e6,4e6")
  parser.add_argument("--repeats", type=int, default=15)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--out", default=None,
                      help="Markdown file (default benchmarks/results/muon_speed_<backend>.md); "
                           "'-' for none")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  rows = benchmark([float(s) for s in args.sizes.split(",") if s], args.repeats, args.warmup)
  text = markdown(rows, speed.command_line("benchmarks.muon_speed", args))
  print("\n" + text)
  speed.write_markdown(text, args.out, f"muon_speed_{jax.default_backend()}.md")
  return text


if __name__ == "__main__":
  main()
