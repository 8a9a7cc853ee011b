"""What each part of the executor step costs, against optax.adam, and where a GPU step's time goes.

  python -m benchmarks.executor_ablation [--size=1e8] [--repeats=41] [--warmup=3]
      [--modes=step,update] [--trace] [--out=FILE|-]

Times, interleaved with optax.adam in one process (benchmarks.executor_speed's
runners: donated buffers, medians), the executor as shipped and with one part
taken away at a time:

  one-pass reductions off: the row and column mean squares as two XLA
                           reductions (learned_opt.graph.ops.row_column; only
                           GPUs take the one-pass kernel)
  direction readout off:   ExecutorConfig(direction_readout=False)
  layer readout off:       ExecutorConfig(layer_readout=False)
  node messages off:       ExecutorConfig(processor="per_edge"): no row/column
                           statistics at all (a zero-hop executor)

With --trace it also records a jax.profiler trace of a few train steps of both
optimizers and lists, from the device's kernel events, the kernels per step,
their total time and every kernel longer than 5 us (needs a GPU: on CPU the
trace has no device kernels and the list is skipped). The Markdown goes to
stdout and to benchmarks/results/executor_ablation_<backend>.md.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import sys
import tempfile
import time

import jax
import optax

from benchmarks import executor_speed
from learned_opt.executor import ExecutorConfig, HandSet
from learned_opt.graph import ops

VARIANTS = {
    "executor": {},
    "one-pass reductions off": {"min_size": float("inf")},
    "direction readout off": {"config": ExecutorConfig(direction_readout=False)},
    "layer readout off": {"config": ExecutorConfig(layer_readout=False)},
    "node messages off": {"config": ExecutorConfig(processor="per_edge")},
}


def _runner(variant: dict, mode: str, params, grads) -> executor_speed._Runner:
  """Builds and compiles one variant (the reductions' threshold is read when tracing)."""
  default = ops.FAST_PATH_MIN_SIZE
  ops.FAST_PATH_MIN_SIZE = variant.get("min_size", default)
  config = variant.get("config")
  try:
    runner = executor_speed._Runner(
        executor_speed.executor_tx(None if config is None else (config, HandSet())),
        mode, params, grads)
    runner.timed()
  finally:
    ops.FAST_PATH_MIN_SIZE = default
  return runner


def ablation(size: float, repeats: int, warmup: int, modes) -> tuple[int, dict]:
  params = executor_speed.mlp_params(size)
  grads = executor_speed.random_like(params, seed=1)
  n = sum(x.size for x in jax.tree.leaves(params))
  results = {}
  for mode in modes:
    runners = {"adam": executor_speed._Runner(optax.adam(1e-3), mode, params, grads)}
    runners.update({name: _runner(v, mode, params, grads) for name, v in VARIANTS.items()})
    results[mode] = executor_speed.time_interleaved(runners, repeats, warmup)
    adam = results[mode]["adam"][0]
    print(f"  {n / 1e6:.1f}M {mode}: adam {1e3 * adam:.3f} ms; " + "; ".join(
        f"{k} {w / adam:.2f}x" for k, (w, _) in results[mode].items() if k != "adam"))
  return n, results


def device_kernels(size: float, steps: int = 5) -> dict[str, list[tuple[str, float]]]:
  """Per optimizer, the device kernels (name, microseconds) of one traced train step."""
  params = executor_speed.mlp_params(size)
  grads = executor_speed.random_like(params, seed=1)
  runners = {"adam": executor_speed._Runner(optax.adam(1e-3), "step", params, grads),
             "executor": _runner({}, "step", params, grads)}
  for runner in runners.values():
    runner.timed()
  kernels = {}
  for name, runner in runners.items():
    with tempfile.TemporaryDirectory() as log_dir:
      with jax.profiler.trace(log_dir, create_perfetto_trace=True):
        for _ in range(steps):
          runner.timed()
      files = glob.glob(f"{log_dir}/**/perfetto_trace.json.gz", recursive=True)
      events = json.load(gzip.open(files[0]))
    events = events["traceEvents"] if isinstance(events, dict) else events
    device_pids = {e["pid"] for e in events if e.get("ph") == "M"
                   and e.get("name") == "process_name"
                   and "/device:" in e.get("args", {}).get("name", "")}
    spans = sorted((e for e in events if e.get("ph") == "X" and e.get("pid") in device_pids),
                   key=lambda e: e["ts"])
    if not spans:
      return {}
    # Steps are separated by idle gaps on the device; keep the last full one.
    groups, current = [], [spans[0]]
    for e in spans[1:]:
      if e["ts"] - (current[-1]["ts"] + current[-1]["dur"]) > 50:
        groups.append(current)
        current = []
      current.append(e)
    groups.append(current)
    kernels[name] = [(e["name"], float(e["dur"])) for e in groups[-1]]
  return kernels


def markdown(n: int, results: dict, kernels: dict) -> str:
  modes = list(results)
  lines = ["| variant | " + " | ".join(f"ratio ({m})" for m in modes) + " |",
           "|---|" + "---|" * len(modes)]
  for name in ["adam", *VARIANTS]:
    cells = []
    for m in modes:
      wall = results[m][name][0]
      cells.append(f"{1e3 * wall:.3f} ms" if name == "adam" else
                   f"{wall / results[m]['adam'][0]:.2f}x")
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  if kernels:
    lines += ["", f"Device kernels of one traced train step at {n / 1e6:.1f}M parameters:", "",
              "| optimizer | kernels | busy us | kernels over 5 us (us) |", "|---|---|---|---|"]
    for name, ks in kernels.items():
      long = ", ".join(f"{k} {d:.0f}" for k, d in ks if d > 5)
      lines.append(f"| {name} | {len(ks)} | {sum(d for _, d in ks):.0f} | {long} |")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--size", type=float, default=1e8)
  parser.add_argument("--repeats", type=int, default=41)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--modes", default="step,update")
  parser.add_argument("--trace", action="store_true")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  modes = tuple(m for m in args.modes.split(",") if m)
  backend = jax.default_backend()
  n, results = ablation(args.size, args.repeats, args.warmup, modes)
  kernels = device_kernels(args.size) if args.trace else {}
  command = executor_speed.command_line("benchmarks.executor_ablation", args)
  text = "\n".join([
      f"# Executor step ablation vs optax.adam ({backend})", "", f"`{command}`", "",
      f"jax {jax.__version__}, optax {optax.__version__}, {jax.devices()[0].device_kind}; "
      f"{n / 1e6:.2f}M parameters; {time.strftime('%Y-%m-%d %H:%M')}. Ratio = median "
      "wall time per call over optax.adam's, interleaved (see benchmarks/executor_speed.py).",
      "", markdown(n, results, kernels), ""])
  print(text)
  executor_speed.write_markdown(text, args.out, f"executor_ablation_{backend}.md")
  return text


if __name__ == "__main__":
  main()
