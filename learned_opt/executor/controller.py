"""The learned controller: a recurrent network per tensor that reads the run's signals.

Each step, before the update, every tensor t reads its signals x_t from the gradient
and the old state (on HandSet.readout_rows' row sample, O(1) floats per tensor):

  r_g = log RMS g,   r_m = log RMS(s1 / z1),   r_v = log RMS(s2 / sqrt(z2)),   r_p = log RMS p,
  r_u                 log RMS of the tensor's last update (state),
  cos(g, s1)          the gradient against the momentum,
  cos(g, d)           the gradient against the last direction d = s1 / (s2 + e sqrt(z2)),
                      read from the old state, so it costs no memory (e = 1e-8):
                      hypergradient descent's signal (Baydin et al. 2018),
  f = r_g - lambda    the gradient's fall from its remembered level lambda (state),
  q                   the loss's relative change (L - L') / |L'| clipped to [-1, 1] when
                      the step is given the loss (`value=`), a learned constant when not,
                      with a flag saying which,
  ell                 its log step size (state),

the log-RMS signals divided by 10. A GRU cell shared across tensors reads
[c, x_t] (c the conditioning vector: the rule, its hyperparameters and the clock)
and its hidden state h_t (ExecutorConfig.controller_hidden floats per tensor); a
linear head on [h_t', x_t], zero at initialization, emits per tensor

  rho, delta   ell' = clip(ell + rho cos(g, d) + delta, +-MAX_LOG_STEP): the update is
               scaled by e^ell' (hypergradient's multiplicative rule is rho = beta),
  s            a first-moment memory shift, added to the multi-hop modules' s_t,
  m            an offset to the multi-hop modules' raw mix (before its clip to [0, 1]),

so a fresh controller leaves the executor's updates exactly as they were. s and m
act only with the 'multi_hop' processor. The state is O(tensors): h, ell, lambda,
r_u per tensor and the last loss.

Cross-layer messages (ExecutorConfig.controller_messages): the GRU also reads, per
tensor, the mean hidden state of the tensors upstream of it along the ParamGraph's
wiring (those that write the neurons it reads) and of those downstream (those that
read the neurons it writes), from the last step: O(tensors^2) multiply-adds of
static, row-normalized adjacency matrices (`wiring_matrices`).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from learned_opt.executor import readout
from learned_opt.graph import EDGES, ParamGraph

NUM_SIGNALS = 11      # the columns of `signals` (see the module doc)
DIRECTION_COSINE_COLUMN = 6   # cos(g, d)
LOSS_COLUMN, LOSS_FLAG_COLUMN = 8, 9   # q and its flag
NUM_OUTPUTS = 4       # rho, delta, s, m
MAX_LOG_STEP = math.log(100.0)
LEVEL_DECAY = 0.95    # the gradient level's memory: lambda' = a lambda + (1 - a) r_g
DIRECTION_EPS = 1e-8
_LOG_SCALE = 10.0
_TINY = 1e-30


class ControllerState(NamedTuple):
  """The controller's O(tensors) state (float32)."""
  hidden: jax.Array       # (T, H) GRU state
  log_step: jax.Array     # (T,) ell
  grad_level: jax.Array   # (T,) lambda, the remembered log RMS g
  last_update: jax.Array  # (T,) r_u, log RMS of the last update
  loss: jax.Array         # () the last loss given
  has_loss: jax.Array     # () 1.0 once a loss was given


class Controls(NamedTuple):
  """What the controller emits for one step."""
  log_step: jax.Array    # (T,) ell', added to the layer gain
  shift: jax.Array       # (T,) s
  mix: jax.Array         # (T,) m
  state: ControllerState   # the new state, but for r_u (set after the update)


def init(num_tensors: int, hidden: int) -> ControllerState:
  zeros = lambda *shape: jnp.zeros(shape, jnp.float32)  # noqa: E731
  return ControllerState(zeros(num_tensors, hidden), zeros(num_tensors), zeros(num_tensors),
                         zeros(num_tensors), zeros(), zeros())


def tensor_signals(g: jax.Array, s1: jax.Array, s2: jax.Array, p: jax.Array | None,
                   inv_z1: jax.Array, inv_sqrt_z2: jax.Array, sqrt_z2: jax.Array,
                   readout_rows: int) -> jax.Array:
  """(r_g, r_m, r_v, r_p, cos(g, s1), cos(g, d)) of one tensor, on its row sample.

  The seven sums they need (g^2, s1^2, s2^2, p^2, g s1, g d, d^2) are one reduction
  over the stacked products, which XLA emits as one loop (one pass over the sample
  instead of seven).
  """
  arrays = tuple(None if x is None else x.astype(jnp.float32) for x in (g, s1, s2, p))
  g, s1, s2, p = readout.row_sample(arrays, readout_rows) if g.ndim >= 2 else arrays
  direction = s1 / (s2 + DIRECTION_EPS * sqrt_z2 + _TINY)
  p_square = jnp.zeros_like(g) if p is None else p * p
  products = jnp.stack([g * g, s1 * s1, s2 * s2, p_square, g * s1, g * direction,
                        direction * direction])
  sums = jnp.sum(products.reshape(7, -1), axis=1)
  count = max(g.size, 1)
  log_rms = lambda total: 0.5 * jnp.log(total / count + _TINY)  # noqa: E731
  cosine = lambda dot, a, b: dot / jnp.sqrt(a * b + _TINY)  # noqa: E731
  r_p = jnp.zeros(()) if p is None else log_rms(sums[3])
  return jnp.stack([log_rms(sums[0]), log_rms(sums[1]) + jnp.log(inv_z1 + _TINY),
                    log_rms(sums[2]) + jnp.log(inv_sqrt_z2 + _TINY), r_p,
                    cosine(sums[4], sums[0], sums[1]), cosine(sums[5], sums[0], sums[6])])


def signals(g_leaves: list, s1_leaves: list, s2_leaves: list, p_leaves: list,
            z: jax.Array, count: jax.Array, state: ControllerState, value: Any,
            readout_rows: int) -> tuple[jax.Array, jax.Array]:
  """(x: (T, NUM_SIGNALS), q's column 0 where no loss change is known (flag 0); the
  gradient's new level (T,)). `z` is the state's old debiasing averages, `count` the
  steps taken."""
  valid = lambda x: x > 0  # noqa: E731
  inv_z1 = jnp.where(valid(z[0]), 1.0 / jnp.where(valid(z[0]), z[0], 1.0), 0.0)
  sqrt_z2 = jnp.sqrt(jnp.maximum(z[1], 0.0))
  inv_sqrt_z2 = jnp.where(valid(z[1]), 1.0 / jnp.where(valid(z[1]), sqrt_z2, 1.0), 0.0)
  per_tensor = jnp.stack([
      tensor_signals(g, s1, s2, p, inv_z1, inv_sqrt_z2, sqrt_z2, readout_rows)
      for g, s1, s2, p in zip(g_leaves, s1_leaves, s2_leaves, p_leaves)])
  r_g = per_tensor[:, 0]
  level = jnp.where(count > 0, state.grad_level, r_g)   # a first step's fall is 0
  fall = r_g - level
  new_level = LEVEL_DECAY * level + (1.0 - LEVEL_DECAY) * r_g
  if value is None:
    q, flag = jnp.zeros(()), jnp.zeros(())
  else:
    value = jnp.asarray(value, jnp.float32)
    change = (value - state.loss) / (jnp.abs(state.loss) + _TINY)
    flag = jnp.where(jnp.isfinite(change), state.has_loss, 0.0)
    q = jnp.where(flag > 0, jnp.clip(change, -1.0, 1.0), 0.0)
  num = r_g.shape[0]
  logs = jnp.concatenate([per_tensor[:, :4], state.last_update[:, None]], axis=1) / _LOG_SCALE
  x = jnp.concatenate([logs, per_tensor[:, 4:6], fall[:, None],
                       jnp.broadcast_to(q, (num, 1)), jnp.broadcast_to(flag, (num, 1)),
                       state.log_step[:, None]], axis=1)
  return x, new_level


def controls(outputs: tuple[jax.Array, jax.Array], x: jax.Array, state: ControllerState,
             new_level: jax.Array, value: Any) -> Controls:
  """Controls from the network's (head outputs (T, NUM_OUTPUTS), new hidden state) on
  the signals `x`."""
  head, hidden = outputs
  rho, delta, shift, mix = (head[:, k] for k in range(NUM_OUTPUTS))
  log_step = jnp.clip(state.log_step + rho * x[:, DIRECTION_COSINE_COLUMN] + delta,
                      -MAX_LOG_STEP, MAX_LOG_STEP)
  loss, has_loss = state.loss, state.has_loss
  if value is not None:
    value = jnp.asarray(value, jnp.float32)
    finite = jnp.isfinite(value)
    loss = jnp.where(finite, value, loss)
    has_loss = jnp.where(finite, 1.0, has_loss)
  new_state = ControllerState(hidden, log_step, new_level, state.last_update, loss, has_loss)
  return Controls(log_step, shift, mix, new_state)


@functools.lru_cache(maxsize=64)
def wiring_matrices(graph: ParamGraph) -> tuple[np.ndarray, np.ndarray]:
  """(up, down), (T, T) float32: up[t, u] = 1 / n where u is one of the n tensors that
  write the neurons t's edges read, down[t, u] = 1 / n where u is one of the n edge
  tensors that read the neurons t writes (or holds features on); rows of 0 where none.
  Cached per graph (read only)."""
  tensors = graph.tensors
  num = len(tensors)
  up, down = np.zeros((num, num), np.float32), np.zeros((num, num), np.float32)
  for t, info in enumerate(tensors):
    for u, other in enumerate(tensors):
      if u == t:
        continue
      if info.role == EDGES and other.out_nodes is not None and other.out_nodes == info.in_nodes:
        up[t, u] = 1.0
      if info.out_nodes is not None and other.role == EDGES and other.in_nodes == info.out_nodes:
        down[t, u] = 1.0
  for matrix in (up, down):
    counts = matrix.sum(axis=1, keepdims=True)
    np.divide(matrix, counts, out=matrix, where=counts > 0)
  return up, down


def messages(graph: ParamGraph, hidden: jax.Array) -> jax.Array:
  """(T, 2H): each tensor's mean upstream and downstream hidden states."""
  up, down = wiring_matrices(graph)
  return jnp.concatenate([jnp.asarray(up) @ hidden, jnp.asarray(down) @ hidden], axis=1)


def with_last_update(state: ControllerState, log_rms_update: jax.Array) -> ControllerState:
  """The state with r_u, the log RMS of the update just made, per tensor."""
  return state._replace(last_update=jnp.clip(log_rms_update, -100.0, 100.0)
                        .astype(jnp.float32))
