"""SGD with optional heavy-ball or Nesterov momentum: a zero-hop (per-edge) recurrence.

For every parameter entry (an edge, or a node feature for biases), with lr_t the
learning rate at the step count t before incrementing and mu the momentum:

  no momentum:    d_t = g_t                                   (hint 'direction', EDGE)
  momentum:       tr_t = g_t + mu tr_{t-1}                    (hint 'trace', EDGE)
                  d_t = tr_t       [nesterov: g_t + mu tr_t]  (hint 'direction', EDGE)
  u_t = -lr_t d_t                                             (hint 'learning_rate', GRAPH)

The momentum buffer tr is stored in `accumulator_dtype` when one is given (else in
the parameters' dtype).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax

from learned_opt.algorithms import base


class SGDState(NamedTuple):
  count: jax.Array            # int32 scalar: steps taken
  trace: base.PyTree | None   # momentum buffer per entry (None without momentum)


@base.register("sgd")
@dataclasses.dataclass(frozen=True)
class SGD(base.Rule):
  """Stochastic gradient descent, equal to `optax.sgd` with the same arguments."""
  learning_rate: Any
  momentum: Any = None
  nesterov: bool = False
  accumulator_dtype: Any = None

  def init(self, params):
    trace = None
    if self.momentum is not None:
      trace = base.zeros_like(params, self.accumulator_dtype)
    return SGDState(count=base.zero_count(), trace=trace)

  def _step(self, grads, state, params):
    del params  # SGD reads only the gradients.
    trace = {}
    new_trace = None
    direction = grads
    if self.momentum is not None:
      direction, new_trace = base.momentum_trace(self.momentum, self.nesterov, grads,
                                                 state.trace)
      trace["trace"] = base.Hint(new_trace)
    trace["direction"] = base.Hint(direction)
    updates, trace["learning_rate"] = base.scale_by_learning_rate(
        self.learning_rate, state.count, direction)
    return updates, SGDState(base.increment(state.count), new_trace), trace
