"""Aggregations over one tensor's bipartite block, written as axis reductions.

For an edge tensor `x` of shape (*multiplicity, n_in, n_out):

  to out-nodes:  a_j = R_{m, i} x[m, i, j]     (reduce every axis but the last)
  to in-nodes:   a_i = R_{m, j} x[m, i, j]     (reduce every axis but -2)
  layer readout: r   = R_{m, i, j} x[m, i, j]

with R one of sum, mean, mean_square (mean of x^2), sum_square and max. All
reductions accumulate in float32 whatever the input dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

REDUCTIONS = ("sum", "mean", "mean_square", "sum_square", "max")


def check_reduce(reduce: str) -> None:
  if reduce not in REDUCTIONS:
    raise ValueError(f"Unknown reduction {reduce!r}; use one of {REDUCTIONS}.")


def _reduce(x: jax.Array, axes: tuple[int, ...], reduce: str) -> jax.Array:
  check_reduce(reduce)
  x = x.astype(jnp.float32)
  if reduce == "sum":
    return jnp.sum(x, axis=axes)
  if reduce == "mean":
    return jnp.mean(x, axis=axes)
  if reduce == "mean_square":
    return jnp.mean(jnp.square(x), axis=axes)
  if reduce == "sum_square":
    return jnp.sum(jnp.square(x), axis=axes)
  return jnp.max(x, axis=axes)


def aggregate_to_nodes(x: jax.Array, end: str = "out", reduce: str = "sum") -> jax.Array:
  """Reduces the edges of `x` onto its in- or out-nodes (shape (n_in,) or (n_out,))."""
  if x.ndim < 2:
    raise ValueError(f"aggregate_to_nodes needs an edge tensor (rank >= 2), got shape {x.shape}")
  keep = x.ndim - 1 if end == "out" else x.ndim - 2
  if end not in ("in", "out"):
    raise ValueError(f"end must be 'in' or 'out', got {end!r}")
  return _reduce(x, tuple(a for a in range(x.ndim) if a != keep), reduce)


def aggregate_axis(x: jax.Array, axis: int, reduce: str = "mean") -> jax.Array:
  """Reduces one neuron axis only, keeping multiplicity: a per-(position, node) value."""
  return _reduce(x, (axis,), reduce)


def reduce_all(x: jax.Array, reduce: str = "mean") -> jax.Array:
  """A layer readout: one float32 scalar for the whole tensor."""
  return _reduce(x, tuple(range(x.ndim)), reduce)


def broadcast_from_nodes(values: jax.Array, shape: tuple[int, ...], end: str = "out") -> jax.Array:
  """Places per-node values on the edges of a tensor of `shape` (broadcastable view)."""
  if end == "out":
    return jnp.reshape(values, (1,) * (len(shape) - 1) + (shape[-1],))
  return jnp.reshape(values, (1,) * (len(shape) - 2) + (shape[-2], 1))


def two_hop(x: jax.Array) -> jax.Array:
  """In-node to in-node messages through the out-nodes: (x x^T)[m, i, k] = sum_j x_ij x_kj.

  Batched over multiplicity axes. Used by Newton-Schulz iterations (muon).
  """
  return jnp.einsum("...ij,...kj->...ik", x, x)
