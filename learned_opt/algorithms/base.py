"""Update rules as graph programs: the Rule interface, hints, registry and shared helpers.

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

The helpers below the registry are the one implementation of what the rules share:
schedules and the learning-rate step, moments and momentum, layer readouts, dtype
casts, optax's masks (prefix trees and callables included) and decoupled weight decay.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from learned_opt import _tree
from learned_opt.graph import ops

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

  def message_passing(self, tree: PyTree) -> Any:
    """The rule's rounds of multi-hop message passing on `tree`'s weight matrices
    (static; e.g. Muon's Newton-Schulz iterations, learned_opt.algorithms.muon's
    MessagePassing), or None for a rule without rounds (the default)."""
    del tree
    return None

  def input_readouts(self, tree: PyTree) -> tuple[InputReadout | None, ...] | None:
    """Per leaf of `tree` (static), the per-tensor readout by which the rule scales its
    gradient before its moments (LARS's trust ratio,
    learned_opt.algorithms.trust_ratio), None on a leaf it leaves alone; None where no
    leaf has one (the default)."""
    del tree
    return None

  @property
  def hyperparams(self) -> dict[str, Any]:
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


class InputReadout(NamedTuple):
  """A per-tensor gain on the gradient before a rule's moments (static):
  rho = exp(log_coefficient) ||p||^param_exponent ||g||^grad_exponent, 1 where either
  norm is zero (LARS: log trust_coefficient, 1, -1)."""
  log_coefficient: float
  param_exponent: float
  grad_exponent: float


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


# ---------------------------------------------------------- schedules and steps
def learning_rate_at(learning_rate: Any, count: jax.Array) -> Any:
  """A constant (learning rate, weight decay), or a schedule evaluated at `count`."""
  return learning_rate(count) if callable(learning_rate) else learning_rate


def learning_rate_hint(learning_rate: Any, count: jax.Array) -> Hint:
  """The GRAPH hint holding the (positive) learning rate at `count`, in float32."""
  return Hint(jnp.asarray(learning_rate_at(learning_rate, count), jnp.float32), GRAPH)


def scale_by_learning_rate(learning_rate: Any, count: jax.Array, tree: PyTree,
                           flip_sign: bool = True) -> tuple[PyTree, Hint]:
  """-lr * tree (lr * tree without `flip_sign`), like optax.scale_by_learning_rate.

  A schedule's value is cast to each leaf's dtype before multiplying (as
  optax.scale_by_schedule does); a constant multiplies as given.

  Args:
    learning_rate: a float or a schedule `count -> float`.
    count: the step count before this step's increment.
    tree: the direction to scale.
    flip_sign: negate the learning rate (optax's default: updates descend).

  Returns:
    (updates, hint): the scaled tree and the GRAPH hint holding the learning rate.
  """
  lr = learning_rate_at(learning_rate, count)
  step = -lr if flip_sign else lr
  if callable(learning_rate):
    updates = jax.tree.map(lambda d: jnp.asarray(step, d.dtype) * d, tree)
  else:
    updates = jax.tree.map(lambda d: step * d, tree)
  return updates, learning_rate_hint(learning_rate, count)


def zero_count() -> jax.Array:
  """The step count of a fresh state: an int32 zero scalar."""
  return jnp.zeros([], jnp.int32)


def increment(count: jax.Array) -> jax.Array:
  """count + 1, saturating at int32 max like optax.safe_increment."""
  return optax.safe_increment(count)


# -------------------------------------------------------------------- moments
def abs_sq(x: jax.Array) -> jax.Array:
  """|x|^2 per entry; for real x this is exactly x * x."""
  return (x.conj() * x).real


def ema(new: PyTree, old: PyTree, decay: Any, order: int = 1) -> PyTree:
  """(1 - decay) * new^order + decay * old, per entry (a zero-hop edge recurrence).

  order 1 is a momentum; order 2 is a second moment of |new| (optax's
  per-element-norm moment: new * new for reals).
  """
  if order not in (1, 2):
    raise ValueError(f"ema order must be 1 or 2, got {order}")
  power = (lambda g: g) if order == 1 else abs_sq
  return jax.tree.map(lambda g, m: (1 - decay) * power(g) + decay * m, new, old)


def bias_correction(moment: PyTree, decay: Any, count: jax.Array) -> PyTree:
  """moment / (1 - decay^count), computed in each leaf's dtype like optax."""

  def correct(m):
    correction = 1 - decay ** count
    return m / correction.astype(m.dtype)

  return jax.tree.map(correct, moment)


def debiased_momentum(mu: PyTree, grads: PyTree, decay: Any, count: jax.Array,
                      nesterov: bool = False) -> PyTree:
  """The bias-corrected first moment m^_t of adam, adabelief and muon.

  Args:
    mu: the first moment m_t after this step's update.
    grads: this step's gradients g_t.
    decay: the first moment's decay b.
    count: the step count t after incrementing.
    nesterov: use Nesterov's look-ahead (optax's nesterov=True).

  Returns:
    m_t / (1 - b^t), or with nesterov b m_t / (1 - b^{t+1}) + (1 - b) g_t / (1 - b^t).
  """
  if not nesterov:
    return bias_correction(mu, decay, count)
  return jax.tree.map(lambda m, g: decay * m + (1 - decay) * g,
                      bias_correction(mu, decay, increment(count)),
                      bias_correction(grads, decay, count))


def momentum_trace(decay: Any, nesterov: bool, updates: PyTree, trace: PyTree
                   ) -> tuple[PyTree, PyTree]:
  """The momentum recurrence tr_t = u_t + decay tr_{t-1} (optax.trace).

  Args:
    decay: the momentum coefficient.
    nesterov: return u_t + decay tr_t instead of tr_t.
    updates: the incoming values u_t.
    trace: the previous buffer tr_{t-1}; its dtypes are kept for the new one.

  Returns:
    (direction, new_trace): the outgoing values and the buffer to store.
  """
  new_trace = jax.tree.map(lambda u, t: u + decay * t, updates, trace)
  if nesterov:
    direction = jax.tree.map(lambda u, t: u + decay * t, updates, new_trace)
  else:
    direction = new_trace
  return direction, cast_like(new_trace, trace)


# ---------------------------------------------------------------- layer readouts
def layer_norm(x: jax.Array) -> jax.Array:
  """The Euclidean norm of a whole tensor: a layer readout (float32 scalar)."""
  return jnp.sqrt(ops.reduce_all(x, "sum_square"))


def layer_rms(x: jax.Array) -> jax.Array:
  """The root mean square of a whole tensor: a layer readout (float32 scalar)."""
  return jnp.sqrt(ops.reduce_all(x, "mean_square"))


# ------------------------------------------------------------- trees and dtypes
def full_like(tree: PyTree, value: Any, dtype: Any = None) -> PyTree:
  """Arrays filled with `value`, shaped like `tree` (arrays or ShapeDtypeStructs).

  Each leaf keeps its dtype unless `dtype` is given.
  """
  return jax.tree.map(lambda x: jnp.full(x.shape, value, dtype or x.dtype), tree)


def zeros_like(tree: PyTree, dtype: Any = None) -> PyTree:
  """Zeros shaped like `tree` (arrays or ShapeDtypeStructs), optionally recast."""
  return full_like(tree, 0, dtype)


def cast_tree(tree: PyTree, dtype: Any) -> PyTree:
  """Every leaf of `tree` cast to `dtype` (unchanged when `dtype` is None)."""
  return tree if dtype is None else jax.tree.map(lambda x: x.astype(dtype), tree)


def cast_like(tree: PyTree, reference: PyTree) -> PyTree:
  """Each leaf of `tree` cast to the dtype of the matching leaf of `reference`."""
  return jax.tree.map(lambda x, r: x.astype(r.dtype), tree, reference)


def require_params(params: PyTree | None, rule: str, why: str) -> PyTree:
  """`params`, or a ValueError saying that `rule` needs them and why."""
  if params is None:
    raise ValueError(f"{rule} needs params ({why}): call step(grads, state, params) / "
                     "tx.update(grads, state, params).")
  return params


def check_real(tree: PyTree, rule: str) -> None:
  """Raises UnsupportedOptionError for complex leaves (these graph programs are real)."""
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    if jnp.issubdtype(leaf.dtype, jnp.complexfloating):
      raise UnsupportedOptionError(
          f"{rule}: complex parameters (leaf {jax.tree_util.keystr(path)} has dtype "
          f"{leaf.dtype}) are not implemented as a graph program; use optax.{rule} "
          "directly for them.")


# ------------------------------------------------------ masks and weight decay
def broadcast_prefix(prefix: PyTree, tree: PyTree,
                     is_leaf: Callable[[Any], bool] | None = None) -> list[Any]:
  """Each leaf of `prefix` repeated for every leaf of the subtree of `tree` below it.

  Args:
    prefix: a pytree whose structure is `tree`'s or a prefix of it.
    tree: the full pytree.
    is_leaf: what counts as a leaf of `prefix` (as in `jax.tree.flatten`).

  Returns:
    A list with one entry per leaf of `tree`, in `jax.tree.leaves` order.
  """
  values, treedef = jax.tree.flatten(prefix, is_leaf=is_leaf)
  out = []
  for value, sub in zip(values, treedef.flatten_up_to(tree)):
    out.extend([value] * len(jax.tree.leaves(sub)))
  return out


def leaf_mask(mask: Any, tree: PyTree) -> list[bool]:
  """optax's mask resolved to one static bool per leaf of `tree`.

  Args:
    mask: None (every leaf), a bool, a pytree of bools with the structure of
      `tree` or a prefix of it (a bool then covers its whole subtree), or a
      callable returning such a pytree given `tree` (optax.masked calls it on the
      updates it masks).
    tree: the pytree the mask applies to (the updates).

  Returns:
    A list of Python bools, one per leaf, in `jax.tree.leaves` order.
  """
  if mask is None:
    return [True] * len(jax.tree.leaves(tree))
  if callable(mask):
    mask = mask(tree)
  return [bool(m) for m in broadcast_prefix(mask, tree)]


def map_masked(fn: Callable[..., jax.Array], mask: Sequence[bool], *trees: PyTree) -> PyTree:
  """fn(*leaves) on the leaves whose `mask` entry is True, else the leaf of trees[0].

  Args:
    fn: the per-leaf function.
    mask: one bool per leaf of trees[0] (see `leaf_mask`).
    *trees: pytrees with the structure of trees[0].

  Returns:
    A pytree with the structure of trees[0].
  """
  leaves, treedef = jax.tree.flatten(trees[0])
  others = [treedef.flatten_up_to(t) for t in trees[1:]]
  out = [fn(*xs) if m else xs[0] for m, *xs in zip(mask, leaves, *others)]
  return jax.tree.unflatten(treedef, out)


def add_decayed_weights(weight_decay: Any, mask: Any, updates: PyTree,
                        params: PyTree | None, count: jax.Array, rule: str) -> PyTree:
  """updates + wd * params on masked-in leaves (optax.add_decayed_weights(wd, mask)).

  A zero Python constant skips the step (params are then not needed), like optax;
  a schedule is evaluated at `count`. The mask is resolved on `updates`, as
  optax.masked does (see `leaf_mask`).

  Args:
    weight_decay: a float or a schedule `count -> float`.
    mask: optax's mask (None, a bool, a pytree or prefix of bools, a callable).
    updates: the incoming updates.
    params: the current parameters.
    count: the step count before this step's increment.
    rule: the rule's name, for the error raised when params are missing.

  Returns:
    The updates with the decay added where the mask allows.
  """
  if isinstance(weight_decay, (int, float)) and weight_decay == 0.0:
    return updates
  params = require_params(params, rule, "weight decay reads the parameters")
  wd = learning_rate_at(weight_decay, count)
  return map_masked(lambda u, p: u + wd * p, leaf_mask(mask, updates), updates, params)


# ------------------------------------------------------------------ checks, hints
def hints(**values: Hint) -> Trace:
  """The trace of a step: hint names to hints."""
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
