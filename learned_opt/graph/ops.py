"""Aggregations over one tensor's bipartite block, written as axis reductions.

For an edge tensor `x` of shape (*multiplicity, n_in, n_out):

  to out-nodes:  a_j = R_{m, i} x[m, i, j]     (reduce every axis but the last)
  to in-nodes:   a_i = R_{m, j} x[m, i, j]     (reduce every axis but -2)
  row/column:    (R_j x[m, i, j], R_i x[m, i, j])    (one neuron axis each, `row_column`)
  layer readout: r   = R_{m, i, j} x[m, i, j]

with R one of sum, mean, mean_square (mean of x^2), sum_square and max. All
reductions accumulate in float32 whatever the input dtype.

`row_column` is the one row/column reduction of the package: the rules' factored
moments (Adafactor) and the executor's row/column processor both call it. Its
mean squares over the last two axes (the executor's node messages),

  rows_i = mean_j g_ij^2,    cols_j = mean_i g_ij^2,

take one pass over g on GPU. XLA emits one reduction kernel per output (a row
and a column reduction cannot share a kernel), so g would be read twice, and on
a GPU the executor step is bound by memory traffic. The GPU path is a Pallas
(Triton) kernel that reads each tile of g once and writes its partial row and
column sums; the partials (1/tile height and 1/tile width of the tensor) are
summed by XLA. It is taken for tensors whose last two dimensions are multiples
of a tile (heights ROW_TILES, widths COL_TILES) and that hold at least
FAST_PATH_MIN_SIZE entries; everything else, and every other platform, uses the
two XLA reductions. The choice is made per platform at lowering time
(`jax.lax.platform_dependent`), so one traced program runs anywhere, and the
derivative is defined in plain jnp (`jax.custom_jvp`), so the step stays
differentiable and vmappable everywhere.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pl_triton

REDUCTIONS = ("sum", "mean", "mean_square", "sum_square", "max")
ROW_TILES = (64, 32, 16)     # tile heights tried, largest first: the first that divides n_in
COL_TILES = (128, 64, 32)    # tile widths tried, largest first: the first that divides n_out
NUM_WARPS = 4
FAST_PATH_MIN_SIZE = 1 << 18   # 256K entries: below, two small XLA kernels cost less than a launch


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


def row_column(x: jax.Array, reduce: str = "mean_square", axes: tuple[int, int] = (-1, -2)
               ) -> tuple[jax.Array, jax.Array]:
  """(x reduced over axes[0], x reduced over axes[1]), each one neuron axis, in float32.

  The default, the mean squares over the last and the second-last axis, is the
  executor's row/column messages: one pass over x on GPU (`mean_squares`). Other
  reductions or axes (Adafactor's factored moments reduce over its two largest
  dimensions) are two XLA reductions.
  """
  first, second = (a % x.ndim for a in axes)
  if reduce == "mean_square" and (first, second) == (x.ndim - 1, x.ndim - 2):
    return mean_squares(x)
  return _reduce(x, (first,), reduce), _reduce(x, (second,), reduce)


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


def xla_mean_squares(g: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(mean over the last axis, mean over the second-last axis) of g^2, in float32.

  Rows square as x * x and columns as |x| * |x|: XLA then sees two distinct
  expressions and fuses each into its own reduction instead of writing one
  shared x^2 temporary to memory for both.
  """
  x = g.astype(jnp.float32)
  return jnp.mean(x * x, axis=-1), jnp.mean(jnp.abs(x) * jnp.abs(x), axis=-2)


def _tile_kernel(g_ref, row_ref, col_ref):
  x = g_ref[...].astype(jnp.float32)
  square = x * x
  row_ref[...] = jnp.sum(square, axis=1)[None, :]
  col_ref[...] = jnp.sum(square, axis=0)[None, :]


def _tile(shape: tuple[int, ...]) -> tuple[int, int] | None:
  """(height, width) of the largest tile that divides the last two dimensions, or None."""
  if len(shape) < 2:
    return None
  height = next((t for t in ROW_TILES if shape[-2] % t == 0), None)
  width = next((t for t in COL_TILES if shape[-1] % t == 0), None)
  return None if height is None or width is None else (height, width)


def tiled_sums(g: jax.Array, interpret: bool = False) -> tuple[jax.Array, jax.Array]:
  """(row sums, column sums) of g^2 from one tiled pass over g (Pallas).

  Args:
    g: (*multiplicity, n_in, n_out), n_in a multiple of a height in ROW_TILES
      and n_out of a width in COL_TILES.
    interpret: run the kernel in the Pallas interpreter (any platform; tests).

  Returns:
    float32 sums of shapes (*multiplicity, n_in) and (*multiplicity, n_out).
  """
  tile = _tile(g.shape)
  if tile is None:
    raise ValueError(f"tiled_sums needs the last two dimensions to be multiples of a tile "
                     f"height in {ROW_TILES} and width in {COL_TILES}; got shape {g.shape}.")
  height, width = tile
  *lead, n_in, n_out = g.shape
  m = math.prod(lead) * n_in
  row_blocks, col_blocks = m // height, n_out // width
  row_parts, col_parts = pl.pallas_call(
      _tile_kernel,
      out_shape=(jax.ShapeDtypeStruct((col_blocks, m), jnp.float32),
                 jax.ShapeDtypeStruct((row_blocks, n_out), jnp.float32)),
      grid=(row_blocks, col_blocks),
      in_specs=[pl.BlockSpec((height, width), lambda i, j: (i, j))],
      out_specs=(pl.BlockSpec((1, height), lambda i, j: (j, i)),
                 pl.BlockSpec((1, width), lambda i, j: (i, j))),
      interpret=interpret,
      compiler_params=None if interpret else pl_triton.CompilerParams(num_warps=NUM_WARPS),
      name="row_col_square_sums")(g.reshape(m, n_out))
  rows = row_parts.sum(axis=0).reshape(*lead, n_in)
  cols = col_parts.reshape(*lead, n_in // height, n_out).sum(axis=-2)
  return rows, cols


def takes_fast_path(shape: tuple[int, ...]) -> bool:
  """Whether `mean_squares` uses the one-pass kernel on GPU for a tensor of this shape."""
  return _tile(shape) is not None and math.prod(shape) >= FAST_PATH_MIN_SIZE


@jax.custom_jvp
def mean_squares(g: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(rows, cols): float32 means of g^2 over the last and the second-last axis.

  One pass over g on GPU where `takes_fast_path(g.shape)`, two XLA reductions
  otherwise; the results agree up to float32 summation order.
  """
  if not takes_fast_path(g.shape):
    return xla_mean_squares(g)
  n_in, n_out = g.shape[-2:]

  def one_pass(x):
    rows, cols = tiled_sums(x)
    return rows / n_out, cols / n_in

  return jax.lax.platform_dependent(g, cuda=one_pass, default=xla_mean_squares)


@mean_squares.defjvp
def _mean_squares_jvp(primals, tangents):
  (g,), (g_dot,) = primals, tangents
  x, x_dot = g.astype(jnp.float32), g_dot.astype(jnp.float32)
  product = 2.0 * x * x_dot
  return mean_squares(g), (jnp.mean(product, axis=-1), jnp.mean(product, axis=-2))
