"""Learned optimizers shipped inside the package (offline, via importlib.resources).

Each shipped optimizer is an ordinary checkpoint directory under
`learned_opt/weights/<name>/`, with the command and config that produced it in
its metadata (`provenance`).
"""

from __future__ import annotations

import contextlib
import importlib.resources
from typing import Any

import optax

from learned_opt import checkpoint

# The one registry of shipped names -> weights directory (and what each one is).
_SHIPPED = {
    "executor": "executor",   # imitation of the 12 classic rules; condition on any of them
    "executor6": "executor6",  # the 6-rule imitation meta_executor was meta-trained from
    "meta_executor": "meta_executor",  # an imitation executor meta-trained (Adam prior)
    # The recipe's output (configs/pretrained.py): the executor with a learned controller,
    # imitation then meta-training in one command, nothing set by hand.
    "meta_controller": "meta_controller",
}
_BEST = "meta_executor"       # what pretrained() with no name returns


def pretrained_names() -> list[str]:
  """Names accepted by `pretrained(name)` whose weights ship with this install."""
  root = importlib.resources.files("learned_opt") / "weights"
  return sorted(n for n, d in _SHIPPED.items() if (root / d).is_dir())


def shipped_path(name: str) -> Any:
  """The importlib.resources path of a shipped optimizer's checkpoint directory."""
  if name not in _SHIPPED:
    raise KeyError(f"Unknown pretrained optimizer {name!r}. Shipped: "
                   f"{', '.join(pretrained_names()) or 'none'}.")
  return importlib.resources.files("learned_opt") / "weights" / _SHIPPED[name]


@contextlib.contextmanager
def source_path(source: str):
  """A filesystem path for a checkpoint source: 'shipped:NAME' or a directory path."""
  if not source.startswith("shipped:"):
    yield source
    return
  with importlib.resources.as_file(shipped_path(source.split(":", 1)[1])) as path:
    yield path


def _load(name: str, algorithm: str | None, hyperparams: dict[str, Any]):
  resource = shipped_path(name)
  if not resource.is_dir():
    raise FileNotFoundError(
        f"Pretrained optimizer {name!r} is registered but its weights are missing from this "
        f"install ({resource}). Reinstall learned_opt or train it with "
        "`python -m meta_train.imitate --config=configs/imitate.py --workdir=DIR`.")
  with contextlib.ExitStack() as stack:
    path = stack.enter_context(importlib.resources.as_file(resource))
    return checkpoint.load_optimizer(path, algorithm, **hyperparams)


def pretrained(name: str | None = None, algorithm: str | None = None,
               **hyperparams: Any) -> optax.GradientTransformationExtraArgs:
  """A shipped learned optimizer as an optax transformation.

  Args:
    name: a name from `pretrained_names()`; None gives the best shipped optimizer,
      meta-trained here, which needs no arguments at all (no learning rate).
    algorithm: for the imitation executor, the rule to imitate (optax's name).
    **hyperparams: optax's keyword arguments for that rule (learning_rate, b1, ...).

  Example:
    tx = learned_opt.pretrained()   # the best learned optimizer, no tuning
    tx = learned_opt.pretrained("executor", algorithm="adam", learning_rate=1e-3)
  """
  return _load(name or _best(), algorithm, hyperparams).as_optax()


def pretrained_optimizer(name: str | None = None, algorithm: str | None = None,
                         **hyperparams: Any):
  """Like `pretrained`, returning the `ExecutorOptimizer` (with hint predictions)."""
  return _load(name or _best(), algorithm, hyperparams)


def _best() -> str:
  """The best shipped optimizer present in this install."""
  names = pretrained_names()
  return _BEST if _BEST in names or not names else names[0]
