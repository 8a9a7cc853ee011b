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


def reduce_block(x: jax.Array, reduce: str = "sum_square") -> jax.Array:
  """A readout per multiplicity slice: reduces the (in, out) axes, keeps the leading ones.

  For a rank-2 tensor this is `reduce_all`; for (*multiplicity, n_in, n_out) it is
  one float32 value per kernel position or head, shaped `multiplicity`.
  """
  if x.ndim < 2:
    raise ValueError(f"reduce_block needs an edge tensor (rank >= 2), got shape {x.shape}")
  return _reduce(x, (x.ndim - 2, x.ndim - 1), reduce)


def two_hop_out(x: jax.Array) -> jax.Array:
  """Out-node to out-node messages through the in-nodes: (x^T x)[m, j, l] = sum_i x_ij x_il.

  The mirror of `two_hop`, batched over multiplicity axes (muon uses whichever
  side of a layer has fewer neurons).
  """
  return jnp.einsum("...ij,...il->...jl", x, x)


def propagate(a: jax.Array, x: jax.Array, end: str = "in") -> jax.Array:
  """Mixes edge values along one neuron side with a node-to-node operator `a`.

  end='in':  y[m, i, j] = sum_k a[m, i, k] x[m, k, j]   (a is (n_in, n_in): a @ x)
  end='out': y[m, i, j] = sum_l x[m, i, l] a[m, j, l]   (a is (n_out, n_out): x @ a^T)

  With `a` from `two_hop` (end='in') or `two_hop_out` (end='out') this is one
  round of message passing over the layer's bipartite graph.
  """
  if end == "in":
    return jnp.einsum("...ik,...kj->...ij", a, x)
  if end == "out":
    return jnp.einsum("...il,...jl->...ij", x, a)
  raise ValueError(f"end must be 'in' or 'out', got {end!r}")
