r"""Copies a trained checkpoint into the package as a shipped optimizer.

  python -m meta_train.ship --checkpoint=runs/imitate/checkpoints --name=executor \
      [--max_time=N] [--target=DIR]

Only the executor's weights and config (which records the command, config and
metrics that produced them) are copied: `learned_opt/weights/NAME/<step>/`.
`--max_time` caps the clock the executor's networks see (ExecutorConfig.max_time;
the change is recorded in the config's provenance); `--target` writes the copy
elsewhere instead of into the package (to evaluate it first).
"""

from __future__ import annotations

import json
import pathlib
import shutil

from absl import app, flags

from learned_opt import checkpoint

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint directory (latest step used).")
_NAME = flags.DEFINE_string("name", "executor", "Shipped name (learned_opt/weights/NAME).")
_MAX_TIME = flags.DEFINE_integer("max_time", None, "Cap the executor's clock at this step.")
_TARGET = flags.DEFINE_string("target", None, "Write here instead of into the package.")


def ship(source: str, name: str, max_time: int | None = None,
         target_root: str | None = None) -> pathlib.Path:
  """Copies the latest step of `source`; returns the new step directory."""
  step_dir, meta = checkpoint.read_config(source)
  checkpoint.restore(source)  # refuse to ship anything that does not load
  root = (pathlib.Path(target_root) if target_root else
          pathlib.Path(__file__).resolve().parent.parent / "learned_opt" / "weights" / name)
  if root.exists():
    shutil.rmtree(root)
  target = root / step_dir.name
  for item in ("weights", "config"):
    shutil.copytree(step_dir / item, target / item)
  if max_time is not None:
    meta["executor"]["max_time"] = int(max_time)
    meta["provenance"]["shipped_with"] = f"meta_train.ship --max_time={int(max_time)}"
    for path in (target / "config").iterdir():
      if path.is_file() and path.suffix != ".txt":
        try:
          json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
          continue
        path.write_text(json.dumps(meta))
    checkpoint.restore(target)  # the edited config still loads
  return target


def main(argv):
  del argv
  print("shipped", ship(_CHECKPOINT.value, _NAME.value, _MAX_TIME.value, _TARGET.value))


if __name__ == "__main__":
  flags.mark_flags_as_required(["checkpoint"])
  app.run(main)
