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

Both equal `optax.lamb` / `optax.lars` with the same arguments. Masks follow
optax (None, a bool, a pytree of bools or a prefix of one, or a callable); see
base.leaf_mask.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from learned_opt.algorithms import adam, base


# ------------------------------------------------------------------ trust ratio
def trust_ratio(param: jax.Array, update: jax.Array, trust_coefficient: Any = 1.0,
                eps: Any = 0.0) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(ratio, ||p||, ||u||) for one tensor; the ratio is 1 where either norm is zero."""
  param_norm, update_norm = base.layer_norm(param), base.layer_norm(update)
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
    base.check_real(params, "lamb")
    return adam.adam_init(params)

  def _step(self, grads, state, params):
    params = base.require_params(params, "lamb", "the trust ratio reads the parameter norms")
    direction, new_state, trace = adam.adam_direction(self, grads, state)
    decayed = base.add_decayed_weights(self.weight_decay, self.mask, direction, params,
                                       state.count, "lamb")
    scaled, ratio_trace = scale_by_trust_ratio(decayed, params,
                                               base.leaf_mask(None, decayed))
    trace.update(ratio_trace)
    updates, trace["learning_rate"] = base.scale_by_learning_rate(
        self.learning_rate, state.count, scaled)
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

  def input_readouts(self, tree: base.PyTree) -> tuple[base.InputReadout | None, ...] | None:
    """The trust ratio on the leaves it scales before the momentum (static: refused
    with a traced trust_coefficient)."""
    mask = base.leaf_mask(self.trust_ratio_mask, tree)
    if not any(mask):
      return None
    try:
      log_c = math.log(float(self.trust_coefficient))
    except (TypeError, jax.errors.ConcretizationTypeError) as err:
      raise ValueError("lars: the graph form needs trust_coefficient as a number, got "
                       f"{self.trust_coefficient!r}.") from err
    ratio = base.InputReadout(log_c, 1.0, -1.0)
    return tuple(ratio if m else None for m in mask)

  def init(self, params):
    base.check_real(params, "lars")
    return LarsState(count=base.zero_count(), trace=base.zeros_like(params))

  def _step(self, grads, state, params):
    params = base.require_params(params, "lars", "the trust ratio reads the parameter norms")
    decayed = base.add_decayed_weights(self.weight_decay, self.weight_decay_mask, grads,
                                       params, state.count, "lars")
    scaled, trace = scale_by_trust_ratio(
        decayed, params, base.leaf_mask(self.trust_ratio_mask, decayed),
        self.trust_coefficient, self.eps)
    stepped, trace["learning_rate"] = base.scale_by_learning_rate(
        self.learning_rate, state.count, scaled)
    updates, new_trace = base.momentum_trace(self.momentum, self.nesterov, stepped,
                                             state.trace)
    trace["trace"] = base.Hint(new_trace)
    return updates, LarsState(base.increment(state.count), new_trace), trace
