r"""One command from nothing to the shipped default: every imitation and meta-training stage.

  python -m meta_train.recipe --config=configs/pretrained.py --workdir=DIR
  python -m meta_train.ship --checkpoint=DIR/<last stage>/checkpoints --name=NAME

`config.stage_order` names the stages; `config.<stage>` is that stage's config and
`config.stage_kinds[stage]` its kind: 'imitate' (meta_train.imitate) or
'meta_train' (meta_train.train). Each stage writes DIR/<stage>/; an
`init_from='stage:NAME'` reads stage NAME's last checkpoint. A stage whose last
checkpoint reached its `num_steps` is done and skipped; an unfinished one resumes
from its last checkpoint, so the recipe may be killed at any point and run again
with the same command, and it ends bit-identical to an uninterrupted run (every
stage's randomness comes from its seed and step). Every checkpoint records this
command, the recipe's config and the commit (its provenance), and DIR/recipe.json
what ran and where the final checkpoint is.
"""

from __future__ import annotations

import copy
import json
import pathlib
from typing import Any

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from meta_train import imitate, provenance
from meta_train import train as train_lib

KINDS = ("imitate", "meta_train")
STAGE_PREFIX = "stage:"


def checkpoints_of(workdir: str | pathlib.Path, stage: str) -> pathlib.Path:
  """Where stage `stage` of a recipe in `workdir` writes its checkpoints."""
  return pathlib.Path(workdir).absolute() / stage / "checkpoints"


def last_step(directory: pathlib.Path) -> int | None:
  """The latest finished checkpoint step under `directory`, or None (orbax writes a step
  under a temporary name and renames it to the step number when it is complete)."""
  if not directory.is_dir():
    return None
  steps = [int(d.name) for d in directory.iterdir() if d.is_dir() and d.name.isdigit()]
  return max(steps) if steps else None


def check(config: ml_collections.ConfigDict) -> None:
  """Refuses a recipe whose stages or references do not fit, before anything runs."""
  order = tuple(config.stage_order)
  if not order:
    raise ValueError("config.stage_order is empty: name at least one stage.")
  for index, stage in enumerate(order):
    if stage not in config or stage not in config.stage_kinds:
      raise ValueError(f"Stage {stage!r} of config.stage_order needs config.{stage} (its "
                       f"config) and config.stage_kinds.{stage} (one of {KINDS}).")
    kind = config.stage_kinds[stage]
    if kind not in KINDS:
      raise ValueError(f"config.stage_kinds.{stage}={kind!r}; use one of {KINDS}.")
    source = config[stage].get("init_from", "")
    if source.startswith(STAGE_PREFIX) and source[len(STAGE_PREFIX):] not in order[:index]:
      raise ValueError(f"Stage {stage!r} starts from {source!r}, which is not an earlier "
                       f"stage of {order}.")


def stage_config(config: ml_collections.ConfigDict, stage: str, workdir: str
                 ) -> ml_collections.ConfigDict:
  """Stage `stage`'s config with a 'stage:NAME' init_from resolved to that stage's
  checkpoints."""
  out = copy.deepcopy(config[stage])
  source = out.get("init_from", "")
  if source.startswith(STAGE_PREFIX):
    with out.unlocked():
      out.init_from = str(checkpoints_of(workdir, source[len(STAGE_PREFIX):]))
  return out


def run(config: ml_collections.ConfigDict, workdir: str) -> pathlib.Path:
  """Runs (or resumes) every stage; returns the final checkpoint directory."""
  provenance.git_state()   # read now: every record names the commit the run started at
  check(config)
  root = pathlib.Path(workdir)
  root.mkdir(parents=True, exist_ok=True)
  finished = {}
  for stage in config.stage_order:
    cfg = stage_config(config, stage, workdir)
    step = last_step(checkpoints_of(workdir, stage))
    if step is None or step < cfg.num_steps:
      print(f"recipe: stage {stage} ({config.stage_kinds[stage]}) from step {step or 0} "
            f"to {cfg.num_steps}", flush=True)
      trainer = imitate.train if config.stage_kinds[stage] == "imitate" else train_lib.train
      trainer(cfg, str(root / stage))
    finished[stage] = last_step(checkpoints_of(workdir, stage))
  final = checkpoints_of(workdir, config.stage_order[-1])
  record = {**provenance.run_record(), "config": json.loads(config.to_json_best_effort()),
            "stages": finished, "final_checkpoint": str(final)}
  (root / "recipe.json").write_text(json.dumps(record, indent=1, default=str))
  print(f"recipe: done; ship with python -m meta_train.ship --checkpoint={final} "
        "--name=NAME", flush=True)
  return final


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  run(flags.FLAGS.config, flags.FLAGS.workdir)


if __name__ == "__main__":
  config_flags.DEFINE_config_file("config", None, "Recipe config (configs/pretrained.py).")
  flags.DEFINE_string("workdir", None, "Directory of every stage's checkpoints.")
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
