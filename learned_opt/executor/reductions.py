"""Row and column mean squares of a gradient tensor, in one pass over it on GPU.

The executor's node processor needs, per weight tensor g of shape
(*multiplicity, n_in, n_out),

  rows_i = mean_j g_ij^2,    cols_j = mean_i g_ij^2.

XLA emits one reduction kernel per output (a row and a column reduction cannot
share a kernel), so g is read twice; on a GPU, where the executor step is bound
by memory traffic, that second read is about 1/7 of an Adam step. The GPU path
here is a Pallas (Triton) kernel that reads each tile of g once and writes its
partial row and column sums; the partials (1/tile height and 1/tile width of
the tensor) are summed by XLA. It is taken for tensors whose last two
dimensions are multiples of a tile (heights ROW_TILES, widths COL_TILES) and
that hold at least FAST_PATH_MIN_SIZE entries; everything else, and every other
platform, uses the two XLA reductions. The choice is made per platform at
lowering time (`jax.lax.platform_dependent`), so one traced program runs
anywhere, and the derivative is defined in plain jnp (`jax.custom_jvp`), so the
step stays differentiable (TBPTT meta-training) and vmappable on every backend.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pl_triton

ROW_TILES = (64, 32, 16)     # tile heights tried, largest first: the first that divides n_in
COL_TILES = (128, 64, 32)    # tile widths tried, largest first: the first that divides n_out
NUM_WARPS = 4
FAST_PATH_MIN_SIZE = 1 << 18   # 256K entries: below, two small XLA kernels cost less than a launch


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
