"""Update rules as graph programs: the Rule interface, hints (traces) and the registry.

A rule is a small pure object. `step(grads, state, params)` returns
`(updates, new_state, trace)`, where the trace maps hint names to `Hint`s: the
algorithm's intermediate values in the CLRS sense, each tagged with where it lives
on the parameter graph (`location`) and what kind of value it is (`type`).

Locations:
  EDGE:  one value per parameter entry, shaped like the parameter (an edge of a
         weight tensor, or a node feature for a rank-1 leaf).
  NODE:  one value per neuron (row or column aggregations), shaped like the leaf
         with one neuron axis reduced.
  LAYER: one value per tensor (a readout such as a norm or trust ratio).
  GRAPH: one value for the whole network (the step count, a learning rate).
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from learned_opt import _tree

PyTree = Any

EDGE = "edge"
NODE = "node"
LAYER = "layer"
GRAPH = "graph"
LOCATIONS = (EDGE, NODE, LAYER, GRAPH)

SCALAR = "scalar"
MASK = "mask"


class UnsupportedOptionError(ValueError):
  """An optax option this package does not implement (never silently ignored)."""


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class Hint:
  """One named intermediate value of an algorithm (a CLRS 'probe').

  Attributes:
    value: a pytree of arrays (per-parameter trees for EDGE/NODE/LAYER hints, a
      scalar for GRAPH hints).
    location: one of EDGE, NODE, LAYER, GRAPH.
    type: SCALAR (a real number) or MASK (0/1).
  """
  value: PyTree
  location: str = EDGE
  type: str = SCALAR

  def __post_init__(self):
    if self.location not in LOCATIONS:
      raise ValueError(f"Hint location must be one of {LOCATIONS}, got {self.location!r}")

  def tree_flatten(self):
    return (self.value,), (self.location, self.type)

  @classmethod
  def tree_unflatten(cls, aux, children):
    obj = object.__new__(cls)
    object.__setattr__(obj, "value", children[0])
    object.__setattr__(obj, "location", aux[0])
    object.__setattr__(obj, "type", aux[1])
    return obj


Trace = dict[str, Hint]


class Rule(abc.ABC):
  """Base class of every update rule (frozen dataclasses holding optax's kwargs).

  Subclasses implement `init` and `_step`; the base class adds structure checks,
  the dtype contract (update dtype equals gradient dtype) and the optax bridge.
  """

  name: str = ""

  @abc.abstractmethod
  def init(self, params: PyTree) -> NamedTuple:
    """The rule's initial state; accepts arrays or jax.ShapeDtypeStruct leaves."""

  @abc.abstractmethod
  def _step(self, grads: PyTree, state: NamedTuple, params: PyTree | None
            ) -> tuple[PyTree, NamedTuple, Trace]:
    """The rule's math; `step` wraps it with checks."""

  def step(self, grads: PyTree, state: NamedTuple, params: PyTree | None = None
           ) -> tuple[PyTree, NamedTuple, Trace]:
    """One step of the rule.

    Args:
      grads: gradients, a pytree shaped like the params.
      state: the rule's state from `init` or a previous `step`.
      params: the current parameters (needed by rules with weight decay or
        parameter-scaled updates; others ignore it).

    Returns:
      (updates, new_state, trace): updates to add to the params (optax's sign
      convention), the next state, and the hints of this step.
    """
    if params is not None:
      _tree.check_same_structure(grads, params)
    updates, new_state, trace = self._step(grads, state, params)
    updates = jax.tree.map(lambda u, g: u.astype(g.dtype), updates, grads)
    return updates, new_state, trace

  def as_optax(self) -> optax.GradientTransformationExtraArgs:
    """This rule as an optax transformation (numerically equal to optax's own)."""

    def update_fn(updates, state, params=None, **extra_args):
      del extra_args  # `value=` and any other keyword are accepted and unused.
      new_updates, new_state, _ = self.step(updates, state, params)
      return new_updates, new_state

    return optax.GradientTransformationExtraArgs(self.init, update_fn)

  @property
  def hyperparams(self) -> dict[str, Any]:
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


# --------------------------------------------------------------------- registry
_RULES: dict[str, type[Rule]] = {}


def register(name: str) -> Callable[[type[Rule]], type[Rule]]:
  """Class decorator adding a rule under optax's name."""

  def wrap(cls: type[Rule]) -> type[Rule]:
    if name in _RULES:
      raise ValueError(f"rule {name!r} registered twice")
    cls.name = name
    _RULES[name] = cls
    return cls

  return wrap


def names() -> list[str]:
  """Registered rule names (optax's names), sorted."""
  return sorted(_RULES)


def get(name: str, **kwargs: Any) -> Rule:
  """Builds a rule from optax's name and optax's keyword arguments.

  Example: `get("adam", learning_rate=1e-3, b1=0.9)` equals `optax.adam(1e-3, b1=0.9)`.

  Raises:
    KeyError: unknown name (the message lists the known names).
    TypeError: a keyword the rule does not have (the message lists the ones it has).
    UnsupportedOptionError: an optax option this package does not implement.
  """
  if name not in _RULES:
    raise KeyError(f"Unknown rule {name!r}. Known rules: {', '.join(names())}.")
  cls = _RULES[name]
  accepted = [f.name for f in dataclasses.fields(cls)]
  unknown = sorted(set(kwargs) - set(accepted))
  if unknown:
    raise TypeError(f"Rule {name!r} got unknown keyword(s) {unknown}; it accepts optax's "
                    f"keywords: {', '.join(accepted)}.")
  missing = [f.name for f in dataclasses.fields(cls)
             if f.default is dataclasses.MISSING and f.name not in kwargs]
  if missing:
    raise TypeError(f"Rule {name!r} needs {missing} (optax's required arguments).")
  return cls(**kwargs)


def signature(name: str) -> inspect.Signature:
  """The keyword signature of a registered rule (for documentation and checks)."""
  return inspect.signature(_RULES[name])


# ------------------------------------------------------------- shared numerics
def learning_rate_at(learning_rate: Any, count: jax.Array) -> jax.Array:
  """A float learning rate, or a schedule evaluated at `count` (optax's convention)."""
  return learning_rate(count) if callable(learning_rate) else learning_rate


def increment(count: jax.Array) -> jax.Array:
  """count + 1, saturating at int32 max like optax.safe_increment."""
  return optax.safe_increment(count)


def bias_correction(moment: PyTree, decay: Any, count: jax.Array) -> PyTree:
  """moment / (1 - decay^count), computed in each leaf's dtype like optax."""

  def correct(m):
    correction = 1 - decay ** count
    return m / correction.astype(m.dtype)

  return jax.tree.map(correct, moment)


def ema(new: PyTree, old: PyTree, decay: Any, order: int = 1) -> PyTree:
  """(1 - decay) * new^order + decay * old, per entry (a zero-hop edge recurrence).

  order 1 is a momentum; order 2 is a second moment (new * conj(new) for reals).
  """
  if order not in (1, 2):
    raise ValueError(f"ema order must be 1 or 2, got {order}")
  power = (lambda g: g) if order == 1 else jnp.square
  return jax.tree.map(lambda g, m: (1 - decay) * power(g) + decay * m, new, old)


def zeros_like(tree: PyTree, dtype: Any = None) -> PyTree:
  """Zeros shaped like `tree` (arrays or ShapeDtypeStructs), optionally recast."""
  return jax.tree.map(lambda x: jnp.zeros(x.shape, dtype or x.dtype), tree)


def cast_tree(tree: PyTree, dtype: Any) -> PyTree:
  return tree if dtype is None else jax.tree.map(lambda x: x.astype(dtype), tree)


def require_params(params: PyTree | None, rule: str, why: str) -> PyTree:
  if params is None:
    raise ValueError(f"{rule} needs params ({why}): call step(grads, state, params) / "
                     "tx.update(grads, state, params).")
  return params


def resolve_mask(mask: Any, params: PyTree) -> PyTree | None:
  """optax's mask convention: None (all leaves), a pytree of bools, or a callable."""
  if mask is None:
    return None
  if callable(mask):
    return mask(params)
  return mask


def masked_map(fn: Callable, mask: PyTree | None, *trees: PyTree) -> PyTree:
  """fn(*leaves) where the mask is True (or everywhere without a mask), else leaf 0."""
  if mask is None or mask is True:
    return jax.tree.map(fn, *trees)
  if mask is False:
    return trees[0]
  return jax.tree.map(lambda m, *xs: fn(*xs) if m else xs[0], mask, *trees)


def hints(**values: Hint) -> Trace:
  return dict(values)


def check_options(rule: str, **unsupported: tuple[Any, Any]) -> None:
  """Raises UnsupportedOptionError when an option is not at its supported value.

  Each keyword maps to (given value, the only supported value).
  """
  for option, (given, supported) in unsupported.items():
    if given is not supported and given != supported:
      raise UnsupportedOptionError(
          f"{rule}: option {option}={given!r} is not implemented as a graph program "
          f"(only {option}={supported!r}); use optax.{rule} directly for it.")

