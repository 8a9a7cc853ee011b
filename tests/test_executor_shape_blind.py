"""ExecutorConfig.size_features=False: the executor cannot tell a wider layer from a narrow one.

A layer whose columns are 8 copies of a narrower layer's columns (weights and gradients
alike) has the same row mean squares, the same column mean squares (tiled) and the same
RMS of every per-tensor readout, so every imitated rule gives it the tiled update. A
size-blind executor must too, whatever its weights; one that reads the sizes does not.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_opt.executor import ExecutorConfig, ExecutorOptimizer, init_weights, network, step


def _random_weights(config: ExecutorConfig):
  shapes = jax.eval_shape(functools.partial(init_weights, config), jax.random.PRNGKey(0))
  rng = np.random.default_rng(1)
  return jax.tree.map(lambda s: jnp.asarray(0.1 * rng.standard_normal(s.shape), s.dtype),
                      shapes)


def _updates(config, weights, params, grads, algorithm, kwargs, steps=3):
  tx = ExecutorOptimizer(weights, config, algorithm, kwargs).as_optax()
  state = tx.init(params)
  for k in range(steps):
    updates, state = tx.update(jax.tree.map(lambda g: (1.0 + 0.3 * k) * g, grads), state,
                               params)
  return updates


@pytest.mark.parametrize("algorithm,kwargs", [
    ("adam", {"learning_rate": 1e-3}),
    ("adafactor", {"learning_rate": 1e-2, "min_dim_size_to_factor": 16}),
])
def test_size_blind_executor_gives_a_tiled_layer_the_tiled_update(algorithm, kwargs):
  rng = np.random.default_rng(0)
  narrow = {"w": jnp.asarray(rng.standard_normal((48, 32)), jnp.float32),
            "b": jnp.asarray(rng.standard_normal((32,)), jnp.float32)}
  grads = jax.tree.map(lambda x: 0.01 * x + 0.001, narrow)
  tile = lambda tree: jax.tree.map(  # noqa: E731
      lambda x: jnp.tile(x, (1, 8)) if x.ndim == 2 else jnp.tile(x, 8), tree)
  for blind in (True, False):
    config = ExecutorConfig(size_features=not blind, normalizer_constant="scaled",
                            rule_node_degree=True)
    weights = _random_weights(config)
    small = _updates(config, weights, narrow, grads, algorithm, kwargs)
    wide = _updates(config, weights, tile(narrow), tile(grads), algorithm, kwargs)
    gap = max(float(jnp.max(jnp.abs(w - t)) / jnp.max(jnp.abs(t)))
              for w, t in zip(jax.tree.leaves(wide), jax.tree.leaves(tile(small))))
    if blind:
      assert gap < 1e-4, f"size-blind executor: wide update off the tiled one by {gap:.2e}"
    else:
      assert gap > 1e-3, "an executor reading sizes should see the wider layer"


def test_shape_blind_keeps_rank_and_the_factoring_test_only():
  from learned_opt.executor.optimizer import graph_of  # pylint: disable=import-outside-toplevel
  params = {"a": jnp.zeros((64, 32)), "b": jnp.zeros((64, 256)), "c": jnp.zeros((512, 10)),
            "v": jnp.zeros((32,)), "u": jnp.zeros((1000,))}
  graph = graph_of(params)
  by_shape = {info.shape: i for i, info in enumerate(graph.tensors)}
  for min_dim in (None, 16, 128):
    raw = step.tensor_features(graph, min_dim)
    blind = np.asarray(network.shape_blind(raw))
    assert not np.any(blind[:, list(network.SIZE_COLUMNS)])
    np.testing.assert_array_equal(np.asarray(step.factored_by_rule(raw)),
                                  np.asarray(step.factored_by_rule(jnp.asarray(blind))))
    np.testing.assert_array_equal(blind[by_shape[(32,)]], blind[by_shape[(1000,)]])
    # Both factored at 16, neither at 128 nor without the keyword: alike either way.
    np.testing.assert_array_equal(blind[by_shape[(64, 32)]], blind[by_shape[(64, 256)]])
    assert not np.array_equal(raw[by_shape[(64, 32)]], raw[by_shape[(64, 256)]])
  raw = step.tensor_features(graph, 16)
  blind = np.asarray(network.shape_blind(raw))
  # (512, 10): second largest dimension 10 < 16, not factored, read as unfactored.
  assert blind[by_shape[(512, 10)], network.FACTORING_COLUMN] == -2.0
  assert blind[by_shape[(64, 32)], network.FACTORING_COLUMN] == 0.5
