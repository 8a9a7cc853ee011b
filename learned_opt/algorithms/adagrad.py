"""Adagrad: a zero-hop (per-edge) recurrence that sums squared gradients.

For every parameter entry (an edge, or a node feature for biases), with
a_0 = initial_accumulator_value and lr_t the learning rate at the step count
before incrementing:

  a_t = a_{t-1} + |g_t|^2                                 (hint 'sum_of_squares', EDGE)
  c_t = 1 / sqrt(a_t + eps)  where a_t > 0, else 0        (hint 'scaling', EDGE)
  d_t = c_t g_t                                           (hint 'direction', EDGE)
  u_t = -lr_t d_t                                         (hint 'learning_rate', GRAPH)
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.algorithms import base


class AdagradState(NamedTuple):
  count: jax.Array             # int32 scalar: steps taken
  sum_of_squares: base.PyTree  # running sum of squared gradients, per entry


@base.register("adagrad")
@dataclasses.dataclass(frozen=True)
class Adagrad(base.Rule):
  """Adagrad (Duchi et al. 2011), equal to `optax.adagrad` with the same arguments."""
  learning_rate: Any
  initial_accumulator_value: Any = 0.1
  eps: Any = 1e-7

  def init(self, params):
    return AdagradState(count=base.zero_count(),
                        sum_of_squares=base.full_like(params, self.initial_accumulator_value))

  def _step(self, grads, state, params):
    del params  # Adagrad reads only the gradients.
    sum_of_squares = jax.tree.map(lambda g, a: base.abs_sq(g) + a, grads,
                                  state.sum_of_squares)
    scaling = jax.tree.map(lambda a: jnp.where(a > 0, jax.lax.rsqrt(a + self.eps), 0.0),
                           sum_of_squares)
    direction = jax.tree.map(lambda c, g: c * g, scaling, grads)
    trace = base.hints(sum_of_squares=base.Hint(sum_of_squares), scaling=base.Hint(scaling),
                       direction=base.Hint(direction))
    updates, trace["learning_rate"] = base.scale_by_learning_rate(
        self.learning_rate, state.count, direction)
    sum_of_squares = base.cast_like(sum_of_squares, state.sum_of_squares)
    return updates, AdagradState(base.increment(state.count), sum_of_squares), trace
