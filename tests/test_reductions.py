"""The one-pass row/column mean squares (learned_opt.graph.ops.row_column).

The GPU kernel runs here in the Pallas interpreter, and the GPU program is
checked by lowering for CUDA on this machine: nothing needs a GPU.
"""

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_opt.executor import readout
from learned_opt.graph import ops
from benchmarks import executor_speed

_TRITON_CALL = "__gpu$xla.gpu.triton"


@pytest.mark.slow   # 20 s of large reductions: in CI's slow subset (.ci/run)
@hypothesis.settings(max_examples=12, deadline=None)
@hypothesis.given(
    lead=st.sampled_from([(), (2,), (2, 3)]),
    rows=st.sampled_from([16, 32, 48, 64, 128]),
    cols=st.sampled_from([32, 64, 96, 128, 256]),
    dtype=st.sampled_from([jnp.float32, jnp.bfloat16]),
    seed=st.integers(0, 2**16))
def test_tiled_sums_match_two_xla_reductions(lead, rows, cols, dtype, seed):
  g = (3.0 * jax.random.normal(jax.random.PRNGKey(seed), (*lead, rows, cols))).astype(dtype)
  row_sums, col_sums = ops.tiled_sums(g, interpret=True)
  want_rows, want_cols = ops.xla_mean_squares(g)
  assert row_sums.shape == (*lead, rows) and col_sums.shape == (*lead, cols)
  assert row_sums.dtype == col_sums.dtype == jnp.float32
  np.testing.assert_allclose(row_sums / cols, want_rows, rtol=1e-5)
  np.testing.assert_allclose(col_sums / rows, want_cols, rtol=1e-5)


def test_tiled_sums_refuses_shapes_without_a_tile():
  with pytest.raises(ValueError, match=r"multiples of a tile.*\(100, 64\)"):
    ops.tiled_sums(jnp.ones((100, 64)), interpret=True)


def test_fast_path_needs_a_tile_and_a_large_tensor():
  assert ops.takes_fast_path((3136, 3136))        # tiles 64 x 64
  assert ops.takes_fast_path((4, 512, 384))
  assert not ops.takes_fast_path((3000, 3000))    # no tile divides 3000
  assert not ops.takes_fast_path((64, 128))       # too small to pay for a launch
  assert not ops.takes_fast_path((1 << 20,))      # a vector has no columns


def _lowered_for(platform, fn, *args):
  return jax.jit(fn).trace(*args).lower(lowering_platforms=(platform,)).as_text()


def test_gpu_program_uses_the_kernel_and_cpu_program_does_not():
  big = jax.ShapeDtypeStruct((1024, 512), jnp.float32)
  small = jax.ShapeDtypeStruct((64, 128), jnp.float32)
  assert _TRITON_CALL in _lowered_for("cuda", ops.mean_squares, big)
  assert _TRITON_CALL not in _lowered_for("cuda", ops.mean_squares, small)
  assert _TRITON_CALL not in _lowered_for("cpu", ops.mean_squares, big)


def test_mean_squares_values_derivative_and_batching_on_cpu():
  g = jax.random.normal(jax.random.PRNGKey(0), (1024, 512))
  for got, want in zip(jax.jit(ops.mean_squares)(g), ops.xla_mean_squares(g)):
    np.testing.assert_allclose(got, want, rtol=1e-6)
  tangent = jax.random.normal(jax.random.PRNGKey(1), g.shape)
  _, got = jax.jvp(ops.mean_squares, (g,), (tangent,))
  _, want = jax.jvp(ops.xla_mean_squares, (g,), (tangent,))
  for a, b in zip(got, want):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  grad = jax.grad(lambda x: ops.mean_squares(x)[1].sum())(g)
  np.testing.assert_allclose(grad, 2.0 * g / g.shape[0], rtol=1e-5)
  batched = jax.vmap(ops.mean_squares)(jnp.stack([g, 2.0 * g]))
  np.testing.assert_allclose(batched[0][1], 4.0 * batched[0][0], rtol=1e-6)


def test_executor_gpu_program_runs_the_kernel_once_per_large_matrix():
  params = executor_speed.mlp_params(4e6)   # four dense layers of width 640 (and 2560)
  grads = executor_speed.random_like(params, seed=1)
  tx = executor_speed.executor_tx()
  state = tx.init(params)
  text = _lowered_for("cuda", tx.update, grads, state, params)
  large = [x for x in jax.tree.leaves(params) if ops.takes_fast_path(x.shape)]
  assert len(large) == 4
  assert text.count(_TRITON_CALL) == len(large)


def test_readout_sample_is_the_same_from_old_or_new_moments():
  keys = jax.random.split(jax.random.PRNGKey(0), 4)
  g, s1, s2, p = (jax.random.normal(k, (200, 48)) for k in keys)
  s2 = jnp.abs(s2)
  row_scale, col_scale = jnp.ones((200, 1)), 2.0 * jnp.ones((1, 48))
  constant = 0.5 * jnp.ones((1, 1))   # beta's term (normalizer 'scaled': per tensor)

  def new_moments(g, s1, s2):
    return 0.9 * s1 + 0.1 * g, jnp.sqrt(0.999 * s2 * s2 + 0.001 * g * g)

  s1_new, s2_new = new_moments(g, s1, s2)
  from_old = readout.sample_of_old((g, s1, s2, p, row_scale, col_scale, constant), new_moments)
  from_new = readout.row_sample((g, s1_new, s2_new, p, row_scale, col_scale, constant))
  assert from_old[0].shape == (50, 48)     # every 4th of 200 rows (READOUT_ROWS = 64)
  assert len(from_old) == len(from_new) == 7
  for a, b in zip(from_old, from_new):
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_row_column_is_the_one_reduction_of_the_rules_and_the_executor():
  """Its default (mean squares over the last two axes) is the executor's one-pass node
  messages; other reductions and axes (Adafactor's factored moments) are XLA reductions."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 24))
  rows, cols = ops.row_column(x)
  want = ops.xla_mean_squares(x)
  np.testing.assert_array_equal(rows, want[0])
  np.testing.assert_array_equal(cols, want[1])
  first, second = ops.row_column(x, "mean", (-2, 0))
  np.testing.assert_array_equal(first, jnp.mean(x, axis=1))
  np.testing.assert_array_equal(second, jnp.mean(x, axis=0))
  big = jax.ShapeDtypeStruct((1024, 512), jnp.float32)
  assert _TRITON_CALL in _lowered_for("cuda", ops.row_column, big)
