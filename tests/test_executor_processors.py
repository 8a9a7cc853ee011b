"""Every processor behind `learned_opt.executor.processors` runs the executor step.

A new processor registered in `processors._PROCESSORS` is picked up here: copy this
file's checks for anything it adds. Each runs under jit on the mixed pytree
(tests/conftest.py: conv kernels, a rank-3 weight, dense weights, biases, a scalar),
with both normalizers, keeps the state structure init gives it, and gives finite
updates of the parameters' shapes and dtypes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_opt.executor import ExecutorConfig, ExecutorOptimizer, HandSet, processors
from learned_opt.executor.config import NORMALIZERS
from tests.conftest import random_executor_weights, random_grads


def test_the_factory_lists_both_processors_and_refuses_others():
  assert len(processors.names()) >= 2
  assert processors.names()[:2] == ("per_edge", "row_column")
  for name in processors.names():
    processor = processors.get(name)
    assert callable(processor.init) and callable(processor.apply)
  with pytest.raises(ValueError, match="Unknown processor 'two_hop'"):
    processors.get("two_hop")
  with pytest.raises(ValueError, match="Unknown processor 'two_hop'"):
    ExecutorConfig(processor="two_hop")


@pytest.mark.parametrize("normalizer", NORMALIZERS)
@pytest.mark.parametrize("name", processors.names())
def test_each_processor_steps_under_jit_with_a_stable_state(params, name, normalizer):
  config = ExecutorConfig(processor=name, normalizer=normalizer)
  hand_set = HandSet(rule_node_degree=normalizer == "scaled")
  executor = ExecutorOptimizer(random_executor_weights(config), config, "adam",
                               {"learning_rate": 1e-2}, hand_set)
  state = executor.init(params)
  structure = jax.tree.structure(state)
  shapes = [(x.shape, x.dtype) for x in jax.tree.leaves(state)]
  step = jax.jit(executor.step)
  for t in range(3):
    out = step(random_grads(jax.random.PRNGKey(0), params, t), state, params)
    assert jax.tree.structure(out.state) == structure
    assert [(x.shape, x.dtype) for x in jax.tree.leaves(out.state)] == shapes
    assert jax.tree.structure(out.updates) == jax.tree.structure(params)
    for u, p in zip(jax.tree.leaves(out.updates), jax.tree.leaves(params)):
      assert u.shape == p.shape and u.dtype == p.dtype
      assert bool(jnp.all(jnp.isfinite(u)))
    state = out.state
  assert int(state.count) == 3


def test_processors_differ_only_on_weight_tensors(params):
  """Zero hops or one: vectors and scalars are processed alike, weight tensors are not."""
  outs = {}
  for name in ("per_edge", "row_column"):
    config = ExecutorConfig(processor=name)
    weights = random_executor_weights(config, seed=3)
    executor = ExecutorOptimizer(weights, config, "adam", {"learning_rate": 1e-2})
    grads = random_grads(jax.random.PRNGKey(1), params, 0)
    outs[name] = executor.step(grads, executor.init(params), params).updates
  for a, b, p in zip(jax.tree.leaves(outs["per_edge"]), jax.tree.leaves(outs["row_column"]),
                     jax.tree.leaves(params)):
    if p.ndim < 2:
      np.testing.assert_allclose(a, b, rtol=1e-6)
    else:
      assert not np.allclose(a, b, rtol=1e-3)


def test_per_edge_state_keeps_no_node_statistics_under_the_exp_normalizer(params):
  config = ExecutorConfig(processor="per_edge")
  executor = ExecutorOptimizer(random_executor_weights(config), config, "adam",
                               {"learning_rate": 1e-2})
  assert executor.init(params).nodes == processors.NodeState(None, None)
