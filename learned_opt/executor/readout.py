"""Layer readouts: per tensor RMS of the direction and of the parameters, and the layer gain.

The layer gain (coefficients from the tensor net, per tensor):

  log mu = sum_r alpha r + beta relu(r - tau) + gamma [r is zero] + bias,

r in (log RMS(p), log RMS(d)) (log RMS(p) only with
ExecutorConfig.direction_readout=False). Trust ratios (LAMB, LARS), update clipping
and parameter scaling (Adafactor) are all of this form. Both RMS are read on a row
sample of tensors with more than HandSet.readout_rows in-neurons (`row_sample`),
so neither costs a pass over the tensor; readout_rows=0 reads whole tensors.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from learned_opt.executor.config import READOUT_ROWS

LOG_ZERO = -25.0     # log-RMS at or below this counts as an all-zero tensor
_TINY = 1e-30


def row_sample(arrays: tuple, max_rows: int = READOUT_ROWS) -> tuple:
  """Every k-th in-neuron row (axis -2) of each array that has that axis, k = ceil(n / max_rows).

  max_rows = 0 (HandSet.readout_rows=0) returns the arrays whole.

  The direction's and the parameters' RMS are read out on this sample: the
  direction is then never written to memory (it is computed once for the
  update and once, on at most `max_rows` rows per tensor, for the readout; a
  full reduction would force XLA to materialize it), and the parameters' RMS
  costs no pass over the tensor. Tensors with at most `max_rows` in-neurons are
  read exactly. Scalars and size-1 axes broadcast and pass through. The sample's
  RMS is off by about 1 / sqrt(2 n) for n sampled entries. Reading whole tensors
  (max_rows = 0), the compiled CPU step writes the direction once (4 floats
  written per parameter instead of 3).
  """
  if max_rows <= 0:
    return arrays
  rows = max(x.shape[-2] for x in arrays if x is not None and x.ndim >= 2)
  stride = -(-rows // max_rows)
  if stride == 1:
    return arrays
  def take(x):
    if x is None or x.ndim < 2 or x.shape[-2] == 1:
      return x
    return x[..., ::stride, :]
  return tuple(take(x) for x in arrays)


def sample_of_old(old: tuple, new_moments: Any, max_rows: int = READOUT_ROWS) -> tuple:
  """The same sample sliced from (g, s1, s2, p, ...), its new moments recomputed on it."""
  g, s1, s2, p, row_scale, col_scale, constant = row_sample(old, max_rows)
  return (g, *new_moments(g, s1, s2), p, row_scale, col_scale, constant)


def readout_sample(old: tuple, new: tuple, new_moments: Any,
                   max_rows: int = READOUT_ROWS) -> tuple:
  """The readout's row sample of (g, s1', s2', p, row scale, column scale, constant).

  `old` holds the old moments in place of the new ones. Both ways give the same
  numbers; they differ in what XLA can fuse. On a GPU the sample is sliced from
  the old state and its new moments recomputed on it: the full-size s1', s2'
  then have no reader but the update's own loop, and XLA emits s1', s2' and the
  update in one multi-output kernel from one read of (g, s1, s2, p). XLA:CPU does
  not fuse multiple outputs; there the sample is sliced from the written s1', s2'
  (the GPU form would cost copies of the donated moments).
  """
  return jax.lax.platform_dependent(
      old, new, cuda=lambda old, new: sample_of_old(old, new_moments, max_rows),
      default=lambda old, new: row_sample(new, max_rows))


def log_rms(x: jax.Array | None) -> jax.Array:
  """0.5 log(mean(x^2) + tiny) in float32; 0 for None (no parameters given)."""
  if x is None:
    return jnp.zeros(())
  return 0.5 * jnp.log(jnp.mean(jnp.square(x.astype(jnp.float32))) + _TINY)


def alignment(g: jax.Array, s1: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(cos(g, s1) over all entries, 0 where either is all zero; mean(g^2)), float32."""
  g, s1 = g.astype(jnp.float32), s1.astype(jnp.float32)
  g_squares = jnp.sum(g * g)
  cos = jnp.sum(g * s1) / jnp.sqrt(g_squares * jnp.sum(s1 * s1) + _TINY)
  return cos, g_squares / max(g.size, 1)


def layer_log_gain(coeffs: jax.Array, log_rms_param: jax.Array,
                   log_rms_direction: jax.Array | None) -> jax.Array:
  """log mu per tensor from its readouts and its NUM_GAIN_COEFFS coefficients.

  For each readout r (an all-zero tensor reads r = 0 with flag z = 1):
    alpha r + beta relu(r - tau) + gamma z,   summed, plus a bias.

  With the direction's readout, alpha < 0 on it makes the update grow as
  RMS(d)^(1 + alpha) instead of RMS(d): LAMB's trust ratio is alpha = -1. On an
  Adam-like rule a small learned alpha < 0 holds the update up late in training,
  where Adam's direction shrinks (its second moment remembers larger gradients),
  and the run stalls; `log_rms_direction=None`
  (ExecutorConfig.direction_readout=False) leaves the term out.
  """
  total = coeffs[:, -1]
  readouts = (log_rms_param,) if log_rms_direction is None else (
      log_rms_param, log_rms_direction)
  for i, value in enumerate(readouts):
    zero = value <= LOG_ZERO
    r = jnp.where(zero, 0.0, value)
    alpha, beta, tau, gamma = (coeffs[:, 4 * i + k] for k in range(4))
    total = total + alpha * r + beta * jax.nn.relu(r - tau) + gamma * zero
  return total
