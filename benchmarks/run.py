"""All benchmarks with their default settings (what `make bench` runs).

  python -m benchmarks.run

1. benchmarks.executor_speed at 1M, 10M and 50M parameters (executor vs
   optax.adam, interleaved; the table is also written to benchmarks/results/), and
   at 4M parameters for the shipped default, `learned_opt.pretrained()`.
2. benchmarks.muon_speed at 1M and 4M parameters (the multi-hop executor conditioned on
   Muon vs optax.contrib.muon, and on Adam vs optax.adam).
3. benchmarks.tasks_inner_speed and meta_train_speed, when present: a module's `main()`
   is called if it takes no arguments, otherwise it runs as a subprocess.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import subprocess
import sys

from benchmarks import executor_speed, muon_speed

_OTHERS = ("benchmarks.tasks_inner_speed", "benchmarks.meta_train_speed")


def _run_module(name: str) -> None:
  if importlib.util.find_spec(name) is None:
    print(f"({name} not present; skipped)")
    return
  module = importlib.import_module(name)
  main = getattr(module, "main", None)
  required = [] if main is None else [
      p for p in inspect.signature(main).parameters.values()
      if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
  if main is not None and not required:
    saved = sys.argv
    sys.argv = [name]  # its argparse sees no flags: defaults
    try:
      main()
    finally:
      sys.argv = saved
  else:
    subprocess.run([sys.executable, "-m", name], check=True)


def main() -> None:
  print("== executor_speed (1M, 10M, 50M parameters) ==", flush=True)
  executor_speed.main(["--sizes=1e6,1e7,5e7"])
  print("\n== executor_speed: the shipped default, learned_opt.pretrained() (4M) ==",
        flush=True)
  executor_speed.main(["--sizes=4e6", "--default",
                       f"--out={executor_speed.RESULTS / 'default_speed.md'}"])
  print("\n== muon_speed (1M, 4M parameters) ==", flush=True)
  muon_speed.main(["--sizes=1e6,4e6"])
  for name in _OTHERS:
    print(f"\n== {name.rsplit('.', 1)[-1]} ==", flush=True)
    _run_module(name)


if __name__ == "__main__":
  main()
