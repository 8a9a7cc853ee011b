"""RMSProp (plain, centered, with momentum, bias-corrected): a zero-hop recurrence.

For every parameter entry (an edge, or a node feature for biases), with t the step
count after incrementing, rho the decay, lr_t the learning rate at step t - 1
(the count before incrementing) and v_0 = initial_scale:

  v_t = rho v_{t-1} + (1 - rho) |g_t|^2                     (hint 'nu', EDGE)
  m_t = rho m_{t-1} + (1 - rho) g_t      [centered only]    (hint 'mu', EDGE)
  v^_t = v_t / (1 - rho^t), m^_t = m_t / (1 - rho^t)  [bias_correction; else v^=v, m^=m]
                                                            (hints 'nu_hat', 'mu_hat')
  s_t = v^_t - |m^_t|^2  [centered]  or  v^_t               (hint 'variance', EDGE)
  c_t = 1 / sqrt(s_t + eps)  [eps_in_sqrt]  or  1 / (sqrt(s_t) + eps)
                                                            (hint 'scaling', EDGE)
  d_t = c_t g_t                                             (hint 'direction', EDGE)
  u_t = -lr_t d_t
  with momentum mu, on the learning-rate-scaled values (as optax chains them):
  tr_t = u_t + mu tr_{t-1}                                  (hint 'trace', EDGE)
  u_t <- tr_t   [nesterov: u_t + mu tr_t]
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.algorithms import base


class RMSPropState(NamedTuple):
  count: jax.Array            # int32 scalar: steps taken
  nu: base.PyTree             # second moment, per entry
  mu: base.PyTree | None      # first moment, per entry (centered only)
  trace: base.PyTree | None   # momentum buffer, per entry (momentum only)


@base.register("rmsprop")
@dataclasses.dataclass(frozen=True)
class RMSProp(base.Rule):
  """RMSProp (Hinton 2012; centered: Graves 2013), equal to `optax.rmsprop`."""
  learning_rate: Any
  decay: Any = 0.9
  eps: Any = 1e-8
  initial_scale: Any = 0.0
  eps_in_sqrt: bool = True
  centered: bool = False
  momentum: Any = None
  nesterov: bool = False
  bias_correction: bool = False

  def init(self, params):
    return RMSPropState(
        count=base.zero_count(),
        nu=base.full_like(params, self.initial_scale),
        mu=base.zeros_like(params) if self.centered else None,
        trace=base.zeros_like(params) if self.momentum is not None else None)

  def _step(self, grads, state, params):
    del params  # RMSProp reads only the gradients.
    decay = self.decay
    count = base.increment(state.count)
    nu = base.ema(grads, state.nu, decay, 2)
    nu_hat = base.bias_correction(nu, decay, count) if self.bias_correction else nu
    trace = base.hints(nu=base.Hint(nu), nu_hat=base.Hint(nu_hat))
    mu = None
    if self.centered:
      mu = base.ema(grads, state.mu, decay, 1)
      mu_hat = base.bias_correction(mu, decay, count) if self.bias_correction else mu
      variance = jax.tree.map(lambda v, m: v - base.abs_sq(m), nu_hat, mu_hat)
      trace.update(mu=base.Hint(mu), mu_hat=base.Hint(mu_hat))
    else:
      variance = nu_hat
    if self.eps_in_sqrt:
      scaling = jax.tree.map(lambda s: jax.lax.rsqrt(s + self.eps), variance)
    else:
      scaling = jax.tree.map(lambda s: 1 / (jnp.sqrt(s) + self.eps), variance)
    direction = jax.tree.map(lambda c, g: c * g, scaling, grads)
    trace.update(variance=base.Hint(variance), scaling=base.Hint(scaling),
                 direction=base.Hint(direction))
    updates, trace["learning_rate"] = base.scale_by_learning_rate(
        self.learning_rate, state.count, direction)
    new_trace = None
    if self.momentum is not None:
      updates, new_trace = base.momentum_trace(self.momentum, self.nesterov, updates,
                                               state.trace)
      trace["trace"] = base.Hint(new_trace)
    nu = base.cast_like(nu, state.nu)
    mu = None if mu is None else base.cast_like(mu, state.mu)
    return updates, RMSPropState(count, nu, mu, new_trace), trace
