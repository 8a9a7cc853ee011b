"""The one registry: named tasks, `get(name)` and `names()`."""

import dataclasses
import difflib
from collections.abc import Callable

from tasks.base import Task


@dataclasses.dataclass(frozen=True)
class Entry:
  """A named task: its factory and whether it reads TFDS data."""

  factory: Callable[..., Task]
  needs_tfds: bool


_REGISTRY: dict[str, Entry] = {}


class UnknownTaskError(KeyError):
  """A task name that is not registered; the message lists the names."""

  def __str__(self) -> str:
    return str(self.args[0])


def register(name: str, *, needs_tfds: bool = False):
  """Decorator: registers `factory(**kwargs) -> Task` under `name`."""
  def wrap(factory: Callable[..., Task]) -> Callable[..., Task]:
    if name in _REGISTRY:
      raise ValueError(f"Task {name!r} is already registered.")
    _REGISTRY[name] = Entry(factory, needs_tfds)
    return factory
  return wrap


def names(tfds: bool | None = None) -> list[str]:
  """Sorted names of the registered tasks.

  Args:
    tfds: None for all; False for the offline tasks only; True for the
      TFDS-backed ones only.
  """
  return sorted(n for n, e in _REGISTRY.items() if tfds is None or e.needs_tfds == tfds)


def get(name: str, **kwargs) -> Task:
  """Builds the named task; `kwargs` override its defaults (e.g. batch_size).

  Raises:
    UnknownTaskError: `name` is not registered (the message lists the names).
    MissingExtraError / DatasetNotPreparedError: a TFDS task without the extra
      or without prepared data.
  """
  if name not in _REGISTRY:
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownTaskError(f"Unknown task {name!r}.{hint} Known tasks: "
                           f"{', '.join(names())}.")
  return _REGISTRY[name].factory(**kwargs)
