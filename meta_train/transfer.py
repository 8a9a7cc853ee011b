r"""Transfer experiment: Adam learned from scratch vs. after SGD/momentum/RMSProp.

  python -m meta_train.transfer --config=configs/imitate.py:transfer --workdir=DIR

Arm 'scratch' imitates Adam alone for `adam_steps`; arm 'curriculum' imitates
SGD (momentum sampled in [0, 0.95]) and RMSProp for `pretrain_steps`, then adds
Adam for `adam_steps`. Reported: imitation steps on Adam until its median update
cosine (over the logged window) first reaches `cosine_threshold`.
"""

from __future__ import annotations

import json
import pathlib

from absl import app, flags, logging
from ml_collections import config_flags

from meta_train import imitate



def steps_to_threshold(metrics_path: pathlib.Path, start: int, threshold: float) -> int | None:
  for line in metrics_path.read_text().splitlines():
    record = json.loads(line)
    if record["step"] > start and record["cosine"].get("adam", 0.0) >= threshold:
      return record["step"] - start
  return None


def run(config, workdir: str) -> dict:
  root = pathlib.Path(workdir)
  scratch = config.copy_and_resolve_references()
  scratch.stages = ((0, ("adam",)),)
  scratch.num_steps = config.adam_steps
  imitate.train(scratch, str(root / "scratch"))
  curriculum = config.copy_and_resolve_references()
  curriculum.stages = ((0, ("rmsprop", "sgd")), (config.pretrain_steps, ("adam", "rmsprop", "sgd")))
  curriculum.num_steps = config.pretrain_steps + config.adam_steps
  imitate.train(curriculum, str(root / "curriculum"))
  result = {
      "threshold": config.cosine_threshold,
      "scratch_steps": steps_to_threshold(root / "scratch" / "metrics.jsonl", 0,
                                          config.cosine_threshold),
      "curriculum_steps": steps_to_threshold(root / "curriculum" / "metrics.jsonl",
                                             config.pretrain_steps, config.cosine_threshold),
      "adam_steps_budget": config.adam_steps, "pretrain_steps": config.pretrain_steps,
  }
  (root / "transfer.json").write_text(json.dumps(result, indent=1))
  print(json.dumps(result))
  return result


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  run(flags.FLAGS.config, flags.FLAGS.workdir)


if __name__ == "__main__":
  # Flags are defined here, not at import, so other binaries can import this module.
  config_flags.DEFINE_config_file("config", None, "Transfer config.")
  flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics.")
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
