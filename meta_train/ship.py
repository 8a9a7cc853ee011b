r"""Copies a trained checkpoint into the package as a shipped optimizer.

  python -m meta_train.ship --checkpoint=runs/imitate/checkpoints --name=executor

Only the executor's weights and config (which records the command, config and
metrics that produced them) are copied: `learned_opt/weights/NAME/<step>/`.
"""

from __future__ import annotations

import pathlib
import shutil

from absl import app, flags

from learned_opt import checkpoint

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint directory (latest step used).")
_NAME = flags.DEFINE_string("name", "executor", "Shipped name (learned_opt/weights/NAME).")


def ship(source: str, name: str) -> pathlib.Path:
  step_dir, _ = checkpoint.read_config(source)
  checkpoint.restore(source)  # refuse to ship anything that does not load
  target_root = pathlib.Path(__file__).resolve().parent.parent / "learned_opt" / "weights" / name
  if target_root.exists():
    shutil.rmtree(target_root)
  target = target_root / step_dir.name
  for item in ("weights", "config"):
    shutil.copytree(step_dir / item, target / item)
  return target


def main(argv):
  del argv
  print("shipped", ship(_CHECKPOINT.value, _NAME.value))


if __name__ == "__main__":
  flags.mark_flags_as_required(["checkpoint"])
  app.run(main)
