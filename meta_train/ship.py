r"""Copies a trained checkpoint into the package as a shipped optimizer, optionally edited.

  python -m meta_train.ship --checkpoint=runs/imitate/checkpoints --name=executor \
      [--max_time=N] [--set=FIELD=VALUE ...] [--decay_shift=AVERAGE:DELTA ...] \
      [--zero_module=NAME ...] [--target=DIR]

Only the executor's weights and config (which records the command, config and
metrics that produced them) are copied: `learned_opt/weights/NAME/<step>/`.
`--target` writes the copy elsewhere instead of into the package (to evaluate it
first). `--checkpoint=git:COMMIT:PATH` ships a checkpoint directory as it stood
at a commit of this repository (read with `git archive`), so a shipped optimizer
is rebuilt from the repository's history alone.

The shipped config's provenance keeps the source run's record (its command,
config, step and metrics; a command the run did not record is "unknown") and
adds `shipped_with`: this ship command, the git commit it ran at, the source's
path and commit, the step and the edits. Edits:

- `--max_time=N` caps the clock the executor's networks see (HandSet.max_time).
- `--set=FIELD=VALUE` replaces a field of the hand-set record (HandSet) or of the
  architecture (ExecutorConfig), VALUE a Python literal, e.g.
  `--set=step_size_target=-0.02`.
- `--decay_shift=AVERAGE:DELTA` adds DELTA to the hypernet's output bias of a
  running average's raw decay (AVERAGE in config.RUNNING_AVERAGES: first,
  second, node). -log(1 - a) grows by about -DELTA
  where a is near 1 (DELTA = -3 takes a = 0.98 to about 0.999), and the way the
  decay moves with the clock and the rule is kept.
- `--zero_module=NAME` sets a haiku module's parameters to zero, e.g.
  `step_size_head` (the learned per-tensor offsets of the step-size integrator,
  so `step_size_adaptation` and `step_size_target` apply as they are).
"""

from __future__ import annotations

import ast
import dataclasses
import io
import pathlib
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from absl import app, flags

from learned_opt import checkpoint
from learned_opt.executor import ExecutorConfig, HandSet
from learned_opt.executor.config import RUNNING_AVERAGES
from meta_train import provenance

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint directory (latest step used).")
_NAME = flags.DEFINE_string("name", "executor", "Shipped name (learned_opt/weights/NAME).")
_MAX_TIME = flags.DEFINE_integer("max_time", None, "Cap the executor's clock at this step.")
_SET = flags.DEFINE_multi_string("set", [], "FIELD=VALUE: replace a HandSet or ExecutorConfig "
                                  "field.")
_DECAY_SHIFT = flags.DEFINE_multi_string(
    "decay_shift", [], "AVERAGE:DELTA: add DELTA to a running average's raw decay bias.")
_ZERO_MODULE = flags.DEFINE_multi_string("zero_module", [], "Zero this haiku module.")
_TARGET = flags.DEFINE_string("target", None, "Write here instead of into the package.")

HYPERNET_BIAS = ("hypernet_linear", "b")   # raw decays are its first outputs


@dataclasses.dataclass(frozen=True)
class Edits:
  """What to change in a checkpoint on its way into the package (see the module doc)."""
  fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  decay_shifts: Mapping[str, float] = dataclasses.field(default_factory=dict)
  zero_modules: Sequence[str] = ()

  def __bool__(self) -> bool:
    return bool(self.fields or self.decay_shifts or self.zero_modules)

  def as_json(self) -> dict[str, Any]:
    return {"fields": dict(self.fields), "decay_shifts": dict(self.decay_shifts),
            "zero_modules": list(self.zero_modules)}


def parse_edits(sets: Sequence[str] = (), decay_shifts: Sequence[str] = (),
                zero_modules: Sequence[str] = ()) -> Edits:
  """Edits from the flags' strings; refuses malformed ones with what to write instead."""
  fields = {}
  for item in sets:
    key, sep, value = item.partition("=")
    if not sep or not key:
      raise ValueError(f"--set takes FIELD=VALUE (e.g. step_size_target=-0.02), got {item!r}.")
    try:
      fields[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError) as err:
      raise ValueError(f"--set {key}: {value!r} is not a Python literal.") from err
  shifts = {}
  for item in decay_shifts:
    name, sep, delta = item.partition(":")
    if not sep or name not in RUNNING_AVERAGES:
      raise ValueError(f"--decay_shift takes AVERAGE:DELTA with AVERAGE one of "
                       f"{RUNNING_AVERAGES}, got {item!r}.")
    shifts[name] = float(delta)
  return Edits(fields, shifts, tuple(zero_modules))


def apply_edits(weights: Any, config: ExecutorConfig, hand_set: HandSet, edits: Edits
                ) -> tuple[Any, ExecutorConfig, HandSet]:
  """(weights, config, hand_set) with `edits` applied; the inputs are not modified.

  Raises:
    ValueError: a field neither HandSet nor ExecutorConfig has.
    KeyError: a module the weights do not have.
  """
  hand_fields = {f.name for f in dataclasses.fields(HandSet)}
  config_fields = {f.name for f in dataclasses.fields(ExecutorConfig)}
  unknown = sorted(set(edits.fields) - hand_fields - config_fields)
  if unknown:
    raise ValueError(f"HandSet and ExecutorConfig have no field(s) {unknown}; HandSet has "
                     f"{sorted(hand_fields)}, ExecutorConfig {sorted(config_fields)}.")
  weights = jax.tree.map(jnp.asarray, weights)   # fresh containers: restore() caches its own
  for name, delta in edits.decay_shifts.items():
    module, param = HYPERNET_BIAS
    index = RUNNING_AVERAGES.index(name)
    weights[module][param] = weights[module][param].at[index].add(delta)
  for module in edits.zero_modules:
    if module not in weights:
      raise KeyError(f"The checkpoint has no module {module!r}; it has {sorted(weights)}.")
    weights[module] = jax.tree.map(jnp.zeros_like, weights[module])
  config = dataclasses.replace(
      config, **{k: v for k, v in edits.fields.items() if k in config_fields})
  hand_set = dataclasses.replace(
      hand_set, **{k: v for k, v in edits.fields.items() if k in hand_fields})
  return weights, config, hand_set


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


def ship(source: str, name: str, max_time: int | None = None,
         target_root: str | None = None, edits: Edits = Edits()) -> pathlib.Path:
  """Copies the latest step of `source` (a directory or git:COMMIT:PATH), edited.

  `max_time` is the edit `fields={'max_time': max_time}`. Returns the new step
  directory. The weights are written unchanged but for the edits; the config's
  provenance records this ship (see the module doc).
  """
  if max_time is not None:
    edits = dataclasses.replace(edits, fields={**edits.fields, "max_time": int(max_time)})
  with tempfile.TemporaryDirectory() as scratch:
    source_commit = None
    directory = source
    if source.startswith("git:"):
      directory, source_commit = read_git_source(source, pathlib.Path(scratch))
    step_dir, meta = checkpoint.read_config(directory)
    weights, config, hand_set, _ = checkpoint.restore(directory)  # refuse what does not load
    weights, config, hand_set = apply_edits(weights, config, hand_set, edits)
  root = (pathlib.Path(target_root) if target_root else
          pathlib.Path(__file__).resolve().parent.parent / "learned_opt" / "weights" / name)
  record = _known_run_record(dict(meta.get("provenance") or {}))
  earlier_ship = record.pop("shipped_with", None)
  record["shipped_with"] = {
      **provenance.run_record(),
      "source": source.split(":", 2)[2] if source_commit else str(source),
      "source_commit": source_commit or provenance.UNKNOWN,
      "step": int(step_dir.name), **edits.as_json()}
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
  edits = parse_edits(_SET.value, _DECAY_SHIFT.value, _ZERO_MODULE.value)
  print("shipped", ship(_CHECKPOINT.value, _NAME.value, _MAX_TIME.value, _TARGET.value, edits))


if __name__ == "__main__":
  flags.mark_flags_as_required(["checkpoint"])
  app.run(main)
