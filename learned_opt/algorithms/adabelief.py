"""AdaBelief: Adam whose second moment tracks the gradient's deviation from its mean.

For every parameter entry (an edge, or a node feature for biases), with t the
step count after incrementing and lr_t the learning rate at step t - 1:

  m_t = b1 m_{t-1} + (1 - b1) g_t                        (hint 'mu', EDGE)
  e_t = g_t - m_t                                        (hint 'prediction_error', EDGE)
  s_t = b2 s_{t-1} + (1 - b2) |e_t|^2 + eps_root         (hint 'nu', EDGE)
  m^_t = m_t / (1 - b1^t)  [nesterov: b1 m_t/(1-b1^{t+1}) + (1-b1) g_t/(1-b1^t)]
  s^_t = s_t / (1 - b2^t)                                (hints 'mu_hat', 'nu_hat')
  d_t = m^_t / (sqrt(s^_t) + eps)                        (hint 'direction', EDGE)
  u_t = -lr_t d_t                                        (hint 'learning_rate', GRAPH)

eps_root enters the stored s_t (so it accumulates), exactly as in optax.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.algorithms import base


class AdaBeliefState(NamedTuple):
  count: jax.Array  # int32 scalar: steps taken
  mu: base.PyTree   # first moment, per entry
  nu: base.PyTree   # second central moment (the "belief"), per entry


@base.register("adabelief")
@dataclasses.dataclass(frozen=True)
class AdaBelief(base.Rule):
  """AdaBelief (Zhuang et al. 2020), equal to `optax.adabelief` with the same arguments."""
  learning_rate: Any
  b1: Any = 0.9
  b2: Any = 0.999
  eps: Any = 1e-16
  eps_root: Any = 1e-16
  nesterov: bool = False

  def init(self, params):
    return AdaBeliefState(count=base.zero_count(), mu=base.zeros_like(params),
                          nu=base.zeros_like(params))

  def _step(self, grads, state, params):
    del params  # AdaBelief reads only the gradients.
    b1, b2 = self.b1, self.b2
    mu = base.ema(grads, state.mu, b1, 1)
    error = jax.tree.map(lambda g, m: g - m, grads, mu)
    nu = base.ema(error, state.nu, b2, 2)
    nu = jax.tree.map(lambda v: v + self.eps_root, nu)
    count = base.increment(state.count)
    mu_hat = base.debiased_momentum(mu, grads, b1, count, self.nesterov)
    nu_hat = base.bias_correction(nu, b2, count)
    direction = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + self.eps), mu_hat, nu_hat)
    trace = base.hints(mu=base.Hint(mu), prediction_error=base.Hint(error),
                       nu=base.Hint(nu), mu_hat=base.Hint(mu_hat), nu_hat=base.Hint(nu_hat),
                       direction=base.Hint(direction))
    updates, trace["learning_rate"] = base.scale_by_learning_rate(
        self.learning_rate, state.count, direction)
    new_state = AdaBeliefState(count, base.cast_like(mu, state.mu),
                               base.cast_like(nu, state.nu))
    return updates, new_state, trace
