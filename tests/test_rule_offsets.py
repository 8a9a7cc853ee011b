"""Per-rule output offsets (ExecutorConfig.rule_offsets) and imitation's `init_from`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_opt import checkpoint
from learned_opt.executor import (ExecutorConfig, ExecutorOptimizer, conditioning, init_weights,
                                  network)
from meta_train import imitate
from tests.test_imitate import _tiny_config

_OFFSETS = ExecutorConfig(rule_offsets=True)


def _outputs(weights, config, rule: str):
  """(hypernet outputs, tensor-net outputs) for `rule` at clock 5 on two tensors."""
  cond_fn, hyper_fn, tensor_fn = network.build(config).apply
  rule_id = jnp.asarray(config.rules.index(rule), jnp.int32)
  c = cond_fn(weights, rule_id, jnp.linspace(-1.0, 1.0, conditioning.NUM_HYPER_FEATURES),
              conditioning.time_features(jnp.asarray(5)))
  feats = jnp.linspace(0.0, 1.0, 2 * network.NUM_TENSOR_FEATURES).reshape(2, -1)
  return hyper_fn(weights, c), tensor_fn(weights, c, feats)


def test_fresh_offsets_are_neutral_and_complete_an_old_checkpoint():
  base = init_weights(ExecutorConfig(), jax.random.PRNGKey(3))
  completed = network.complete_weights(base, _OFFSETS)
  assert completed["hypernet_rule_offsets"]["w"].shape == (
      len(_OFFSETS.rules), _OFFSETS.num_hyper_outputs)
  assert completed["tensor_net_rule_offsets"]["w"].shape == (
      len(_OFFSETS.rules), network.NUM_TENSOR_OUTPUTS)
  for rule in ("adam", "sgd", "adafactor"):
    for got, want in zip(_outputs(completed, _OFFSETS, rule),
                         _outputs(base, ExecutorConfig(), rule)):
      np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_an_offset_moves_only_its_own_rule(params):
  weights = network.complete_weights(init_weights(ExecutorConfig(), jax.random.PRNGKey(0)),
                                     _OFFSETS)
  before = {r: _outputs(weights, _OFFSETS, r) for r in ("adam", "sgd")}
  adam = _OFFSETS.rules.index("adam")
  moved = dict(weights)
  moved["hypernet_rule_offsets"] = {"w": weights["hypernet_rule_offsets"]["w"].at[adam].add(0.5)}
  moved["tensor_net_rule_offsets"] = {
      "w": weights["tensor_net_rule_offsets"]["w"].at[adam, 0].add(1.0)}
  hyper, tensor = _outputs(moved, _OFFSETS, "adam")
  scale = network.RULE_OFFSET_SCALE
  np.testing.assert_allclose(hyper, before["adam"][0] + 0.5 * scale, rtol=1e-6)
  np.testing.assert_allclose(tensor[:, 0], before["adam"][1][:, 0] + scale, rtol=1e-6)
  np.testing.assert_allclose(tensor[:, 1:], before["adam"][1][:, 1:], rtol=1e-6)
  for got, want in zip(_outputs(moved, _OFFSETS, "sgd"), before["sgd"]):
    np.testing.assert_array_equal(got, want)
  # And the optimizer runs with them: the update changes for adam only.
  grads = jax.tree.map(jnp.ones_like, params)
  def update(w, rule, kwargs):
    executor = ExecutorOptimizer(w, _OFFSETS, rule, kwargs)
    return executor.step(grads, executor.init(params), params).updates
  for rule, kwargs, changes in (("adam", {"learning_rate": 1e-2}, True),
                                ("sgd", {"learning_rate": 0.1}, False)):
    a, b = update(weights, rule, kwargs), update(moved, rule, kwargs)
    same = all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert same != changes, rule


def test_imitation_starts_from_a_checkpoint_with_offsets_added(tmp_path):
  config = _tiny_config()
  imitate.train(config, str(tmp_path / "first"))
  config.init_from = str(tmp_path / "first" / "checkpoints")
  config.executor.rule_offsets = True
  last = imitate.train(config, str(tmp_path / "second"))
  assert last["step"] == config.num_steps and np.isfinite(last["loss"])
  weights, exec_config, _ = checkpoint.restore(tmp_path / "second" / "checkpoints")
  assert exec_config.rule_offsets
  # Two imitation steps moved the new tables away from zero.
  assert np.any(np.asarray(weights["hypernet_rule_offsets"]["w"]) != 0.0)


def test_init_from_with_other_rules_is_refused(tmp_path):
  config = _tiny_config()
  imitate.train(config, str(tmp_path / "first"))
  config.init_from = str(tmp_path / "first" / "checkpoints")
  config.executor.rules = ("adam", "sgd")
  with pytest.raises(ValueError, match="trained for rules"):
    imitate.train(config, str(tmp_path / "second"))
