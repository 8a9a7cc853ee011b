"""Options that build what the rules share into the executor instead of learning it.

ExecutorConfig.size_features=False: the executor cannot tell a wider layer from a
narrow one. A layer whose columns are 8 copies of a narrower layer's columns (weights and gradients
alike) has the same row mean squares, the same column mean squares (tiled) and the same
RMS of every per-tensor readout, so every imitated rule gives it the tiled update. A
size-blind executor must too, whatever its weights; one that reads the sizes does not.

HandSet.rule_gain_slopes=True: the layer gain has each rule's own dependence on
RMS(p) and RMS(d) (Adafactor's parameter scale and update clipping, LAMB's trust ratio,
none for Adam or SGD), whatever the tensor net says.
"""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from learned_opt.executor import (ExecutorConfig, ExecutorOptimizer, HandSet, encode, network,
                                  pins, readout)
from tests.conftest import random_executor_weights


def _updates(config, hand_set, weights, params, grads, algorithm, kwargs, steps=3):
  tx = ExecutorOptimizer(weights, config, algorithm, kwargs, hand_set).as_optax()
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
    config = ExecutorConfig(size_features=not blind, normalizer="scaled")
    hand_set = HandSet(rule_node_degree=True)
    weights = random_executor_weights(config, seed=1)
    small = _updates(config, hand_set, weights, narrow, grads, algorithm, kwargs)
    wide = _updates(config, hand_set, weights, tile(narrow), tile(grads), algorithm, kwargs)
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
    raw = encode.tensor_features(graph, min_dim)
    blind = np.asarray(network.shape_blind(raw))
    assert not np.any(blind[:, list(network.SIZE_COLUMNS)])
    np.testing.assert_array_equal(np.asarray(network.factored_by_rule(raw)),
                                  np.asarray(network.factored_by_rule(jnp.asarray(blind))))
    np.testing.assert_array_equal(blind[by_shape[(32,)]], blind[by_shape[(1000,)]])
    # Both factored at 16, neither at 128 nor without the keyword: alike either way.
    np.testing.assert_array_equal(blind[by_shape[(64, 32)]], blind[by_shape[(64, 256)]])
    assert not np.array_equal(raw[by_shape[(64, 32)]], raw[by_shape[(64, 256)]])
  raw = encode.tensor_features(graph, 16)
  blind = np.asarray(network.shape_blind(raw))
  # (512, 10): second largest dimension 10 < 16, not factored, read as unfactored.
  assert blind[by_shape[(512, 10)], network.FACTORING_COLUMN] == -2.0
  assert blind[by_shape[(64, 32)], network.FACTORING_COLUMN] == 0.5


_RULES = ExecutorConfig().rules


def _log_gain(hand_set, weights_seed, rule, log_rms_p, log_rms_d):
  rng = np.random.default_rng(weights_seed)
  raw = jnp.asarray(rng.standard_normal((1, network.NUM_GAIN_COEFFS)), jnp.float32)
  coeffs = pins.pin_rule_gain(raw, _RULES, hand_set, jnp.asarray(_RULES.index(rule)))
  return float(readout.layer_log_gain(coeffs, jnp.asarray([log_rms_p]),
                                      jnp.asarray([log_rms_d]))[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pinned_gain_has_each_rules_dependence_on_the_readouts(seed):
  gain = functools.partial(_log_gain, HandSet(rule_gain_slopes=True), seed)
  log = np.log
  # Adafactor: x RMS(p) above 1e-3 and the floor below it and at all-zero parameters;
  # / RMS(d) above the knot, flat below it (the knot is learned: read it off the slopes).
  np.testing.assert_allclose(gain("adafactor", log(0.2), -30.0) - gain("adafactor", log(0.1),
                                                                         -30.0), log(2.0),
                             atol=1e-5)
  np.testing.assert_allclose(gain("adafactor", log(1e-4), -30.0),
                             gain("adafactor", log(1e-3), -30.0), atol=1e-5)
  np.testing.assert_allclose(gain("adafactor", readout.LOG_ZERO - 1.0, -30.0),
                             gain("adafactor", log(1e-3), -30.0), atol=1e-5)
  high, low = gain("adafactor", 0.0, 40.0), gain("adafactor", 0.0, 41.0)
  np.testing.assert_allclose(low - high, -1.0, atol=1e-5)
  np.testing.assert_allclose(gain("adafactor", 0.0, -41.0), gain("adafactor", 0.0, -40.0),
                             atol=1e-5)
  # LAMB: RMS(p) / RMS(d); Adam and SGD read neither.
  np.testing.assert_allclose(gain("lamb", 0.5, 1.0) - gain("lamb", 0.0, 0.0), -0.5, atol=1e-5)
  for rule in ("adam", "sgd"):
    np.testing.assert_allclose(gain(rule, 2.0, -3.0), gain(rule, -1.0, 4.0), atol=1e-5)
  # Without the option the tensor net's coefficients stand.
  free = functools.partial(_log_gain, HandSet(), seed)
  assert abs(free("adam", 2.0, -3.0) - free("adam", -1.0, 4.0)) > 1e-3


def test_pinned_gain_reaches_the_optimizer():
  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.standard_normal((24, 16)), jnp.float32),
            "b": jnp.zeros((16,))}
  grads = jax.tree.map(lambda x: 0.01 * x + 0.001, params)
  out = {}
  for pinned in (False, True):
    config = ExecutorConfig()
    out[pinned] = _updates(config, HandSet(rule_gain_slopes=pinned),
                           random_executor_weights(config, seed=1), params, grads, "adafactor",
                           {"learning_rate": 1e-2, "min_dim_size_to_factor": 16}, steps=2)
  for a, b in zip(jax.tree.leaves(out[False]), jax.tree.leaves(out[True])):
    assert bool(jnp.all(jnp.isfinite(b)))
  assert any(float(jnp.max(jnp.abs(a - b))) > 1e-6
             for a, b in zip(jax.tree.leaves(out[False]), jax.tree.leaves(out[True])))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clip_knot_clips_where_adafactor_does(seed):
  """With rule_clip_knots, u' = e^(bias - log 1e-3) d is Adafactor's u: the step's log RMS
  (over lr) is log max(RMS(p), 1e-3) + min(log RMS(u'), 0), whatever the tensor net says."""
  hand_set = HandSet(rule_gain_slopes=True, rule_clip_knots=True)
  rng = np.random.default_rng(seed)
  raw = jnp.asarray(rng.standard_normal((1, network.NUM_GAIN_COEFFS)), jnp.float32)
  bias = float(raw[0, -1])
  for rule in _RULES:
    coeffs = pins.pin_rule_gain(raw, _RULES, hand_set, jnp.asarray(_RULES.index(rule)))
    for log_rms_p in (np.log(0.3), np.log(1e-5)):
      for log_rms_u in (-2.0, -0.1, 0.0, 0.4, 3.0):
        log_rms_d = log_rms_u - bias + np.log(1e-3)
        gain = float(readout.layer_log_gain(coeffs, jnp.asarray([log_rms_p]),
                                            jnp.asarray([log_rms_d]))[0])
        if rule == "adafactor":
          np.testing.assert_allclose(gain + log_rms_d,
                                     max(log_rms_p, np.log(1e-3)) + min(log_rms_u, 0.0),
                                     atol=1e-4)
        else:   # the other rules' coefficients are those of rule_gain_slopes alone
          unclipped = pins.pin_rule_gain(raw, _RULES, HandSet(rule_gain_slopes=True),
                                         jnp.asarray(_RULES.index(rule)))
          np.testing.assert_array_equal(np.asarray(coeffs), np.asarray(unclipped))


def test_clip_knots_need_the_pinned_slopes():
  with pytest.raises(ValueError, match="rule_gain_slopes"):
    HandSet(rule_clip_knots=True)


def _optax_state(state, field: str):
  """The first state with `field` (v_row: Adafactor's, nu: Adam's) inside an optax chain's
  nested tuple of states."""
  if hasattr(state, field):
    return state
  for child in (state if isinstance(state, tuple) else ()):
    found = _optax_state(child, field)
    if found is not None:
      return found
  return None


def _beside_optax(config, hand_set, algorithm, kwargs, params, rng, weights_seed, scaled,
                  steps=6):
  """(the executor's state, optax's) after `steps` updates on the same random gradients,
  the k-th scaled by `scaled(g, k)`; the executor with random weights."""
  tx = ExecutorOptimizer(random_executor_weights(config, seed=weights_seed), config,
                         algorithm, kwargs, hand_set).as_optax()
  reference = getattr(optax, algorithm)(**kwargs)
  state, ref_state = tx.init(params), reference.init(params)
  for k in range(steps):
    grads = jax.tree.map(
        lambda x, k=k: scaled(jnp.asarray(rng.standard_normal(x.shape), jnp.float32), k),
        params)
    _, state = tx.update(grads, state, params)
    _, ref_state = reference.update(grads, ref_state, params)
  return (state.inner_state if hasattr(state, "inner_state") else state), ref_state


@pytest.mark.parametrize("pinned", [True, False])
def test_node_decays_follow_adafactors_own_row_and_column_moments(pinned):
  """With rule_node_decays the executor's row/column states are optax.adafactor's v_row and
  v_col along a run, whatever the hypernet says; without, they are not."""
  hand_set = HandSet(rule_gain_slopes=True, rule_node_decays=pinned)
  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.standard_normal((32, 24)), jnp.float32),
            "b": jnp.zeros((24,))}
  kwargs = {"learning_rate": 1e-2, "min_dim_size_to_factor": 16}
  executor_state, ref_state = _beside_optax(ExecutorConfig(), hand_set, "adafactor", kwargs,
                                            params, rng, 2, lambda g, k: g * (1 + k))
  factored = _optax_state(ref_state, "v_row")
  rows, cols = executor_state.nodes.rows["w"], executor_state.nodes.cols["w"]
  z3 = float(executor_state.z[2])
  # optax names its factors by the axis they keep the other way round: its (24,) v_row is
  # the mean over the 32 rows, the executor's column state.
  by_shape = {factored.v_row["w"].shape: factored.v_row["w"],
              factored.v_col["w"].shape: factored.v_col["w"]}
  close = (np.allclose(rows / z3, by_shape[rows.shape], rtol=1e-4)
           and np.allclose(cols / z3, by_shape[cols.shape], rtol=1e-4))
  assert close == pinned


@pytest.mark.parametrize("pinned", [True, False])
def test_moment_decays_follow_adafactors_own_unfactored_moment(pinned):
  """With rule_moment_decays the executor's second moment s2^2 (debiased by z2) is
  optax.adafactor's unfactored v along a run, on a vector and on a matrix it does not
  factor, whatever the hypernet says; without, it is not."""
  hand_set = HandSet(rule_gain_slopes=True, rule_moment_decays=pinned)
  rng = np.random.default_rng(1)
  params = {"w": jnp.asarray(rng.standard_normal((32, 8)), jnp.float32),
            "b": jnp.zeros((8,))}
  kwargs = {"learning_rate": 1e-2, "min_dim_size_to_factor": 16}
  executor_state, ref_state = _beside_optax(ExecutorConfig(), hand_set, "adafactor", kwargs,
                                            params, rng, 3, lambda g, k: g / (1 + k))
  factored = _optax_state(ref_state, "v_row")
  z2 = float(executor_state.z[1])
  close = [np.allclose(np.square(executor_state.s2[name]) / z2, factored.v[name], rtol=1e-4)
           for name in ("w", "b")]
  assert close == [pinned, pinned]


@pytest.mark.parametrize("algorithm,kwargs,trained", [
    ("adam", {"learning_rate": 1e-3, "b2": 0.95}, ()),
    ("lamb", {"learning_rate": 1e-3}, ()),
    # Trained without b2 (as the shipped executor's LAMB): its features carry no b2.
    ("lamb", {"learning_rate": 1e-3}, (("lamb", ("b1", "learning_rate", "weight_decay")),)),
])
@pytest.mark.parametrize("pinned", [True, False])
def test_b2_decays_give_adams_own_bias_corrected_second_moment(algorithm, kwargs, trained,
                                                               pinned):
  """With rule_b2_decays the executor's debiased second moment s2^2 / z2 is optax's
  bias-corrected nu / (1 - b2^t) along a run (Adam at b2 0.95, LAMB at its default
  0.999, also where its features leave b2 out), whatever the hypernet says; without, it
  is not."""
  config = ExecutorConfig(trained_options=trained)
  hand_set = HandSet(rule_b2_decays=(algorithm,) if pinned else ())
  rng = np.random.default_rng(2)
  params = {"w": jnp.asarray(rng.standard_normal((12, 8)), jnp.float32),
            "b": jnp.zeros((8,))}
  steps = 6
  executor_state, ref_state = _beside_optax(config, hand_set, algorithm, kwargs, params, rng,
                                            4, lambda g, k: g / (1 + k), steps)
  z2 = float(executor_state.z[1])
  correction = 1.0 - kwargs.get("b2", 0.999) ** steps
  close = [np.allclose(np.square(executor_state.s2[name]) / z2,
                       _optax_state(ref_state, "nu").nu[name] / correction, rtol=1e-4)
           for name in ("w", "b")]
  assert close == [pinned, pinned]


def test_b2_decays_of_a_rule_without_b2_is_refused():
  with pytest.raises(ValueError, match=r"rule_b2_decays names \['sgd'\]"):
    HandSet(rule_b2_decays=("adam", "sgd"))


def test_structural_options_survive_the_checkpoints_json():
  """The options set at ship time come back from the record's JSON as they were (tuples
  stay tuples, so the record stays hashable for jit)."""
  hand_set = HandSet(rule_gain_slopes=True, rule_clip_knots=True, rule_node_decays=True,
                     rule_moment_decays=True, rule_b2_decays=("adam",), readout_rows=0)
  restored = HandSet.from_json(json.loads(json.dumps(hand_set.to_json())))
  assert restored == hand_set and hash(restored) == hash(hand_set)
