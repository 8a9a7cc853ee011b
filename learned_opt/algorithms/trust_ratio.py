"""LAMB and LARS: per-edge recurrences scaled by a per-layer trust ratio (a readout).

A trust ratio is a graph readout: one number per tensor (layer) computed from the
norms of that tensor's parameters and of its proposed update,

  r_l = c ||p_l|| / (||u_l|| + eps)     (1 where either norm is 0)  (hint 'trust_ratio', LAYER)

and broadcast back onto every edge of the layer.

LAMB (You et al. 2020), with t the step count after incrementing:

  d_t = Adam direction (m^_t / (sqrt(v^_t + eps_root) + eps), see adam.py)
  u_t = d_t + wd p_t                      (where `mask` allows)
  out = -lr r_l(u_t) u_t                  (c = 1, eps = 0 in the ratio)

LARS (You et al. 2017):

  u_t = g_t + wd p_t                      (where `weight_decay_mask` allows)
  s_t = r_l(u_t) u_t                      (c = trust_coefficient, where `trust_ratio_mask` allows)
  tr_t = -lr s_t + momentum tr_{t-1}      (hint 'trace', EDGE)
  out = tr_t, or -lr s_t + momentum tr_t with nesterov

Both equal `optax.lamb` / `optax.lars` with the same arguments. This module also
holds the small mask and weight-decay helpers shared by the structured rules
(adafactor, muon): optax's mask convention (None, a bool, a pytree of bools or a
prefix of one, or a callable) resolved to one static bool per leaf.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from learned_opt.algorithms import adam, base
from learned_opt.graph import ops


# ------------------------------------------------------------------ shared helpers
def leaf_mask(mask: Any, tree: base.PyTree) -> list[bool]:
  """optax's mask resolved to one bool per leaf of `tree` (in `jax.tree.leaves` order).

  Args:
    mask: None (every leaf), a bool, a pytree of bools with the structure of
      `tree` or a prefix of it, or a callable returning such a pytree given `tree`.
    tree: the pytree the mask applies to (updates or params).

  Returns:
    A list of Python bools, one per leaf.
  """
  if mask is None:
    return [True] * len(jax.tree.leaves(tree))
  if callable(mask):
    mask = mask(tree)
  values, treedef = jax.tree.flatten(mask)
  subtrees = treedef.flatten_up_to(tree)
  out = []
  for value, sub in zip(values, subtrees):
    out.extend([bool(value)] * len(jax.tree.leaves(sub)))
  return out


def map_masked(fn: Callable[..., jax.Array], mask: Sequence[bool], *trees: base.PyTree
               ) -> base.PyTree:
  """fn(*leaves) on leaves whose mask entry is True, else the leaf of trees[0]."""
  leaves, treedef = jax.tree.flatten(trees[0])
  others = [treedef.flatten_up_to(t) for t in trees[1:]]
  out = [fn(*xs) if m else xs[0] for m, *xs in zip(mask, leaves, *others)]
  return jax.tree.unflatten(treedef, out)


def add_decayed_weights(weight_decay: Any, mask: Any, updates: base.PyTree,
                        params: base.PyTree | None, count: jax.Array, rule: str
                        ) -> base.PyTree:
  """updates + wd * params on masked-in leaves (optax.add_decayed_weights + masked).

  A zero Python constant skips the step entirely, like optax; a schedule is
  evaluated at `count`. The mask is resolved on `updates`, as optax.masked does.
  """
  if isinstance(weight_decay, (int, float)) and weight_decay == 0.0:
    return updates
  params = base.require_params(params, rule, "weight decay reads the parameters")
  wd = base.learning_rate_at(weight_decay, count)
  return map_masked(lambda u, p: u + wd * p, leaf_mask(mask, updates), updates, params)


def check_real(tree: base.PyTree, rule: str) -> None:
  """Raises UnsupportedOptionError for complex leaves (the graph programs are real)."""
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    if jnp.issubdtype(leaf.dtype, jnp.complexfloating):
      raise base.UnsupportedOptionError(
          f"{rule}: complex parameters (leaf {jax.tree_util.keystr(path)} has dtype "
          f"{leaf.dtype}) are not implemented as a graph program; use optax.{rule} "
          "directly for them.")


def layer_norm(x: jax.Array) -> jax.Array:
  """The Euclidean norm of a whole tensor: a layer readout (float32 scalar)."""
  return jnp.sqrt(ops.reduce_all(x, "sum_square"))


def trust_ratio(param: jax.Array, update: jax.Array, trust_coefficient: Any = 1.0,
                eps: Any = 0.0) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(ratio, ||p||, ||u||) for one tensor; the ratio is 1 where either norm is zero."""
  param_norm, update_norm = layer_norm(param), layer_norm(update)
  ratio = trust_coefficient * param_norm / (update_norm + eps)
  zero = jnp.logical_or(param_norm == 0.0, update_norm == 0.0)
  ratio = jnp.where(zero, jnp.ones_like(ratio), ratio)
  return ratio, param_norm, update_norm


def scale_by_trust_ratio(updates: base.PyTree, params: base.PyTree, mask: Sequence[bool],
                         trust_coefficient: Any = 1.0, eps: Any = 0.0
                         ) -> tuple[base.PyTree, base.Trace]:
  """Multiplies each masked-in tensor of `updates` by its trust ratio.

  Returns the scaled updates and LAYER hints 'param_norm', 'update_norm' and
  'trust_ratio' (1 on masked-out leaves), plus the LAYER MASK hint
  'trust_ratio_mask'.
  """
  u_leaves, treedef = jax.tree.flatten(updates)
  p_leaves = treedef.flatten_up_to(params)
  out, ratios, p_norms, u_norms = [], [], [], []
  for m, u, p in zip(mask, u_leaves, p_leaves):
    ratio, p_norm, u_norm = trust_ratio(p, u, trust_coefficient, eps)
    if m:
      out.append(u * ratio.astype(u.dtype))
    else:
      out.append(u)
      ratio = jnp.ones_like(ratio)
    ratios.append(ratio)
    p_norms.append(p_norm)
    u_norms.append(u_norm)
  tree = lambda xs: jax.tree.unflatten(treedef, xs)
  trace = base.hints(
      param_norm=base.Hint(tree(p_norms), base.LAYER),
      update_norm=base.Hint(tree(u_norms), base.LAYER),
      trust_ratio=base.Hint(tree(ratios), base.LAYER),
      trust_ratio_mask=base.Hint(tree([jnp.asarray(m) for m in mask]), base.LAYER,
                                 base.MASK))
  return tree(out), trace


# ------------------------------------------------------------------------- LAMB
@base.register("lamb")
@dataclasses.dataclass(frozen=True)
class Lamb(base.Rule):
  """LAMB (You et al. 2020), equal to `optax.lamb` with the same arguments."""
  learning_rate: Any
  b1: Any = 0.9
  b2: Any = 0.999
  eps: Any = 1e-6
  eps_root: Any = 0.0
  weight_decay: Any = 0.0
  mask: Any = None

  def init(self, params):
    check_real(params, "lamb")
    return adam.adam_init(params)

  def _step(self, grads, state, params):
    params = base.require_params(params, "lamb", "the trust ratio reads the parameter norms")
    direction, new_state, trace = adam.adam_direction(self, grads, state)
    decayed = add_decayed_weights(self.weight_decay, self.mask, direction, params,
                                  state.count, "lamb")
    scaled, ratio_trace = scale_by_trust_ratio(
        decayed, params, [True] * len(jax.tree.leaves(decayed)))
    trace.update(ratio_trace)
    lr = base.learning_rate_at(self.learning_rate, state.count)
    updates = jax.tree.map(lambda u: -lr * u, scaled)
    trace["learning_rate"] = base.Hint(jnp.asarray(lr, jnp.float32), base.GRAPH)
    return updates, new_state, trace


# ------------------------------------------------------------------------- LARS
class LarsState(NamedTuple):
  count: jax.Array   # int32 scalar: steps taken
  trace: base.PyTree  # momentum buffer of -lr * trust-scaled updates, per entry


@base.register("lars")
@dataclasses.dataclass(frozen=True)
class Lars(base.Rule):
  """LARS (You et al. 2017), equal to `optax.lars` with the same arguments."""
  learning_rate: Any
  weight_decay: Any = 0.0
  weight_decay_mask: Any = True
  trust_coefficient: Any = 0.001
  eps: Any = 0.0
  trust_ratio_mask: Any = True
  momentum: Any = 0.9
  nesterov: bool = False

  def init(self, params):
    check_real(params, "lars")
    return LarsState(count=jnp.zeros([], jnp.int32), trace=base.zeros_like(params))

  def _step(self, grads, state, params):
    params = base.require_params(params, "lars", "the trust ratio reads the parameter norms")
    decayed = add_decayed_weights(self.weight_decay, self.weight_decay_mask, grads, params,
                                  state.count, "lars")
    scaled, trace = scale_by_trust_ratio(
        decayed, params, leaf_mask(self.trust_ratio_mask, decayed),
        self.trust_coefficient, self.eps)
    lr = base.learning_rate_at(self.learning_rate, state.count)
    stepped = jax.tree.map(lambda u: -lr * u, scaled)
    new_trace = jax.tree.map(lambda u, t: u + self.momentum * t, stepped, state.trace)
    if self.nesterov:
      updates = jax.tree.map(lambda u, t: u + self.momentum * t, stepped, new_trace)
    else:
      updates = new_trace
    new_trace = jax.tree.map(lambda t, old: t.astype(old.dtype), new_trace, state.trace)
    trace["trace"] = base.Hint(new_trace)
    trace["learning_rate"] = base.Hint(jnp.asarray(lr, jnp.float32), base.GRAPH)
    return updates, LarsState(base.increment(state.count), new_trace), trace
