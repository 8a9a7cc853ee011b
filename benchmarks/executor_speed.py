"""Executor step time and state memory against optax.adam, interleaved in one process.

  python -m benchmarks.executor_speed [--sizes=1e6,1e7,5e7] [--repeats=15] [--warmup=3]
      [--modes=update,step] [--out=FILE|-] [--hlo]

For each size N it builds an MLP-shaped params tree of ~N float32 parameters
(dense layers (w, w), (w, 4w), (4w, w), (w, w) with biases, w a multiple of 64)
and times, alternating the two optimizers call by call (the order flips every
repeat), with block_until_ready, medians over `repeats` after `warmup` calls:

  update: jax.jit(tx.update, donate_argnums=(0, 1))(grads, state, params), a
          fresh copy of grads made (untimed) before each call
  step:   update + optax.apply_updates, params and state donated (a training step
          minus the gradient); Adam's memory floor here is 4 reads + 3 writes
          per parameter.

A random-init executor (`init_weights`, conditioned on adam, lr 1e-3) is timed;
its speed does not depend on its weights. `--default` times the shipped default,
`learned_opt.pretrained()`, as a user gets it. State memory is reported per
parameter: the state subtrees shaped like params (B/param) and everything else
(O(nodes + layers), in bytes). CPU time per call (process_time: all threads,
user + system) is reported beside wall time: on a loaded machine it is the
steadier ratio. A second table counts, in the compiled programs, the
entry-level passes over parameter-sized arrays and the floats they read and
write per parameter (`--hlo` prints them instruction by instruction instead of
timing). The Markdown goes to stdout and to
benchmarks/results/executor_speed_<backend>.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import pathlib
import re
import statistics
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from learned_opt import checkpoint, shipped
from learned_opt.executor import ExecutorConfig, ExecutorOptimizer, HandSet, init_weights

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
DEFAULT_SIZES = (1e6, 1e7, 5e7)


def mlp_params(num_params: float, seed: int = 0) -> dict[str, Any]:
  """~num_params float32 parameters: a transformer-MLP-like stack of dense layers."""
  width = max(64, 64 * round(math.sqrt(num_params / 10) / 64))
  shapes = [(width, width), (width, 4 * width), (4 * width, width), (width, width)]
  rng = np.random.default_rng(seed)
  params = {}
  for i, (n_in, n_out) in enumerate(shapes):
    scale = 1.0 / math.sqrt(n_in)
    params[f"layer_{i}"] = {
        "w": jnp.asarray(scale * rng.standard_normal((n_in, n_out), np.float32)),
        "b": jnp.zeros((n_out,), jnp.float32),
    }
  return params


def random_like(tree: Any, seed: int) -> Any:
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape, np.float32)), tree)


def state_bytes(state: Any, params: Any) -> tuple[float, int]:
  """(bytes per parameter in params-shaped state subtrees, bytes of all other state)."""
  treedef = jax.tree.structure(params)
  shapes = [tuple(x.shape) for x in jax.tree.leaves(params)]

  def like_params(x):
    return (jax.tree.structure(x) == treedef
            and [tuple(y.shape) for y in jax.tree.leaves(x)] == shapes)

  def nbytes(x):
    return sum(math.prod(y.shape) * jnp.dtype(y.dtype).itemsize for y in jax.tree.leaves(x))

  parts = jax.tree.leaves(state, is_leaf=like_params)
  n = sum(math.prod(s) for s in shapes)
  per_param = sum(nbytes(p) for p in parts if like_params(p)) / n
  other = sum(nbytes(p) for p in parts if not like_params(p))
  return per_param, other


def architecture_of(source: str) -> tuple[ExecutorConfig, HandSet]:
  """The ExecutorConfig and HandSet of a checkpoint directory or of 'shipped:NAME'."""
  with shipped.source_path(source) as path:
    return checkpoint.executor_records(checkpoint.read_config(path)[1])


def executor_tx(records: tuple[ExecutorConfig, HandSet] | str | None = None
                ) -> optax.GradientTransformation:
  """A random-init executor of `records` (default: ExecutorConfig(), HandSet()) on Adam,
  or with records='default' the shipped default itself, `learned_opt.pretrained()`."""
  if records == "default":
    return shipped.pretrained()
  config, hand_set = records or (ExecutorConfig(), HandSet())
  weights = init_weights(config, jax.random.PRNGKey(0))
  return ExecutorOptimizer(weights, config, "adam", {"learning_rate": 1e-3},
                           hand_set).as_optax()


class _Runner:
  """One optimizer's jitted call with its own donated buffers."""

  def __init__(self, tx, mode: str, params, grads):
    self.grads = grads
    self.state = tx.init(params)
    self._prepare = lambda: None
    if mode == "update":
      # Gradients and state are donated: jax pairs donated buffers with outputs of the
      # same shape in order, so donating the state alone would hand the s1 buffers to
      # the (params-shaped) updates and force copies. A fresh copy of the gradients is
      # made before each call, outside the timed region.
      self.params = params  # read only, shared by both optimizers
      fn = jax.jit(tx.update, donate_argnums=(0, 1))
      self._lower = lambda: fn.lower(self.grads, self.state, self.params)
      self._fresh = None

      def prepare():
        self._fresh = jax.block_until_ready(jax.tree.map(jnp.copy, self.grads))

      def call():
        updates, self.state = fn(self._fresh, self.state, self.params)
        self._fresh = None
        return updates
      self._prepare = prepare
    else:
      self.params = jax.tree.map(jnp.copy, params)  # donated: one copy per optimizer

      def train_step(p, s, g):
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

      fn = jax.jit(train_step, donate_argnums=(0, 1))
      self._lower = lambda: fn.lower(self.params, self.state, self.grads)

      def call():
        self.params, self.state = fn(self.params, self.state, self.grads)
        return self.params
    self._call = call

  def compiled_text(self) -> str:
    return self._lower().compile().as_text()

  def timed(self) -> tuple[float, float]:
    """(wall seconds, process CPU seconds: all threads, user + system) of one call."""
    self._prepare()
    c0, t0 = time.process_time(), time.perf_counter()
    jax.block_until_ready(self._call())
    return time.perf_counter() - t0, time.process_time() - c0


def time_interleaved(runners: dict[str, _Runner], repeats: int, warmup: int
                     ) -> dict[str, tuple[float, float]]:
  """Median (wall, CPU) seconds per call; runners alternate, the order flips each repeat."""
  names = list(runners)
  for _ in range(warmup):
    for name in names:
      runners[name].timed()
  times = {name: [] for name in names}
  for r in range(repeats):
    for name in (names if r % 2 == 0 else names[::-1]):
      times[name].append(runners[name].timed())
  return {name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
          for name, t in times.items()}


_HLO_LINE = re.compile(r"^\s*(?:ROOT )?%([\w.-]+) = (.+?) ([\w-]+)\((.*?)\)(?:, |$)")
_HLO_ARRAY = re.compile(r"\b(pred|bf16|[fsu]\d+)\[([0-9,]*)\]")
_NO_TRAFFIC = {"parameter", "tuple", "get-tuple-element", "bitcast", "constant"}


def _arrays(type_text: str) -> list[tuple[int, int]]:
  """(elements, bytes) of every array in an HLO type (a tuple gives several)."""
  out = []
  for dtype, dims in _HLO_ARRAY.findall(type_text):
    n = math.prod(int(d) for d in dims.split(",") if d)
    bits = 1 if dtype == "pred" else int(re.sub(r"\D", "", dtype) or 16)
    out.append((n, max(1, n * bits // 8)))
  return out


def hlo_passes(hlo_text: str, min_elements: int) -> list[tuple[str, str, int, int]]:
  """Entry-computation instructions that read or write arrays of >= min_elements.

  Returns (name, opcode, bytes read, bytes written) counting only those large
  arrays: each row is one pass over parameter-sized memory.
  """
  entry = hlo_text[hlo_text.index("\nENTRY"):]
  entry = entry[:entry.index("\n}")]
  types: dict[str, str] = {}
  rows = []
  for line in entry.splitlines()[1:]:
    m = _HLO_LINE.match(line)
    if not m:
      continue
    name, type_text, opcode, operands = m.groups()
    types[name] = type_text
    if opcode in _NO_TRAFFIC:
      continue
    written = sum(b for n, b in _arrays(type_text) if n >= min_elements)
    read = sum(b for op in re.findall(r"%([\w.-]+)", operands) if op in types
               for n, b in _arrays(types[op]) if n >= min_elements)
    if read or written:
      rows.append((name, opcode, read, written))
  return rows


def traffic(runner: "_Runner", params) -> tuple[list, float, float]:
  """(passes, floats read per parameter, floats written per parameter) of a compiled call.

  Counts entry-level instructions (fusions, reductions, copies) that touch arrays
  at least as large as the smallest rank >= 2 parameter.
  """
  n = sum(x.size for x in jax.tree.leaves(params))
  smallest = min(x.size for x in jax.tree.leaves(params) if x.ndim >= 2)
  rows = hlo_passes(runner.compiled_text(), smallest)
  return rows, sum(r[2] for r in rows) / 4 / n, sum(r[3] for r in rows) / 4 / n


def print_hlo_passes(tx, mode: str, params, grads, label: str) -> None:
  n = sum(x.size for x in jax.tree.leaves(params))
  rows, read, written = traffic(_Runner(tx, mode, params, grads), params)
  print(f"{label} ({mode}): {len(rows)} instructions touch the {len(jax.tree.leaves(params))} "
        f"parameter-sized arrays; {read:.1f} floats read + {written:.1f} written per parameter")
  for name, opcode, r, w in rows:
    print(f"    {name:40s} {opcode:10s} read {r / 4 / n:5.2f}  write {w / 4 / n:5.2f} floats/param")


def load_average() -> str:
  try:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
  except OSError:
    return "n/a"


def benchmark(sizes, repeats: int, warmup: int, modes=("update", "step"),
              log: Callable[[str], None] = print,
              records: tuple[ExecutorConfig, HandSet] | str | None = None
              ) -> list[dict[str, Any]]:
  tx_exec = executor_tx(records)
  tx_adam = optax.adam(1e-3)
  rows = []
  for size in sizes:
    params = mlp_params(size)
    grads = random_like(params, seed=1)
    n = sum(x.size for x in jax.tree.leaves(params))
    row: dict[str, Any] = {"params": n}
    for mode in modes:
      runners = {"adam": _Runner(tx_adam, mode, params, grads),
                 "executor": _Runner(tx_exec, mode, params, grads)}
      if mode == modes[0]:
        row["adam_state"] = state_bytes(runners["adam"].state, params)
        row["exec_state"] = state_bytes(runners["executor"].state, params)
      if size == sizes[0]:
        try:
          row[f"traffic_{mode}"] = {k: traffic(r, params) for k, r in runners.items()}
        except (ValueError, IndexError) as e:  # another backend's HLO text
          log(f"  (no pass counts on {jax.default_backend()}: {type(e).__name__}: {e})")
          row[f"traffic_{mode}"] = {}
      med = time_interleaved(runners, repeats, warmup)
      row[mode] = med
      (aw, ac), (ew, ec) = med["adam"], med["executor"]
      log(f"  {n / 1e6:.1f}M {mode}: adam {1e3 * aw:.2f} ms, executor {1e3 * ew:.2f} ms, "
          f"ratio {ew / aw:.2f} (CPU time ratio {ec / ac:.2f}; load {load_average()})")
      del runners
    rows.append(row)
    del params, grads
  return rows


def markdown(rows: list[dict[str, Any]], modes) -> str:
  head = ["params"]
  for mode in modes:
    head += [f"adam {mode} ms", f"executor {mode} ms", f"ratio ({mode})", f"CPU-time ratio ({mode})"]
  head += ["adam state B/param", "executor state B/param", "executor O(nodes) state"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for row in rows:
    cells = [f"{row['params'] / 1e6:.2f}M"]
    for mode in modes:
      (aw, ac), (ew, ec) = row[mode]["adam"], row[mode]["executor"]
      cells += [f"{1e3 * aw:.2f}", f"{1e3 * ew:.2f}", f"{ew / aw:.2f}x", f"{ec / ac:.2f}x"]
    (ap, ao), (ep, eo) = row["adam_state"], row["exec_state"]
    cells += [f"{ap:.2f} (+{ao} B)", f"{ep:.2f}", f"{eo / 1024:.1f} KiB"]
    lines.append("| " + " | ".join(cells) + " |")
  first = rows[0]
  lines += ["", f"Compiled programs at {first['params'] / 1e6:.2f}M parameters: entry-level "
            "instructions that touch parameter-sized arrays (passes) and the floats they read "
            "and write per parameter.", "",
            "| mode | optimizer | passes | floats read / param | floats written / param |",
            "|---|---|---|---|---|"]
  for mode in modes:
    for name, (passes, read, written) in first[f"traffic_{mode}"].items():
      lines.append(f"| {mode} | {name} | {len(passes)} | {read:.1f} | {written:.1f} |")
  return "\n".join(lines)


def command_line(module: str, args: argparse.Namespace) -> str:
  """The `python -m` command that reproduces a run with these parsed flags."""
  return f"python -m {module} " + " ".join(
      f"--{k}" if v is True else f"--{k}={v}" for k, v in vars(args).items()
      if v not in (None, False))


def write_markdown(text: str, out: str | None, default_name: str) -> None:
  """Writes a result table to `out` (default RESULTS/default_name); '-' writes nothing."""
  if out == "-":
    return
  path = pathlib.Path(out) if out else RESULTS / default_name
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  print(f"\nwrote {path}")


def main(argv: list[str] | None = None) -> str:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default=",".join(f"{s:g}" for s in DEFAULT_SIZES),
                      help="comma-separated parameter counts, e.g. 1e6,1e7,5e7")
  parser.add_argument("--repeats", type=int, default=15)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--modes", default="update,step",
                      help="update (tx.update alone) and/or step (update + apply_updates)")
  parser.add_argument("--out", default=None,
                      help="Markdown file (default benchmarks/results/executor_speed_<backend>.md); "
                           "'-' for none")
  parser.add_argument("--architecture_of", default=None,
                      help="time the architecture of this checkpoint directory (or "
                           "'shipped:NAME'), random-init, with its hand-set record; default: "
                           "ExecutorConfig(), HandSet()")
  parser.add_argument("--controller_hidden", type=int, default=None,
                      help="with --architecture_of: time that architecture with this "
                           "controller width instead (0: without the learned controller)")
  parser.add_argument("--default", action="store_true",
                      help="time learned_opt.pretrained(), the shipped default with its own "
                           "weights and conditioning, instead of a random-init executor")
  parser.add_argument("--hlo", action="store_true",
                      help="only print, per size and mode, the compiled programs' passes over "
                           "parameter-sized arrays (no timing)")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  sizes = [float(s) for s in args.sizes.split(",") if s]
  modes = tuple(m for m in args.modes.split(",") if m)
  records = architecture_of(args.architecture_of) if args.architecture_of else None
  if records is not None and args.controller_hidden is not None:
    records = (dataclasses.replace(records[0], controller_hidden=args.controller_hidden,
                                   controller_messages=False), records[1])
  if args.default:
    records = "default"
  if args.hlo:
    txs = {"adam": optax.adam(1e-3), "executor": executor_tx(records)}
    for size in sizes:
      params = mlp_params(size)
      grads = random_like(params, seed=1)
      for mode in modes:
        for label, tx in txs.items():
          print_hlo_passes(tx, mode, params, grads, f"{label} {size:g}")
    return ""
  backend = jax.default_backend()
  load_before = load_average()
  print(f"executor vs optax.adam on {backend} ({os.cpu_count()} CPUs), load {load_before}")
  rows = benchmark(sizes, args.repeats, args.warmup, modes, records=records)
  load_after = load_average()
  table = markdown(rows, modes)
  command = command_line("benchmarks.executor_speed", args)
  header = "\n".join([
      f"# Executor step vs optax.adam ({backend})", "",
      f"`{command}`", "",
      f"jax {jax.__version__}, optax {optax.__version__}, {jax.devices()[0].device_kind}, "
      f"{os.cpu_count()} CPUs; load average (1/5/15 min) before {load_before}, "
      f"after {load_after}; {time.strftime('%Y-%m-%d %H:%M')}.", "",
      "Median per call over interleaved repeats (adam and executor alternate; donated "
      "buffers on both sides). *update*: `jit(tx.update, donate_argnums=(0, 1))` (grads "
      "and state donated; a fresh copy of grads, untimed, before each call); *step*: update + "
      "`optax.apply_updates`, params and state donated. Ratio = executor / adam. "
      "CPU-time ratio: the same for process CPU time (user + system, all threads), which "
      "a loaded machine disturbs less than wall time. State: bytes per parameter in "
      "params-shaped state trees; the executor's other state (row/column node moments, "
      "graph state) in total.", ""])
  text = header + "\n" + table + "\n"
  print()
  print(table)
  write_markdown(text, args.out, f"executor_speed_{backend}.md")
  return text


if __name__ == "__main__":
  main()
