"""Lion: the sign of an interpolated momentum, with decoupled weight decay.

For every parameter entry (an edge, or a node feature for biases), with lr_t and
wd_t the learning rate and weight decay at the step count before incrementing:

  c_t = b1 m_{t-1} + (1 - b1) g_t                        (hint 'interpolation', EDGE)
  d_t = sign(c_t)                                        (hint 'direction', EDGE)
  m_t = b2 m_{t-1} + (1 - b2) g_t                        (hint 'mu', EDGE)
  u_t = -lr_t (d_t + wd_t p_t)   (wd only where `mask`)  (hint 'decayed', EDGE)

m is stored in `mu_dtype` when one is given. Like optax, `mask` may be a prefix of
the params tree, and a callable `mask` is called on the updates it masks (the sign
direction); see base.leaf_mask.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.algorithms import base


class LionState(NamedTuple):
  count: jax.Array  # int32 scalar: steps taken
  mu: base.PyTree   # momentum, per entry


@base.register("lion")
@dataclasses.dataclass(frozen=True)
class Lion(base.Rule):
  """Lion (Chen et al. 2023), equal to `optax.lion` with the same arguments."""
  learning_rate: Any
  b1: Any = 0.9
  b2: Any = 0.99
  mu_dtype: Any = None
  weight_decay: Any = 1e-3
  mask: Any = None

  def init(self, params):
    return LionState(count=base.zero_count(), mu=base.zeros_like(params, self.mu_dtype))

  def _step(self, grads, state, params):
    interpolation = base.ema(grads, state.mu, self.b1, 1)
    direction = jax.tree.map(jnp.sign, interpolation)
    mu = base.cast_like(base.ema(grads, state.mu, self.b2, 1), state.mu)
    decayed = base.add_decayed_weights(self.weight_decay, self.mask, direction, params,
                                       state.count, "lion")
    trace = base.hints(interpolation=base.Hint(interpolation), direction=base.Hint(direction),
                       mu=base.Hint(mu), decayed=base.Hint(decayed))
    updates, trace["learning_rate"] = base.scale_by_learning_rate(
        self.learning_rate, state.count, decayed)
    return updates, LionState(base.increment(state.count), mu), trace
