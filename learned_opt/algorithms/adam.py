"""Adam, AdamW and NAdam: zero-hop (per-edge) recurrences.

For every parameter entry (an edge, or a node feature for biases), with t the
step count after incrementing:

  m_t = b1 m_{t-1} + (1 - b1) g_t                    (hint 'mu', EDGE)
  v_t = b2 v_{t-1} + (1 - b2) g_t^2                  (hint 'nu', EDGE)
  m^_t = m_t / (1 - b1^t)  [nesterov: b1 m_t/(1-b1^{t+1}) + (1-b1) g_t/(1-b1^t)]
  v^_t = v_t / (1 - b2^t)                            (hints 'mu_hat', 'nu_hat')
  d_t = m^_t / (sqrt(v^_t + eps_root) + eps)         (hint 'direction')
  u_t = -lr (d_t + wd p_t)                           (AdamW adds wd p_t)
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
  """The scale-free Adam direction d_t shared by adam, adamw, nadam and lamb."""
  b1, b2 = rule.b1, rule.b2
  mu = base.ema(grads, state.mu, b1, 1)
  nu = base.ema(grads, state.nu, b2, 2)
  count = base.increment(state.count)
  if getattr(rule, "nesterov", False):
    mu_hat = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g,
                          base.bias_correction(mu, b1, base.increment(count)),
                          base.bias_correction(grads, b1, count))
  else:
    mu_hat = base.bias_correction(mu, b1, count)
  nu_hat = base.bias_correction(nu, b2, count)
  direction = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + rule.eps_root) + rule.eps),
                           mu_hat, nu_hat)
  mu = base.cast_tree(mu, getattr(rule, "mu_dtype", None))
  nu = jax.tree.map(lambda n, old: n.astype(old.dtype), nu, state.nu)
  trace = base.hints(mu=base.Hint(mu), nu=base.Hint(nu), mu_hat=base.Hint(mu_hat),
                     nu_hat=base.Hint(nu_hat), direction=base.Hint(direction))
  return direction, AdamState(count, mu, nu), trace


def adam_init(params: base.PyTree, mu_dtype: Any = None) -> AdamState:
  return AdamState(count=jnp.zeros([], jnp.int32),
                   mu=base.zeros_like(params, mu_dtype),
                   nu=base.zeros_like(params))


@base.register("adam")
@dataclasses.dataclass(frozen=True)
class Adam(base.Rule):
  """Adam (Kingma & Ba 2015), equal to `optax.adam` with the same arguments."""
  learning_rate: Any
  b1: Any = 0.9
  b2: Any = 0.999
  eps: Any = 1e-8
  eps_root: Any = 0.0
  mu_dtype: Any = None
  nesterov: bool = False

  def init(self, params):
    return adam_init(params, self.mu_dtype)

  def _step(self, grads, state, params):
    direction, new_state, trace = adam_direction(self, grads, state)
    lr = base.learning_rate_at(self.learning_rate, state.count)
    updates = jax.tree.map(lambda d: -lr * d, direction)
    trace["learning_rate"] = base.Hint(jnp.asarray(lr, jnp.float32), base.GRAPH)
    return updates, new_state, trace


@base.register("nadam")
@dataclasses.dataclass(frozen=True)
class NAdam(Adam):
  """NAdam (Dozat 2016): Adam with a Nesterov first moment, equal to `optax.nadam`."""
  nesterov: bool = True


@base.register("adamw")
@dataclasses.dataclass(frozen=True)
class AdamW(base.Rule):
  """AdamW (Loshchilov & Hutter 2019): decoupled weight decay, equal to `optax.adamw`."""
  learning_rate: Any
  b1: Any = 0.9
  b2: Any = 0.999
  eps: Any = 1e-8
  eps_root: Any = 0.0
  mu_dtype: Any = None
  weight_decay: Any = 1e-4
  mask: Any = None
  nesterov: bool = False

  def init(self, params):
    return adam_init(params, self.mu_dtype)

  def _step(self, grads, state, params):
    direction, new_state, trace = adam_direction(self, grads, state)
    decayed = decay_weights(self.weight_decay, self.mask, direction, params, state.count,
                            "adamw")
    lr = base.learning_rate_at(self.learning_rate, state.count)
    updates = jax.tree.map(lambda d: -lr * d, decayed)
    trace["learning_rate"] = base.Hint(jnp.asarray(lr, jnp.float32), base.GRAPH)
    return updates, new_state, trace


def decay_weights(weight_decay: Any, mask: Any, updates: base.PyTree,
                  params: base.PyTree | None, count: jax.Array, rule: str) -> base.PyTree:
  """updates + wd * params where the mask allows (optax.add_decayed_weights)."""
  if isinstance(weight_decay, (int, float)) and weight_decay == 0.0:
    return updates
  params = base.require_params(params, rule, "weight decay reads the parameters")
  wd = base.learning_rate_at(weight_decay, count)
  return base.masked_map(lambda u, p: u + wd * p, base.resolve_mask(mask, params),
                         updates, params)
