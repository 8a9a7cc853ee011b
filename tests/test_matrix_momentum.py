"""A shorter first-moment memory on weight matrices and on vectors
(HandSet.matrix_momentum_shift, vector_momentum_shift)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_opt.executor import (ExecutorConfig, ExecutorOptimizer, HandSet, encode,
                                  init_weights, step)
from learned_opt.executor.optimizer import graph_of


def _first_moments(hand_set, params, grads, steps=2):
  """(s1 per leaf after each step, debiased first moments after the last)."""
  weights = init_weights(ExecutorConfig(), jax.random.PRNGKey(0))
  executor = ExecutorOptimizer(weights, ExecutorConfig(), "adam", {"learning_rate": 1e-2},
                               hand_set)
  state, run, s1s = executor.init(params), jax.jit(executor.step), []
  for _ in range(steps):
    out = run(grads, state, params)
    state = out.state
    s1s.append(jax.tree.leaves(state.s1))
  return s1s, jax.tree.leaves(out.predictions["first_moment"])


def _decay(s1s, i):
  """a from s1 = b g after one step and (a + 1) b g after two, under a constant g."""
  ratio = np.asarray(s1s[1][i]) / np.asarray(s1s[0][i])
  return float(np.median(ratio)) - 1.0


def test_each_kind_of_tensor_remembers_as_shifted_and_debiases_on_its_own(params):
  rng = np.random.default_rng(0)
  grads = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), params)
  tensors = graph_of(params).tensors
  matrices = [encode.is_matrix(info) for info in tensors]
  vectors = [len(info.shape) <= 1 for info in tensors]
  assert matrices.count(True) == 2   # dense/w and the head; not the kernels or biases
  assert vectors.count(True) == 3    # two biases and the scalar
  base, base_first = _first_moments(HandSet(), params, grads)
  hand_set = HandSet(matrix_momentum_shift=1.0, vector_momentum_shift=0.5)
  shifted, shifted_first = _first_moments(hand_set, params, grads)
  a1 = _decay(base, 0)
  assert 0.5 < a1 < 1.0
  for i, info in enumerate(tensors):
    shift = encode.momentum_shift(info, hand_set)
    assert shift == (1.0 if matrices[i] else 0.5 if vectors[i] else 0.0)
    assert _decay(shifted, i) == pytest.approx(1.0 - (1.0 - a1) * math.exp(shift), rel=1e-4)
    # A constant gradient's debiased average is the gradient, whatever the decay.
    np.testing.assert_allclose(shifted_first[i], jax.tree.leaves(grads)[i], rtol=1e-4)
    np.testing.assert_allclose(base_first[i], jax.tree.leaves(grads)[i], rtol=1e-4)


def test_the_plain_form_agrees_with_the_fused_one(params):
  rng = np.random.default_rng(1)
  grads = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), params)
  config = ExecutorConfig()
  hand_set = HandSet(matrix_momentum_shift=0.7, vector_momentum_shift=0.3)
  weights = jax.tree.map(lambda w: w + 0.05, init_weights(config, jax.random.PRNGKey(0)))
  executor = ExecutorOptimizer(weights, config, "adam", {"learning_rate": 1e-2}, hand_set)
  graph = graph_of(params)
  feats = encode.tensor_features(graph, None)
  outs = {}
  for form in step.FORMS:
    state = executor.init(params)
    for _ in range(3):
      out = step.executor_step(weights, config, hand_set, graph, executor.rule_id,
                               executor.hyper_features, 1e-2, feats, grads, state, params,
                               form=form)
      state = out.state
    outs[form] = out
  for a, b in zip(jax.tree.leaves(outs["fused"].updates), jax.tree.leaves(outs["plain"].updates)):
    np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-7)
  z_first = np.asarray(outs["fused"].state.z_first)
  assert (z_first > 0).sum() == 5 and (z_first == 0).sum() == 2   # conv and attention kernels


def test_without_a_shift_the_state_keeps_no_shifted_debiasing(params):
  executor = ExecutorOptimizer(init_weights(ExecutorConfig(), jax.random.PRNGKey(0)),
                               ExecutorConfig(), "adam", {"learning_rate": 1e-2})
  assert executor.init(params).z_first is None
