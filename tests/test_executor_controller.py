"""The learned controller (learned_opt.executor.controller): neutral when fresh, the
hypergradient rule when its head says so, the loss signal, its state and refusals."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import learned_opt
from learned_opt.executor import ExecutorConfig, HandSet, controller, init_weights, network
from learned_opt.executor.optimizer import ExecutorOptimizer, check_state
from tests.test_rules_hypergradient import drifting_grads, small_params

LR = 0.05
CONFIG = ExecutorConfig(controller_hidden=4)


def run(weights, config, grads_seq, params, values=None, algorithm="adam"):
  """The executor's updates along a fixed gradient sequence (params held fixed)."""
  opt = ExecutorOptimizer(weights, config, algorithm, {"learning_rate": LR}, HandSet())
  tx = opt.as_optax()
  state = tx.init(params)
  out = []
  step = jax.jit(tx.update)
  for i, grads in enumerate(grads_seq):
    kwargs = {} if values is None else {"value": jnp.asarray(values[i], jnp.float32)}
    updates, state = step(grads, state, params, **kwargs)
    out.append(updates)
  return out, state


@pytest.fixture(scope="module")
def fresh():
  return init_weights(CONFIG, jax.random.PRNGKey(0))


def with_head_bias(weights, bias):
  weights = jax.tree.map(jnp.asarray, weights)
  weights["controller_head"] = dict(weights["controller_head"],
                                    b=jnp.asarray(bias, jnp.float32))
  return weights


def test_a_fresh_controller_leaves_the_updates_unchanged(fresh):
  params = small_params()
  grads_seq = drifting_grads(params, 6)
  plain_config = dataclasses.replace(CONFIG, controller_hidden=0)
  plain = {k: v for k, v in fresh.items() if not k.startswith("controller")}
  expected, _ = run(plain, plain_config, grads_seq, params)
  got, state = run(fresh, CONFIG, grads_seq, params, values=np.linspace(2.0, 1.0, 6))
  for a, b in zip(expected, got):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)
  assert np.any(np.asarray(state.controller.hidden) != 0)   # it ran, and its head is zero


def test_its_head_at_rho_equal_beta_is_multiplicative_hypergradient_descent(fresh):
  """With rho = beta the log step size integrates beta cos(g, d_prev): the hypergradient
  rule on Adam, up to log(1 + beta c) ~ beta c (|error| <= steps beta^2 / 2)."""
  beta, steps = 0.01, 40
  params = small_params()
  grads_seq = drifting_grads(params, steps)
  rule = learned_opt.algorithms.get("hypergradient", learning_rate=LR, hypergradient_lr=beta)
  state = rule.init(params)
  expected = []
  for grads in grads_seq:
    updates, state, _ = rule.step(grads, state, params)
    expected.append(updates)
  moved = max(abs(float(a) / LR - 1) for a in jax.tree.leaves(state.step_size))
  assert moved > 0.05   # the step sizes adapted: the comparison below can tell
  tolerance = 1.5 * steps * beta ** 2 / 2 + 1e-4

  def worst(updates):
    return max(float(np.max(np.abs(np.asarray(a) / np.asarray(b) - 1)))
               for got, want in zip(updates, expected)
               for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)))

  got, ctl_state = run(with_head_bias(fresh, [beta, 0, 0, 0]), CONFIG, grads_seq, params)
  assert worst(got) < tolerance
  np.testing.assert_allclose(np.exp(np.asarray(ctl_state.controller.log_step)),
                             [float(a) / LR for a in jax.tree.leaves(state.step_size)],
                             rtol=tolerance)
  untrained, _ = run(fresh, CONFIG, grads_seq, params)
  assert worst(untrained) > 2 * tolerance   # a zero head is plain Adam: it fails the test


def test_the_loss_signal_reaches_the_update_and_a_nan_loss_is_not_remembered(fresh):
  params = small_params()
  grads_seq = drifting_grads(params, 4)
  weights = jax.tree.map(jnp.asarray, fresh)
  w = np.zeros(weights["controller_head"]["w"].shape, np.float32)
  w[-controller.NUM_SIGNALS + controller.LOSS_COLUMN, 1] = 1.0   # delta = q
  weights["controller_head"] = dict(weights["controller_head"], w=jnp.asarray(w))
  falling, _ = run(weights, CONFIG, grads_seq, params, values=[4.0, 2.0, 1.0, 0.5])
  flat, _ = run(weights, CONFIG, grads_seq, params, values=[1.0, 1.0, 1.0, 1.0])
  ratio = np.asarray(falling[2]["w"]) / np.asarray(flat[2]["w"])
  np.testing.assert_allclose(ratio, np.exp(-0.5 - 0.5), rtol=1e-4)   # two halvings: q = -1/2
  _, state = run(weights, CONFIG, grads_seq, params, values=[1.0, 2.0, np.nan, np.nan])
  assert float(state.controller.loss) == 2.0 and np.all(np.isfinite(
      np.asarray(state.controller.log_step)))


def test_its_state_is_order_tensors_and_a_state_without_it_is_refused(fresh):
  params = small_params()
  opt = ExecutorOptimizer(fresh, CONFIG, "adam", {"learning_rate": LR}, HandSet())
  state = opt.init(params)
  num_tensors = len(jax.tree.leaves(params))
  assert state.controller.hidden.shape == (num_tensors, CONFIG.controller_hidden)
  assert state.controller.log_step.shape == (num_tensors,)
  plain = dataclasses.replace(CONFIG, controller_hidden=0)
  with pytest.raises(TypeError, match="controller is missing"):
    check_state(ExecutorOptimizer(
        {k: v for k, v in fresh.items() if not k.startswith("controller")}, plain, "adam",
        {"learning_rate": LR}).init(params), params, CONFIG, HandSet())
  with pytest.raises(ValueError, match="controller_hidden must be >= 0"):
    ExecutorConfig(controller_hidden=-1)


def test_an_old_checkpoint_gains_a_neutral_controller():
  plain = dataclasses.replace(CONFIG, controller_hidden=0)
  weights = init_weights(plain, jax.random.PRNGKey(1))
  completed = network.complete_weights(weights, CONFIG)
  assert {"controller_gru", "controller_head"} <= set(completed)
  assert not np.any(np.asarray(completed["controller_head"]["w"]))


def test_cross_layer_messages_follow_the_wiring():
  params = {"layer_0": {"w": jnp.zeros((5, 4)), "b": jnp.zeros(4)},
            "layer_1": {"w": jnp.zeros((4, 3)), "b": jnp.zeros(3)}}
  graph = learned_opt.graph.ParamGraph.from_params(params)
  paths = [info.path for info in graph.tensors]
  up, down = controller.wiring_matrices(graph)
  w0, b0, w1, b1 = (paths.index(f"layer_{i}/{n}") for i in (0, 1) for n in ("w", "b"))
  assert up[w1, w0] == up[w1, b0] == 0.5 and not up[w0].any()   # layer 1 reads layer 0
  assert down[w0, w1] == 1.0 and down[b0, w1] == 1.0 and not down[w1].any()
  with pytest.raises(ValueError, match="needs controller_hidden > 0"):
    ExecutorConfig(controller_messages=True)


def test_a_fresh_controller_with_messages_is_neutral_and_its_messages_reach_the_update():
  config = dataclasses.replace(CONFIG, controller_messages=True)
  weights = init_weights(config, jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  params = {f"layer_{i}": {"w": jnp.asarray(rng.standard_normal(shape), jnp.float32),
                           "b": jnp.zeros(shape[1], jnp.float32)}
            for i, shape in enumerate([(5, 4), (4, 3)])}
  grads_seq = drifting_grads(params, 4)
  plain, _ = run(init_weights(CONFIG, jax.random.PRNGKey(0)), CONFIG, grads_seq, params)
  got, _ = run(weights, config, grads_seq, params)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)),
               plain[-1], got[-1])
  w = np.zeros(weights["controller_head"]["w"].shape, np.float32)
  w[:config.controller_hidden, 1] = 0.1   # delta reads the GRU's output
  moved = dict(weights, controller_head=dict(weights["controller_head"], w=jnp.asarray(w)))
  gru = dict(moved["controller_gru"])
  messages_rows = slice(gru["w_i"].shape[0] - 2 * config.controller_hidden, None)
  silenced = dict(moved, controller_gru=dict(
      gru, w_i=jnp.asarray(gru["w_i"]).at[messages_rows].set(0.0)))
  with_messages, _ = run(moved, config, grads_seq, params)
  without, _ = run(silenced, config, grads_seq, params)
  assert not np.allclose(np.asarray(with_messages[-1]["layer_1"]["w"]),
                         np.asarray(without[-1]["layer_1"]["w"]))
