"""Executor checkpoints: orbax directories that carry their own config.

Layout (an orbax CheckpointManager directory):

  DIR/<step>/weights/   the executor's haiku weights (orbax StandardSave)
  DIR/<step>/config/    JSON: format, format_version, the executor's architecture
                        ('executor': ExecutorConfig) and, beside it, what was set
                        by hand ('hand_set': HandSet), the rule conditioning it
                        defaults to, and provenance

`load(DIR)` needs nothing else. It accepts a manager directory (latest step) or
one step directory, and refuses a missing, foreign, corrupt or newer-format
directory with an error that says which.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
from typing import Any, Mapping, NamedTuple

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp

FORMAT = "learned_opt.executor"
FORMAT_VERSION = 3
# Version 2 (learned_opt 0.2): the normalizer gained epsilon and a soft sign in place of
# |n|^w, and the edge network reads (g, s1'); version-1 weights do not fit it.
# Version 3: the architecture ('executor') and the hand-set record ('hand_set') apart;
# a version-2 config's one flat record is split into the two (config.split_flat).
OLDEST_READABLE_VERSION = 2


class CheckpointError(ValueError):
  """A directory that is not a loadable learned_opt checkpoint."""


def _to_jsonable(value: Any) -> Any:
  if isinstance(value, Mapping):
    return {str(k): _to_jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_to_jsonable(v) for v in value]
  if isinstance(value, (np.generic, np.ndarray)):
    return value.tolist()
  if callable(value):
    raise TypeError("a schedule (callable) cannot be stored in a checkpoint config; store "
                    "a float learning rate and rebuild the schedule when loading")
  return value


class Restored(NamedTuple):
  """What `restore` reads from a checkpoint."""
  weights: Any
  config: Any       # ExecutorConfig: the architecture
  hand_set: Any     # HandSet: what was set by hand
  meta: dict[str, Any]


def save(directory: str | os.PathLike, weights: Any, config: Any, step: int = 0,
         default_rule: Mapping[str, Any] | None = None,
         provenance: Mapping[str, Any] | None = None, max_to_keep: int | None = 3,
         hand_set: Any = None) -> str:
  """Writes weights, config and hand-set record as step `step` of an orbax
  CheckpointManager directory.

  Args:
    directory: the checkpoint directory (created if missing).
    weights: the executor's weights (a pytree of arrays).
    config: its `ExecutorConfig`.
    step: the step number to save under.
    default_rule: {'algorithm': name, **optax_kwargs} that `load` conditions on when
      the caller names no rule.
    provenance: free-form JSON (command, config, metrics) recorded beside it.
    max_to_keep: how many steps the manager keeps.
    hand_set: its `HandSet` (None: nothing set by hand).

  Returns:
    The absolute directory path.
  """
  directory = os.path.abspath(os.fspath(directory))
  meta = metadata(config, default_rule, provenance, hand_set)
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
  with ocp.CheckpointManager(directory, options=options) as manager:
    manager.save(step, args=ocp.args.Composite(
        weights=ocp.args.StandardSave(jax.device_get(weights)),
        config=ocp.args.JsonSave(meta)), force=True)
    manager.wait_until_finished()
  return directory


def metadata(config: Any, default_rule: Mapping[str, Any] | None = None,
             provenance: Mapping[str, Any] | None = None,
             hand_set: Any = None) -> dict[str, Any]:
  """The JSON config item of a checkpoint (format, version, architecture, hand-set
  record, default rule, provenance)."""
  from learned_opt.executor.config import HandSet  # pylint: disable=import-outside-toplevel
  return {"format": FORMAT, "format_version": FORMAT_VERSION,
          "executor": config.to_json(),
          "hand_set": (hand_set if hand_set is not None else HandSet()).to_json(),
          "default_rule": _to_jsonable(dict(default_rule or {})),
          "provenance": _to_jsonable(dict(provenance or {}))}


def _step_dir(directory: pathlib.Path) -> pathlib.Path:
  if not directory.exists():
    raise FileNotFoundError(f"No checkpoint at {directory}: the directory does not exist.")
  if (directory / "config").is_dir() and (directory / "weights").is_dir():
    return directory
  steps = sorted((int(p.name) for p in directory.iterdir()
                  if p.is_dir() and p.name.isdigit()), reverse=True)
  for step in steps:
    candidate = directory / str(step)
    if (candidate / "config").is_dir() and (candidate / "weights").is_dir():
      return candidate
  raise CheckpointError(
      f"{directory} is not a learned_opt checkpoint: expected numbered step directories "
      "holding 'weights/' and 'config/' (written by learned_opt.checkpoint.save or "
      "meta_train), found " + (", ".join(sorted(p.name for p in directory.iterdir())) or
                               "an empty directory") + ".")


def read_config(directory: str | os.PathLike) -> tuple[pathlib.Path, dict[str, Any]]:
  """Finds the step directory and reads and validates its JSON config."""
  step_dir = _step_dir(pathlib.Path(directory).expanduser().absolute())
  config_dir = step_dir / "config"
  files = [p for p in config_dir.iterdir() if p.is_file()]
  try:
    data = None
    for candidate in files:
      try:
        data = json.loads(candidate.read_text())
        break
      except (json.JSONDecodeError, UnicodeDecodeError):
        continue
  except OSError as e:
    raise CheckpointError(f"Cannot read the config of checkpoint {step_dir}: {e}") from e
  if not isinstance(data, dict):
    raise CheckpointError(f"Checkpoint {step_dir} has no readable JSON config in "
                          f"{config_dir}: it is corrupt or was not written by learned_opt.")
  if data.get("format") != FORMAT:
    raise CheckpointError(f"{step_dir} is a foreign checkpoint (format "
                          f"{data.get('format')!r}, expected {FORMAT!r}).")
  version = data.get("format_version")
  if not isinstance(version, int) or version > FORMAT_VERSION:
    raise CheckpointError(f"{step_dir} has format version {version!r}, newer than this "
                          f"learned_opt reads ({FORMAT_VERSION}). Upgrade learned_opt.")
  if version < OLDEST_READABLE_VERSION:
    raise CheckpointError(f"{step_dir} has format version {version}, written for an older "
                          f"executor architecture (this learned_opt reads "
                          f"{OLDEST_READABLE_VERSION}-{FORMAT_VERSION}). Re-train it with "
                          "`python -m meta_train.imitate` or load it with learned_opt 0.1.")
  return step_dir, data


def executor_records(meta: Mapping[str, Any]) -> tuple[Any, Any]:
  """(ExecutorConfig, HandSet) of a checkpoint's JSON config (any readable version).

  Raises:
    CheckpointError: a version-2 record that used an option frozen away since, or
      records this learned_opt cannot read, with the reason.
  """
  from learned_opt.executor import config as config_lib  # pylint: disable=import-outside-toplevel
  try:
    if meta.get("format_version") == 2:
      return config_lib.split_flat(meta["executor"])
    return (config_lib.ExecutorConfig.from_json(meta["executor"]),
            config_lib.HandSet.from_json(meta.get("hand_set", {})))
  except (ValueError, TypeError) as e:
    raise CheckpointError(f"Cannot read the executor of this checkpoint: {e}") from e


def restore(directory: str | os.PathLike) -> Restored:
  """Reads (weights, ExecutorConfig, HandSet, metadata) from a checkpoint directory.

  Results are cached per step directory and modification time, so factories that
  re-load inside `optax.inject_hyperparams` do not re-read the disk every step.
  """
  step_dir, meta = read_config(directory)
  stamp = max(p.stat().st_mtime_ns for p in step_dir.rglob("*"))
  weights, config, hand_set = _restore_weights(str(step_dir), stamp, json.dumps(meta))
  return Restored(weights, config, hand_set, meta)


@functools.lru_cache(maxsize=16)
def _restore_weights(step_dir_name: str, stamp: int, meta_json: str) -> tuple[Any, Any, Any]:
  from learned_opt.executor import network  # pylint: disable=import-outside-toplevel
  del stamp  # part of the cache key only
  step_dir = pathlib.Path(step_dir_name)
  try:
    config, hand_set = executor_records(json.loads(meta_json))
  except CheckpointError as e:
    raise CheckpointError(f"{step_dir}: {e}") from e
  abstract = jax.eval_shape(lambda: network.init_weights(config, jax.random.PRNGKey(0)))
  try:
    checkpointer = ocp.StandardCheckpointer()
    # Modules added to the architecture after the checkpoint was written (a head that
    # starts at zero) are restored as a fresh executor has them: the saved behavior.
    # Saved modules the architecture does not run (another processor's) are read as
    # saved; complete_weights drops them.
    saved = checkpointer.metadata(step_dir / "weights").item_metadata
    unused = {name: jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), saved[name])
              for name in saved.keys() if name not in abstract}
    abstract = {name: module for name, module in abstract.items() if name in saved.keys()}
    weights = checkpointer.restore(step_dir / "weights", {**abstract, **unused})
  except Exception as e:  # orbax raises many types for damaged files.
    raise CheckpointError(f"Checkpoint {step_dir} is corrupt: its weights could not be "
                          f"restored ({type(e).__name__}: {str(e)[:300]}).") from e
  for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(weights)[0],
                          jax.tree.leaves({**abstract, **unused})):
    if a.shape != b.shape or not np.all(np.isfinite(np.asarray(a))):
      raise CheckpointError(f"Checkpoint {step_dir} is corrupt: weight "
                            f"{jax.tree_util.keystr(path)} has shape {a.shape} (expected "
                            f"{b.shape}) or non-finite values.")
  return network.complete_weights(weights, config), config, hand_set


def load(directory: str | os.PathLike, algorithm: str | None = None,
         **hyperparams: Any) -> optax.GradientTransformationExtraArgs:
  """Loads any saved executor as an optax transformation.

  Args:
    directory: a checkpoint directory (manager root or one step).
    algorithm: the rule to condition on; defaults to the checkpoint's own.
    **hyperparams: optax keyword arguments of that rule (learning_rate etc.);
      missing ones come from the checkpoint's default conditioning.

  Returns:
    An `optax.GradientTransformationExtraArgs`.
  """
  return load_optimizer(directory, algorithm, **hyperparams).as_optax()


def load_optimizer(directory: str | os.PathLike, algorithm: str | None = None,
                   **hyperparams: Any):
  """Like `load` but returns the `ExecutorOptimizer` (init/step with predictions)."""
  from learned_opt.executor.optimizer import ExecutorOptimizer
  weights, config, hand_set, meta = restore(directory)
  default = dict(meta.get("default_rule") or {})
  default_algorithm = default.pop("algorithm", None)
  if algorithm is None:
    algorithm = default_algorithm
    kwargs = {**default, **hyperparams}
  else:
    kwargs = dict(hyperparams)
    if algorithm == default_algorithm:
      kwargs = {**default, **hyperparams}
  if algorithm is None:
    raise ValueError(f"Checkpoint {directory} names no default rule; pass algorithm=... "
                     f"(one of {', '.join(config.rules)}).")
  return ExecutorOptimizer(weights, config, algorithm, kwargs, hand_set)
