"""Adafactor: second moments factored onto row and column nodes (one hop), layer readouts.

For a tensor whose two largest axes (a, b), |a| <= |b|, both have at least
`min_dim_size_to_factor` entries (optax's choice; ties keep axis order), with t the
step count before incrementing and s = t - decay_offset:

  beta_t = 1 - (s + 1)^(-decay_rate)                                   (hint 'decay_rate')
  q      = g^2 + eps                                                   (per edge)
  R_t    = beta_t R_{t-1} + (1 - beta_t) mean_b q    (axis b reduced)  (hint 'v_row', NODE)
  C_t    = beta_t C_{t-1} + (1 - beta_t) mean_a q    (axis a reduced)  (hint 'v_col', NODE)
  u      = g (R_t / mean_a R_t)^(-1/2) C_t^(-1/2)                      (hint 'scale', EDGE)

In graph terms R aggregates squared gradients onto the nodes along axis a (one
value per node and multiplicity slice), C onto the nodes along axis b, and their
outer product rebuilds a per-edge second moment. Other tensors keep a full
per-edge moment V_t = beta_t V_{t-1} + (1 - beta_t) q (hint 'v', EDGE) and
u = g V_t^(-1/2). Then, each optional:

  u <- u / max(1, rms(u) / clipping_threshold)        (layer readout, hint 'clip_denom')
  u <- lr u                                           (learning_rate not None)
  u <- u max(rms(p), 1e-3)                            (layer readout, hint 'param_scale')
  m_t = momentum m_{t-1} + (1 - momentum) u; u <- m_t (no debiasing, hint 'momentum')
  u <- u + weight_decay_rate p                        (where weight_decay_mask allows)
  out = -u

Equal to `optax.adafactor` with the same arguments. State placeholders follow
optax: factored tensors keep a (1,)-shaped `v`, the others (1,)-shaped `v_row`
and `v_col`; the NODE/EDGE hints carry the same trees.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from learned_opt.algorithms import base
from learned_opt.graph import ops

_MIN_PARAM_SCALE = 1e-3


class AdafactorState(NamedTuple):
  count: jax.Array      # int32 scalar: steps taken
  v_row: base.PyTree    # factored tensors: second moment with the largest axis reduced
  v_col: base.PyTree    # factored tensors: second moment with the second largest reduced
  v: base.PyTree        # unfactored tensors: per-entry second moment
  momentum: base.PyTree  # per-entry momentum (momentum is not None), else None


def factored_dims(shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int
                  ) -> tuple[int, int] | None:
  """(second largest axis, largest axis) to factor over, or None (optax's rule)."""
  if not factored or len(shape) < 2:
    return None
  order = np.argsort(np.asarray(shape), kind="stable")
  small, large = int(order[-2]), int(order[-1])
  if shape[small] < min_dim_size_to_factor:
    return None
  return small, large


def _placeholder(dtype: Any) -> jax.Array:
  return jnp.zeros((1,), dtype)


def _reduced_shape(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
  return tuple(d for i, d in enumerate(shape) if i != axis)


def _param_scale(p: jax.Array) -> jax.Array:
  """max(rms(p), 1e-3): a layer readout (optax's multiply_by_parameter_scale)."""
  rms = base.layer_rms(p)
  return jnp.where(rms <= _MIN_PARAM_SCALE, _MIN_PARAM_SCALE, rms)


@base.register("adafactor")
@dataclasses.dataclass(frozen=True)
class Adafactor(base.Rule):
  """Adafactor (Shazeer & Stern 2018), equal to `optax.adafactor` with the same arguments."""
  learning_rate: Any = None
  min_dim_size_to_factor: int = 128
  decay_rate: Any = 0.8
  decay_offset: Any = 0
  multiply_by_parameter_scale: bool = True
  clipping_threshold: Any = 1.0
  momentum: Any = None
  dtype_momentum: Any = jnp.float32
  weight_decay_rate: Any = None
  eps: Any = 1e-30
  factored: bool = True
  weight_decay_mask: Any = None

  def _dims(self, shape):
    return factored_dims(tuple(shape), self.factored, self.min_dim_size_to_factor)

  def _moment_init(self, p: Any, reduced: int | None) -> jax.Array:
    """Zero state for one tensor: factored with dims[reduced] removed (0 or 1), or full.

    A tensor whose factoring does not match the request gets optax's (1,) placeholder.
    """
    dims = self._dims(p.shape)
    if (dims is None) != (reduced is None):
      return _placeholder(p.dtype)
    shape = p.shape if dims is None else _reduced_shape(p.shape, dims[reduced])
    return jnp.zeros(shape, p.dtype)

  def init(self, params):
    base.check_real(params, "adafactor")
    moments = lambda reduced: jax.tree.map(lambda p: self._moment_init(p, reduced), params)
    momentum = (None if self.momentum is None
                else base.zeros_like(params, jnp.dtype(self.dtype_momentum)))
    return AdafactorState(count=base.zero_count(), v_row=moments(1), v_col=moments(0),
                          v=moments(None), momentum=momentum)

  def _precondition(self, g, v_row, v_col, v, p, beta):
    """One tensor's factored (or full) RMS scaling: (update, v_row, v_col, v, scale)."""
    dtype = p.dtype
    sq = jnp.square(g) + self.eps
    dims = self._dims(p.shape)
    if dims is None:
      new_v = base.ema(sq, v, beta).astype(dtype)
      scale = new_v ** -0.5
      return g * scale, v_row, v_col, new_v, scale
    small, large = dims
    # One hop: squared gradients aggregated onto the nodes of each factored axis.
    row_mean_sq, col_mean_sq = ops.row_column(sq, "mean", (large, small))
    new_row = base.ema(row_mean_sq, v_row, beta).astype(dtype)
    new_col = base.ema(col_mean_sq, v_col, beta).astype(dtype)
    small_in_row = small - 1 if small > large else small
    row_mean = jnp.mean(new_row, axis=small_in_row, keepdims=True)
    row_factor = jnp.expand_dims((new_row / row_mean) ** -0.5, large)
    col_factor = jnp.expand_dims(new_col ** -0.5, small)
    return g * row_factor * col_factor, new_row, new_col, v, row_factor * col_factor

  def _step(self, grads, state, params):
    params = base.require_params(params, "adafactor",
                                 "the factored moments and parameter scale read them")
    count = state.count
    step = jnp.asarray(count - self.decay_offset + 1, jnp.float32)
    beta = 1.0 - step ** (-self.decay_rate)

    g_leaves, treedef = jax.tree.flatten(grads)
    rest = [treedef.flatten_up_to(t) for t in (state.v_row, state.v_col, state.v, params)]
    results = [self._precondition(*xs, beta) for xs in zip(g_leaves, *rest)]
    tree = lambda i: jax.tree.unflatten(treedef, [r[i] for r in results])
    updates, v_row, v_col, v, scale = (tree(i) for i in range(5))
    trace = base.hints(decay_rate=base.Hint(jnp.asarray(beta, jnp.float32), base.GRAPH),
                       v_row=base.Hint(v_row, base.NODE), v_col=base.Hint(v_col, base.NODE),
                       v=base.Hint(v), scale=base.Hint(scale))

    if self.clipping_threshold is not None:
      denom = jax.tree.map(
          lambda u: jnp.maximum(1.0, base.layer_rms(u) / self.clipping_threshold), updates)
      updates = jax.tree.map(lambda u, d: u / d, updates, denom)
      trace["clip_denom"] = base.Hint(denom, base.LAYER)
    if self.learning_rate is not None:
      updates, trace["learning_rate"] = base.scale_by_learning_rate(
          self.learning_rate, count, updates, flip_sign=False)
    if self.multiply_by_parameter_scale:
      param_scale = jax.tree.map(_param_scale, params)
      updates = jax.tree.map(lambda u, s: u * s, updates, param_scale)
      trace["param_scale"] = base.Hint(param_scale, base.LAYER)
    momentum = state.momentum
    if self.momentum is not None:
      updates = base.ema(updates, state.momentum, self.momentum, 1)
      momentum = base.cast_like(updates, state.momentum)
      trace["momentum"] = base.Hint(momentum)
    if self.weight_decay_rate is not None:
      updates = base.add_decayed_weights(self.weight_decay_rate, self.weight_decay_mask,
                                         updates, params, count, "adafactor")
    updates = jax.tree.map(lambda u: -u, updates)
    new_state = AdafactorState(count=base.increment(count), v_row=v_row, v_col=v_col, v=v,
                               momentum=momentum)
    return updates, new_state, trace
