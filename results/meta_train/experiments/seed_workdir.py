"""Starts an evaluation workdir with another run's complete records of some optimizers.

  PYTHONPATH=. python results/meta_train/experiments/seed_workdir.py CONFIG.py OLD_DIR NEW_DIR \
      "'optax:adam','checkpoint:A','checkpoint:B'" "optax:adam,checkpoint:A"

Writes NEW_DIR/config.json for CONFIG.py with the given optimizers (as
`meta_train.evaluate` would on a fresh start) and copies OLD_DIR's records of the
optimizers named last, so `meta_train.evaluate --config=CONFIG.py --workdir=NEW_DIR
"--config.optimizers=(...)"` resumes there and trains only the others. Valid when
OLD_DIR ran the same config (tasks, seeds, steps): the reused runs are what a new
run would compute again.
"""

import importlib.util
import json
import pathlib
import sys

from meta_train import evaluate


def main(config_path: str, old: str, new: str, optimizers: str, reuse: str) -> None:
  spec = importlib.util.spec_from_file_location("evaluation_config", config_path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.optimizers = tuple(name.strip().strip("'\"") for name in optimizers.split(","))
  new_dir = pathlib.Path(new)
  new_dir.mkdir(parents=True, exist_ok=True)
  evaluate.resumed_records(new_dir, config)   # writes config.json for this config
  kept = set(reuse.split(","))
  lines = [line for line in open(pathlib.Path(old) / "results.jsonl")
           if json.loads(line)["optimizer"] in kept]
  (new_dir / "results.jsonl").write_text("".join(lines))
  print(f"{new}: {len(lines)} records reused from {old}")


if __name__ == "__main__":
  main(*sys.argv[1:6])
