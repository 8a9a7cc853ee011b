"""SGD with optional heavy-ball or Nesterov momentum: a zero-hop (per-edge) recurrence.

For every parameter entry (an edge, or a node feature for biases), with lr_t the
learning rate at the step count t before incrementing and mu the momentum:

  no momentum:    d_t = g_t                                   (hint 'direction', EDGE)
  momentum:       tr_t = g_t + mu tr_{t-1}                    (hint 'trace', EDGE)
                  d_t = tr_t       [nesterov: g_t + mu tr_t]  (hint 'direction', EDGE)
  u_t = -lr_t d_t                                             (hint 'learning_rate', GRAPH)

The momentum buffer tr is stored in `accumulator_dtype` when one is given (else in
the parameters' dtype). This module also holds the two pieces other elementwise
rules reuse: the learning-rate scaling and the momentum trace.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.algorithms import base


class SGDState(NamedTuple):
  count: jax.Array            # int32 scalar: steps taken
  trace: base.PyTree | None   # momentum buffer per entry (None without momentum)


def scale_by_learning_rate(learning_rate: Any, count: jax.Array, tree: base.PyTree
                           ) -> tuple[base.PyTree, base.Hint]:
  """-lr * tree, with lr a float or a schedule evaluated at `count` (pre-increment).

  Like optax.scale_by_learning_rate: a schedule's value is cast to each leaf's
  dtype before multiplying; a constant multiplies as given.

  Args:
    learning_rate: a float or a schedule `count -> float`.
    count: the step count before this step's increment.
    tree: the direction to scale.

  Returns:
    (updates, hint): the scaled tree and the GRAPH hint holding the learning rate.
  """
  lr = base.learning_rate_at(learning_rate, count)
  if callable(learning_rate):
    updates = jax.tree.map(lambda d: jnp.asarray(-lr, d.dtype) * d, tree)
  else:
    updates = jax.tree.map(lambda d: -lr * d, tree)
  return updates, base.Hint(jnp.asarray(lr, jnp.float32), base.GRAPH)


def momentum_trace(decay: Any, nesterov: bool, updates: base.PyTree, trace: base.PyTree
                   ) -> tuple[base.PyTree, base.PyTree]:
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
  new_trace = jax.tree.map(lambda t, old: t.astype(old.dtype), new_trace, trace)
  return direction, new_trace


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
    return SGDState(count=jnp.zeros([], jnp.int32), trace=trace)

  def _step(self, grads, state, params):
    del params  # SGD reads only the gradients.
    trace = {}
    new_trace = None
    direction = grads
    if self.momentum is not None:
      direction, new_trace = momentum_trace(self.momentum, self.nesterov, grads, state.trace)
      trace["trace"] = base.Hint(new_trace)
    trace["direction"] = base.Hint(direction)
    updates, trace["learning_rate"] = scale_by_learning_rate(
        self.learning_rate, state.count, direction)
    return updates, SGDState(base.increment(state.count), new_trace), trace
