r"""Copies a trained checkpoint into the package as a shipped optimizer, unchanged.

  python -m meta_train.ship --checkpoint=DIR/meta_train/checkpoints --name=NAME [--target=DIR]

Only the executor's weights and config (which records the command, config and
metrics that produced them) are copied: `learned_opt/weights/NAME/<step>/`. The
copy is exactly what the run produced: this command has no flag that changes
behaviour (a hand-designed behaviour enters as a rule the executor imitates).
`--target` writes the copy elsewhere instead of into the package (to evaluate it
first). `--checkpoint=git:COMMIT:PATH` ships a checkpoint directory as it stood
at a commit of this repository (read with `git archive`), so a shipped optimizer
is rebuilt from the repository's history alone.

The shipped config's provenance keeps the source run's record (its command,
config, step and metrics; a command the run did not record is "unknown"; a run
of `meta_train.recipe` records the recipe's command and config) and adds
`shipped_with`: this ship command, the git commit it ran at, the source's path
and commit and the step.
"""

from __future__ import annotations

import io
import json
import pathlib
import shutil
import subprocess
import tarfile
import tempfile

from absl import app, flags

from learned_opt import checkpoint
from meta_train import provenance

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint directory (latest step used).")
_NAME = flags.DEFINE_string("name", "executor", "Shipped name (learned_opt/weights/NAME).")
_TARGET = flags.DEFINE_string("target", None, "Write here instead of into the package.")


def read_git_source(source: str, into: pathlib.Path) -> tuple[pathlib.Path, str]:
  """Extracts `git:COMMIT:PATH` under `into`; returns (the directory, the full commit).

  Raises:
    ValueError: malformed source, unknown commit or a path absent at that commit.
  """
  _, commit, path = (source.split(":", 2) + ["", ""])[:3]
  if not commit or not path:
    raise ValueError(f"--checkpoint=git:COMMIT:PATH needs a commit and a path, got {source!r}.")
  repo = provenance.REPO_ROOT
  resolved = subprocess.run(["git", "rev-parse", "--verify", f"{commit}^{{commit}}"],
                            cwd=repo, capture_output=True, text=True, check=False)
  if resolved.returncode:
    raise ValueError(f"{source}: {commit!r} is not a commit of {repo}.")
  full = resolved.stdout.strip()
  archive = subprocess.run(["git", "archive", "--format=tar", full, path], cwd=repo,
                           capture_output=True, check=False)
  if archive.returncode:
    raise ValueError(f"{source}: no {path!r} at commit {full[:12]} "
                     f"({archive.stderr.decode().strip()}).")
  with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
    tar.extractall(into, filter="data")
  return into / path, full


def _known_run_record(record: dict) -> dict:
  """The source run's provenance with a placeholder command written as "unknown"."""
  command = record.get("command", provenance.UNKNOWN)
  placeholder = "CONFIG" in command or command.endswith("=DIR")
  return dict(record, command=provenance.UNKNOWN if placeholder else command)


def ship(source: str, name: str, target_root: str | None = None) -> pathlib.Path:
  """Copies the latest step of `source` (a directory or git:COMMIT:PATH) unchanged.

  Returns the new step directory; the config's provenance records this ship (see
  the module doc).
  """
  with tempfile.TemporaryDirectory() as scratch:
    source_commit = None
    directory = source
    if source.startswith("git:"):
      directory, source_commit = read_git_source(source, pathlib.Path(scratch))
    step_dir, meta = checkpoint.read_config(directory)
    weights, config, hand_set, _ = checkpoint.restore(directory)  # refuse what does not load
  root = (pathlib.Path(target_root) if target_root else
          pathlib.Path(__file__).resolve().parent.parent / "learned_opt" / "weights" / name)
  record = _known_run_record(dict(meta.get("provenance") or {}))
  recipe = pathlib.Path(directory).parent.parent / "recipe.json"   # DIR/<stage>/checkpoints
  if recipe.is_file():   # the recipe's whole config and the stages it ran
    record["recipe"] = json.loads(recipe.read_text())
  earlier_ship = record.pop("shipped_with", None)
  record["shipped_with"] = {
      **provenance.run_record(),
      "source": source.split(":", 2)[2] if source_commit else str(source),
      "source_commit": source_commit or provenance.UNKNOWN,
      "step": int(step_dir.name)}
  if earlier_ship:   # the source was itself shipped: keep how
    record["shipped_with"]["source_shipped_with"] = earlier_ship
  if root.exists():
    shutil.rmtree(root)
  checkpoint.save(root, weights, config, step=int(step_dir.name),
                  default_rule=meta.get("default_rule"), provenance=record, hand_set=hand_set)
  target = root / step_dir.name
  checkpoint.restore(target)  # the copy loads
  return target


def main(argv):
  del argv
  print("shipped", ship(_CHECKPOINT.value, _NAME.value, _TARGET.value))


if __name__ == "__main__":
  flags.mark_flags_as_required(["checkpoint"])
  app.run(main)
