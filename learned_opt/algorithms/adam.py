"""Adam, AdamW and NAdam: zero-hop (per-edge) recurrences.

For every parameter entry (an edge, or a node feature for biases), with t the
step count after incrementing:

  m_t = b1 m_{t-1} + (1 - b1) g_t                    (hint 'mu', EDGE)
  v_t = b2 v_{t-1} + (1 - b2) g_t^2                  (hint 'nu', EDGE)
  m^_t = m_t / (1 - b1^t)  [nesterov: b1 m_t/(1-b1^{t+1}) + (1 - b1) g_t/(1-b1^t)]
  v^_t = v_t / (1 - b2^t)                            (hints 'mu_hat', 'nu_hat')
  d_t = m^_t / (sqrt(v^_t + eps_root) + eps)         (hint 'direction')
  u_t = -lr (d_t + wd p_t)                           (AdamW adds wd p_t where `mask` allows)

AdamW's `mask` follows optax: a bool pytree, a prefix of one, or a callable called
on the updates it masks (see base.leaf_mask).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.algorithms import base


class AdamState(NamedTuple):
  count: jax.Array  # int32 scalar: steps taken
  mu: base.PyTree   # first moment, per entry
  nu: base.PyTree   # second moment, per entry


def adam_direction(rule: Any, grads: base.PyTree, state: AdamState
                   ) -> tuple[base.PyTree, AdamState, base.Trace]:
  """The scale-free Adam direction d_t shared by adam, adamw, nadam, lamb and muon.

  Args:
    rule: anything with b1, b2, eps and eps_root (and optionally nesterov and
      mu_dtype) attributes.
    grads: this step's gradients.
    state: the previous Adam state.

  Returns:
    (direction, new_state, trace) with the hints mu, nu, mu_hat, nu_hat, direction.
  """
  b1, b2 = rule.b1, rule.b2
  mu = base.ema(grads, state.mu, b1, 1)
  nu = base.ema(grads, state.nu, b2, 2)
  count = base.increment(state.count)
  mu_hat = base.debiased_momentum(mu, grads, b1, count, getattr(rule, "nesterov", False))
  nu_hat = base.bias_correction(nu, b2, count)
  direction = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + rule.eps_root) + rule.eps),
                           mu_hat, nu_hat)
  mu = base.cast_tree(mu, getattr(rule, "mu_dtype", None))
  nu = base.cast_like(nu, state.nu)
  trace = base.hints(mu=base.Hint(mu), nu=base.Hint(nu), mu_hat=base.Hint(mu_hat),
                     nu_hat=base.Hint(nu_hat), direction=base.Hint(direction))
  return direction, AdamState(count, mu, nu), trace


def adam_updates(rule: Any, grads: base.PyTree, state: AdamState, params: base.PyTree | None,
                 weight_decay: Any = 0.0, mask: Any = None
                 ) -> tuple[base.PyTree, AdamState, base.Trace]:
  """One Adam(W) step: the direction, decoupled weight decay, then -learning_rate.

  Args:
    rule: as for `adam_direction`, plus `learning_rate` and `name`.
    grads: this step's gradients.
    state: the previous Adam state.
    params: the current parameters (read only when there is weight decay).
    weight_decay: optax.adamw's weight_decay (a zero constant skips it).
    mask: optax.adamw's mask.

  Returns:
    (updates, new_state, trace), the trace with the learning_rate hint added.
  """
  direction, new_state, trace = adam_direction(rule, grads, state)
  decayed = base.add_decayed_weights(weight_decay, mask, direction, params, state.count,
                                     rule.name)
  updates, trace["learning_rate"] = base.scale_by_learning_rate(
      rule.learning_rate, state.count, decayed)
  return updates, new_state, trace


def adam_init(params: base.PyTree, mu_dtype: Any = None) -> AdamState:
  """Zero moments (the first in `mu_dtype` when given) and a zero count."""
  return AdamState(count=base.zero_count(), mu=base.zeros_like(params, mu_dtype),
                   nu=base.zeros_like(params))


@dataclasses.dataclass(frozen=True)
class _AdamFamily(base.Rule):
  """The hyperparameters (in optax's order) and state that adam and adamw share."""
  learning_rate: Any
  b1: Any = 0.9
  b2: Any = 0.999
  eps: Any = 1e-8
  eps_root: Any = 0.0
  mu_dtype: Any = None

  def init(self, params):
    return adam_init(params, self.mu_dtype)


@base.register("adam")
@dataclasses.dataclass(frozen=True)
class Adam(_AdamFamily):
  """Adam (Kingma & Ba 2015), equal to `optax.adam` with the same arguments."""
  nesterov: bool = False

  def _step(self, grads, state, params):
    return adam_updates(self, grads, state, params)


@base.register("nadam")
@dataclasses.dataclass(frozen=True)
class NAdam(Adam):
  """NAdam (Dozat 2016): Adam with a Nesterov first moment, equal to `optax.nadam`."""
  nesterov: bool = True


@base.register("adamw")
@dataclasses.dataclass(frozen=True)
class AdamW(_AdamFamily):
  """AdamW (Loshchilov & Hutter 2019): decoupled weight decay, equal to `optax.adamw`."""
  weight_decay: Any = 1e-4
  mask: Any = None
  nesterov: bool = False

  def _step(self, grads, state, params):
    return adam_updates(self, grads, state, params, self.weight_decay, self.mask)
