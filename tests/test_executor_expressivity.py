"""The executor's architecture can represent the classic rules exactly.

Weights are set by hand (hypernet, scale and gain networks reduced to their
biases), then the executor runs beside optax: this checks the fused per-edge
program, the debiasing state and the layer readout, independently of training.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import learned_opt

from learned_opt.executor import (ExecutorConfig, ExecutorOptimizer, HandSet, conditioning,
                                  encode, init_weights, network)
from learned_opt.executor.config import NORMALIZERS, RUNNING_AVERAGES
from tests.conftest import random_grads


# Normalizer outputs: alpha, exponents (rows, cols, mean rows), log-scale bias, log beta,
# raw sign gain, log epsilon. Adam: d = m / (v + 1e-8); SGD: d = n / 1.
_ADAM_NORMALIZER = (1, 0, 0, 0, 0, -60, -30, math.log(1e-8))
_SGD_NORMALIZER = (0, 0, 0, 0, 0, 0, -30, -60)


def _raw_decay(beta):
  return math.log((1 - beta) / beta) if beta > 0 else 30.0


def _hand_weights(config, decays, gains, linear, exponents, weight_decay=0.0,
                  gain_linear=None):
  weights = jax.tree.map(jnp.zeros_like, init_weights(config, jax.random.PRNGKey(0)))
  h, f = config.edge_hidden, network.NUM_EDGE_FEATURES
  hyper = ([_raw_decay(b) for b in decays] + [math.log(g) for g in gains] + list(linear)
           + [0.0] * (f * h + h) + [weight_decay])
  weights["hypernet_linear"]["b"] = jnp.asarray(hyper, jnp.float32)
  gain = np.zeros(network.NUM_GAIN_COEFFS, np.float32)
  if gain_linear is not None:
    gain[0], gain[4] = gain_linear  # linear coefficients of log rms(param), log rms(dir)
  weights["tensor_net_linear"]["b"] = jnp.asarray(np.concatenate([exponents, gain]),
                                                  jnp.float32)
  return weights


def compare(executor, reference, params, steps=30, rtol=2e-4, advance=False, atol=0.0):
  """Runs the executor beside an optax `reference` on random gradients and checks every
  update leaf (within rtol, and rtol times the leaf's largest entry or `atol`); with
  `advance` the params follow the reference's updates. Returns the executor's last
  StepOutput."""
  state, ref_state = executor.init(params), reference.init(params)
  step = jax.jit(executor.step)
  for t in range(steps):
    grads = random_grads(jax.random.PRNGKey(1), params, t)
    out = step(grads, state, params)
    state = out.state
    ref, ref_state = reference.update(grads, ref_state, params)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(out.updates),
                            jax.tree.leaves(ref)):
      np.testing.assert_allclose(a, b, rtol=rtol,
                                 atol=max(atol, rtol * float(jnp.max(jnp.abs(b)))),
                                 err_msg=f"step {t} {jax.tree_util.keystr(path)}")
    if advance:
      params = optax.apply_updates(params, ref)
  return out




def test_executor_can_be_adam(params):
  config = ExecutorConfig()
  weights = _hand_weights(config, decays=(0.9, 0.999, 0.5), gains=(0.1, 0.001, 0.5),
                          linear=(0, 0, 0, 1), exponents=_ADAM_NORMALIZER)
  executor = ExecutorOptimizer(weights, config, "adam", {"learning_rate": 1e-2})
  compare(executor, optax.adam(1e-2), params)


def test_executor_can_be_sgd_with_momentum(params):
  config = ExecutorConfig()
  weights = _hand_weights(config, decays=(0.8, 0.5, 0.5), gains=(1.0, 1.0, 1.0),
                          linear=(0, 0, 1, 0), exponents=_SGD_NORMALIZER)
  executor = ExecutorOptimizer(weights, config, "sgd", {"learning_rate": 0.1, "momentum": 0.8})
  compare(executor, optax.sgd(0.1, momentum=0.8), params)


def test_executor_can_be_lamb(params):
  config = ExecutorConfig()
  weights = _hand_weights(config, decays=(0.9, 0.999, 0.5), gains=(0.1, 0.001, 0.5),
                          linear=(0, 0, 0, 1), exponents=_ADAM_NORMALIZER,
                          weight_decay=0.01, gain_linear=(1.0, -1.0))
  executor = ExecutorOptimizer(weights, config, "lamb",
                               {"learning_rate": 1e-2, "weight_decay": 0.01})
  compare(executor, optax.lamb(1e-2, eps=1e-8, weight_decay=0.01), params)


def test_executor_can_be_lion(params):
  config = ExecutorConfig()
  b1, b2 = 0.9, 0.99
  # Lion: sign(b1 m + (1 - b1) g) reads the old average s1; S is off and the sign gain is 1.
  weights = _hand_weights(config, decays=(b2, 0.5, 0.5), gains=(1 - b2, 1.0, 1.0),
                          linear=(1 - b1, b1, 0, 0),
                          exponents=(0, 0, 0, 0, 0, -60, math.log(math.e - 1), -60),
                          weight_decay=1e-3)
  executor = ExecutorOptimizer(weights, config, "lion", {"learning_rate": 1e-3})
  compare(executor, optax.lion(1e-3, b1=b1, b2=b2, weight_decay=1e-3), params)


def test_belief_moment_makes_the_executor_adabelief(params):
  """kappa = 1 with b1 = 1 - beta1: s2 tracks (g - m_t)^2, AdaBelief's belief. Fresh
  belief weights (kappa = 0) leave Adam's second moment, and the same run fails."""
  config = ExecutorConfig(processor="multi_hop")   # its modules hold the belief head
  b1, b2 = 0.8, 0.99
  weights = _hand_weights(config, decays=(b1, b2, 0.5), gains=(1 - b1, 1 - b2, 0.5),
                          linear=(0, 0, 0, 1), exponents=_ADAM_NORMALIZER)
  weights["belief_head"]["b"] = jnp.ones((1,))
  executor = ExecutorOptimizer(weights, config, "adabelief",
                               {"learning_rate": 1e-2, "b1": b1, "b2": b2})
  reference = optax.adabelief(1e-2, b1=b1, b2=b2, eps=1e-8, eps_root=0.0)
  compare(executor, reference, params)
  weights["belief_head"]["b"] = jnp.zeros((1,))
  fresh = ExecutorOptimizer(weights, config, "adabelief",
                            {"learning_rate": 1e-2, "b1": b1, "b2": b2})
  with pytest.raises(AssertionError):
    compare(fresh, reference, params)


@pytest.mark.parametrize("constant", NORMALIZERS)
def test_executor_factored_normalizer(params, constant):
  """Node path: d_ij = g_ij sqrt(mean_i r_i) / (sqrt(r_i) sqrt(c_j)), r and c debiased
  running means of g^2 over columns and rows (Adafactor's factored second moment).

  'exp': beta = exp(0) = 1 times N with exponents (1, 1, -1); 'scaled': beta = |1| times
  RMS(g) (vectors: their own running RMS, which the mean-row exponent cancels) times
  N with exponents (1, 1, -2)."""
  config = ExecutorConfig(normalizer=constant)
  hand_set = HandSet(rule_node_degree=constant == "scaled")
  decay = 0.9
  # Sign gain off: softplus(-30) ('exp') or |0| ('scaled').
  mean_row, beta, sign = (-1, 0, -30) if constant == "exp" else (-2, 1, 0)
  weights = _hand_weights(config, decays=(0.5, 0.5, decay), gains=(1.0, 1.0, 1 - decay),
                          linear=(1, 0, 0, 0),
                          exponents=(0, 1, 1, mean_row, 0, beta, sign, -60))
  # rule_node_degree fixes the node factor's degree per rule: 0 (scale-free) for adafactor.
  rule = "sgd" if constant == "exp" else "adafactor"
  executor = ExecutorOptimizer(weights, config, rule, {"learning_rate": 0.1}, hand_set)
  # Size-1 axes and a large matrix (reductions XLA may split) beside the mixed tree.
  params = dict(params, column=jnp.ones((16, 1)), row=jnp.ones((1, 16)),
                large=jnp.ones((300, 700)))
  graph = learned_opt.ParamGraph.from_params(params)
  state = executor.init(params)
  rows = {i: 0.0 for i in range(len(graph.tensors))}
  cols = dict(rows)
  for t in range(5):
    grads = random_grads(jax.random.PRNGKey(2), params, t)
    out = executor.step(grads, state, params)
    state = out.state
    debias = 1 - decay ** (t + 1)
    for i, (info, g, u) in enumerate(zip(graph.tensors, graph.leaves(grads),
                                         graph.leaves(out.updates))):
      g = np.asarray(g, np.float64)
      # Vectors: d = g ('exp'), or g / RMS ('scaled': their node factor, of degree 0,
      # is 1; the constant term is their own running RMS).
      if g.ndim < 2:
        rows[i] = decay * rows[i] + (1 - decay) * np.mean(g * g)
        rms = np.sqrt(rows[i] / debias)
        want = g if constant == "exp" else g / rms
        np.testing.assert_allclose(u, -0.1 * want, rtol=1e-4)
        continue
      rows[i] = decay * rows[i] + (1 - decay) * np.mean(g * g, axis=-1)
      cols[i] = decay * cols[i] + (1 - decay) * np.mean(g * g, axis=-2)
      r, c = rows[i] / debias, cols[i] / debias
      scale = (np.sqrt(r)[..., :, None] * np.sqrt(c)[..., None, :]
               / np.sqrt(np.mean(r, axis=-1))[..., None, None])
      np.testing.assert_allclose(u, -0.1 * g / scale, rtol=2e-4, err_msg=f"step {t}")


def test_weight_decay_never_grows_weights(params):
  """A negative weight-decay output reads as 0: d = n, never n - |omega| p."""
  config = ExecutorConfig()
  weights = _hand_weights(config, decays=(0.5, 0.5, 0.5), gains=(1.0, 1.0, 1.0),
                          linear=(1, 0, 0, 0), exponents=_SGD_NORMALIZER, weight_decay=-0.5)
  executor = ExecutorOptimizer(weights, config, "sgd", {"learning_rate": 0.1})
  grads = random_grads(jax.random.PRNGKey(3), params, 0)
  out = executor.step(grads, executor.init(params), params)
  for u, g in zip(jax.tree.leaves(out.updates), jax.tree.leaves(grads)):
    np.testing.assert_allclose(u, -0.1 * g, rtol=1e-6)


def test_max_time_holds_the_clock():
  config, hand_set = ExecutorConfig(), HandSet(max_time=10)
  # Weights off their prior: the time features matter now.
  weights = jax.tree.map(lambda w: w + 0.1, init_weights(config, jax.random.PRNGKey(0)))
  executor = ExecutorOptimizer(weights, config, "adam", {"learning_rate": 1e-3}, hand_set)
  params = {"w": jnp.ones((4, 3))}
  grads = {"w": jnp.arange(12.0).reshape(4, 3) - 5}
  state = executor.init(params)
  late = [executor.step(grads, state._replace(count=jnp.asarray(t, jnp.int32)), params).updates
          for t in (10, 1000)]
  early = executor.step(grads, state._replace(count=jnp.asarray(3, jnp.int32)), params).updates
  np.testing.assert_array_equal(late[0]["w"], late[1]["w"])
  assert not np.allclose(early["w"], late[0]["w"])


def test_normalizer_degree_fixes_the_directions_degree_in_the_gradient():
  """Adam's edge term with node exponents (0.5, 0.3, 0.4): the direction has degree -1.2
  in the gradient; normalizer_degree=0 makes it scale-free again, like Adam."""
  free = ExecutorConfig()
  normalizer = (1, 0.5, 0.3, 0.4, 0, -60, -30, math.log(1e-30))
  weights = _hand_weights(free, (0.9, 0.999, 0.999), (0.1, 0.001, 0.001), (0, 0, 0, 1),
                          normalizer)
  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.standard_normal((12, 8)), jnp.float32)}
  grads = [{"w": jnp.asarray(rng.standard_normal((12, 8)), jnp.float32)} for _ in range(3)]

  def last_update(hand_set, scale):
    executor = ExecutorOptimizer(weights, free, "adam", {"learning_rate": 1e-3}, hand_set)
    state = executor.init(params)
    for g in grads:
      out = executor.step(jax.tree.map(lambda x: scale * x, g), state, params)
      state = out.state
    return np.asarray(out.updates["w"])

  unpinned = HandSet()
  ratio = (np.linalg.norm(last_update(unpinned, 10.0))
           / np.linalg.norm(last_update(unpinned, 1.0)))
  np.testing.assert_allclose(ratio, 10.0 ** -1.2, rtol=1e-3)
  fixed = HandSet(normalizer_degree=0.0)
  np.testing.assert_allclose(last_update(fixed, 10.0), last_update(fixed, 1.0), rtol=1e-4)
  assert not np.allclose(last_update(fixed, 1.0), last_update(unpinned, 1.0), rtol=1e-2)


def test_both_normalizers_start_as_adam_and_the_scaled_sign_gain_has_a_live_gradient(params):
  """k = softplus(w) ('exp') or |w| ('scaled'): fresh executors are Adam either way; |w|
  is 0 at its prior and its gradient does not vanish there (softplus's is sigmoid(-12)
  ~ 6e-6)."""
  grads = jax.tree.map(lambda x: jnp.cos(3.0 * x) + 0.1, params)
  want = optax.adam(1e-2, eps=1e-8).update(grads, optax.adam(1e-2).init(params))[0]
  for kind in NORMALIZERS:
    config = ExecutorConfig(normalizer=kind)
    weights = init_weights(config, jax.random.PRNGKey(0))
    executor = ExecutorOptimizer(weights, config, "adam", {"learning_rate": 1e-2})
    got = executor.step(grads, executor.init(params), params).updates
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7, err_msg=kind)
  assert network.prior_tensor(ExecutorConfig(normalizer="scaled"))[6] == 0.0
  assert float(jax.grad(lambda w: jnp.abs(w))(0.01)) == 1.0
  with pytest.raises(ValueError, match="normalizer"):
    ExecutorConfig(normalizer="abs")


def test_the_decay_starts_as_adam_and_inverts(params):
  config = ExecutorConfig()
  executor = ExecutorOptimizer(init_weights(config, jax.random.PRNGKey(0)), config, "adam",
                               {"learning_rate": 1e-2})
  compare(executor, optax.adam(1e-2, eps=1e-8), params, steps=10, rtol=1e-3)
  for beta in (0.005, 0.5, 0.9, 0.999, 0.99995):
    raw = jnp.asarray(network.raw_decay(beta), jnp.float32)
    assert float(network.decay(raw)) == pytest.approx(beta, rel=1e-3)


def test_normalizer_constant_forms_start_as_their_prior_and_move_off_zero(params):
  """beta = exp(w) or |w| RMS(g): fresh executors are Adam (or SGD) either way; at the
  Adam prior, the update's gradient with respect to beta's raw output is exp(-30) ~ 1e-13
  times smaller with 'exp' (no imitation could move it) and of order one with 'scaled'."""
  grads = jax.tree.map(lambda x: jnp.cos(3.0 * x) + 0.1, params)
  adam = optax.adam(1e-2, eps=1e-8).update(grads, optax.adam(1e-2).init(params))[0]
  sgd = optax.sgd(0.1).update(grads, optax.sgd(0.1).init(params))[0]
  sensitivity = {}
  for kind in NORMALIZERS:
    for prior, name, kwargs, want in (("adam", "adam", {"learning_rate": 1e-2}, adam),
                                      ("sgd", "sgd", {"learning_rate": 0.1}, sgd)):
      config = ExecutorConfig(normalizer=kind, prior=prior)
      weights = init_weights(config, jax.random.PRNGKey(0))
      executor = ExecutorOptimizer(weights, config, name, kwargs)
      got = executor.step(grads, executor.init(params), params).updates
      for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7, err_msg=f"{kind} {prior}")
    config = ExecutorConfig(normalizer=kind)
    weights = init_weights(config, jax.random.PRNGKey(0))

    def update_norm(raw_beta):
      w = dict(weights, tensor_net_linear=dict(weights["tensor_net_linear"]))
      w["tensor_net_linear"]["b"] = w["tensor_net_linear"]["b"].at[5].add(raw_beta)
      executor = ExecutorOptimizer(w, config, "adam", {"learning_rate": 1e-2})
      updates = executor.step(grads, executor.init(params), params).updates
      return sum(jnp.sum(jnp.square(u)) for u in jax.tree.leaves(updates))

    sensitivity[kind] = abs(float(jax.grad(update_norm)(0.0))) / float(update_norm(0.0))
  assert sensitivity["scaled"] > 0.1, sensitivity
  assert sensitivity["exp"] < 1e-8, sensitivity
  assert network.prior_tensor(ExecutorConfig(normalizer="scaled", prior="sgd"))[5] == 1.0
  with pytest.raises(ValueError, match="rule_node_degree"):
    ExecutorOptimizer(init_weights(ExecutorConfig(), jax.random.PRNGKey(0)), ExecutorConfig(),
                      "adam", {"learning_rate": 1e-3}, HandSet(rule_node_degree=True))


@pytest.mark.parametrize("processor", ["row_column", "per_edge"])
def test_scaled_normalizer_constant_keeps_adam_scale_free_and_holds_sgd(params, processor):
  """With beta = |w| RMS(g) and the node factor's degree fixed at 0, a nonzero beta
  and any node exponents leave an Adam-like update invariant to the gradient's scale
  (with beta = exp(w) they do not), and the SGD prior is SGD on every tensor, with
  either processor."""
  grads = [jax.tree.map(lambda x, t=t: jnp.cos(3.0 * x + t) + 0.1, params) for t in range(3)]

  def last_update(kind, scale, prior="adam", name="adam", kwargs=None):
    config = ExecutorConfig(normalizer=kind, processor=processor, prior=prior)
    hand_set = HandSet(rule_node_degree=kind == "scaled")
    weights = init_weights(config, jax.random.PRNGKey(0))
    if prior == "adam":   # a nonzero beta, and node exponents whose sum 'scaled' overrides
      bias = weights["tensor_net_linear"]["b"]
      weights["tensor_net_linear"]["b"] = bias.at[5].set(0.3).at[1].set(0.7).at[3].set(2.0)
    executor = ExecutorOptimizer(weights, config, name, kwargs or {"learning_rate": 1e-2},
                                 hand_set)
    state = executor.init(params)
    for g in grads:
      out = executor.step(jax.tree.map(lambda x: scale * x, g), state, params)
      state = out.state
    return out.updates

  for kind, invariant in (("scaled", True), ("exp", False)):
    small, large = last_update(kind, 1e-3), last_update(kind, 1.0)
    close = all(np.allclose(a, b, rtol=1e-4, atol=1e-9)
                for a, b in zip(jax.tree.leaves(small), jax.tree.leaves(large)))
    assert close == invariant, kind
  sgd = optax.sgd(0.1)
  state = sgd.init(params)
  for g in grads:
    want, state = sgd.update(jax.tree.map(lambda x: 1e-3 * x, g), state)
  got = last_update("scaled", 1e-3, prior="sgd", name="sgd", kwargs={"learning_rate": 0.1})
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-9)


def _adafactor_weights(config):   # config.normalizer 'scaled': sign gain |w|, off at 0
  """Hand weights that make a clock-slope executor optax.adafactor (no momentum).

  Decays a2 = a3 = 1 - (t + 1)^-0.8 and gains (t + 1)^-0.8 from the slope head; the
  numerator is g; vectors divide by the per-edge RMS (alpha 1), matrices by the
  factored one (beta 1, exponents 1, 1 and, by the rule's degree 0, -2); the layer
  gain is update clipping, -log max(1, RMS(d)), times max(RMS(p), 1e-3).
  """
  weights = _hand_weights(config, decays=(0.5, 0.0, 0.0), gains=(1.0, 1.0, 1.0),
                          linear=(1, 0, 0, 0), exponents=(1, 0, 0, 0, 0, 0, 0, -60))
  weights["clock_slope_head"]["b"] = jnp.asarray([0, 0.8, 0.8, 0, -0.8, -0.8], jnp.float32)
  log_floor = math.log(1e-3)
  gain = weights["tensor_net_linear"]["b"]
  gain = gain.at[network.NUM_NORMALIZER_OUTPUTS:].set(jnp.asarray(
      [0, 1, log_floor, log_floor, 0, -1, 0, 0, log_floor], jnp.float32))
  weights["tensor_net_linear"]["b"] = gain
  # Matrices (the rank >= 2 tensor feature): alpha 1 -> 0, exponents 1, 1, beta 0 -> 1.
  matrix_row = config.embed_dim + conditioning.NUM_HYPER_FEATURES + \
      conditioning.NUM_TIME_FEATURES + 2
  w = weights["tensor_net_linear"]["w"]
  weights["tensor_net_linear"]["w"] = w.at[matrix_row, :6].set(
      jnp.asarray([-1, 1, 1, 0, 0, 1], jnp.float32))
  return weights


def test_clock_slopes_make_the_executor_adafactor():
  """Against optax.adafactor itself: the factored second moment, its 1 - (t + 1)^-0.8
  decay, update clipping and parameter scaling, on matrices and (zero) biases."""
  config = ExecutorConfig(normalizer="scaled", clock_slopes=RUNNING_AVERAGES)
  weights = _adafactor_weights(config)
  kwargs = {"learning_rate": 0.05, "min_dim_size_to_factor": 16}
  executor = ExecutorOptimizer(weights, config, "adafactor", kwargs,
                               HandSet(rule_node_degree=True))
  params = {"w1": 0.3 * jax.random.normal(jax.random.PRNGKey(0), (20, 24)),
            "b1": jnp.zeros((24,)), "w2": 0.3 * jax.random.normal(jax.random.PRNGKey(1), (24, 16)),
            "b2": jnp.full((16,), 0.1)}
  compare(executor, optax.adafactor(**kwargs), params, steps=30, rtol=1e-3)


def test_clock_slopes_start_neutral_and_keep_a_live_gradient_at_no_memory(params):
  """The head starts at zero (a checkpoint without it runs unchanged once
  complete_weights adds it), and at a = 0 the slope still moves the decay."""
  plain = ExecutorConfig()
  sloped = ExecutorConfig(clock_slopes=RUNNING_AVERAGES)
  weights = jax.tree.map(lambda w: w + 0.05, init_weights(plain, jax.random.PRNGKey(0)))
  completed = network.complete_weights(weights, sloped)
  assert set(completed) - set(weights) == {"clock_slope_head"}
  a = ExecutorOptimizer(weights, plain, "adam", {"learning_rate": 1e-2})
  b = ExecutorOptimizer(completed, sloped, "adam", {"learning_rate": 1e-2})
  state_a, state_b = a.init(params), b.init(params)
  for t in range(3):
    grads = random_grads(jax.random.PRNGKey(4), params, t)
    out_a, out_b = a.step(grads, state_a, params), b.step(grads, state_b, params)
    state_a, state_b = out_a.state, out_b.state
    for u, v in zip(jax.tree.leaves(out_a.updates), jax.tree.leaves(out_b.updates)):
      np.testing.assert_allclose(u, v, rtol=1e-6)
  raw = jnp.asarray(network.raw_decay(1e-4), jnp.float32)   # a ~ 0: no memory
  grad = jax.grad(lambda s: network.decay(raw, s * jnp.log1p(100.0)))(0.0)
  assert float(grad) > 4.0   # d a / d s = (1 - a) log(101)


def test_clock_slopes_move_only_the_averages_named():
  """('node',): the row and column states follow the clock, s1 and s2 do not; an old
  all-or-nothing config reads as every average; unknown names are refused."""
  config = ExecutorConfig(clock_slopes=("node",))
  weights = init_weights(config, jax.random.PRNGKey(0))
  weights["clock_slope_head"]["b"] = jnp.full((network.NUM_CLOCK_SLOPES,), 0.8)
  args = (weights, config, HandSet(), jnp.asarray(2, jnp.int32),
          jnp.zeros(conditioning.NUM_HYPER_FEATURES))
  early = encode.hyper_coefficients(*args, jnp.asarray(0))[1]
  late = encode.hyper_coefficients(*args, jnp.asarray(1000))[1]
  np.testing.assert_allclose(late.decays[:2], early.decays[:2], rtol=1e-6)
  np.testing.assert_allclose(late.gains[:2], early.gains[:2], rtol=1e-6)
  assert float(1 - late.decays[2]) == pytest.approx(
      float(1 - early.decays[2]) * 1001 ** -0.8, rel=0.02)   # float32: a ~ 1 - 4e-6
  data = dict(config.to_json(), clock_slopes=True)
  assert ExecutorConfig.from_json(data).clock_slopes == RUNNING_AVERAGES
  assert ExecutorConfig.from_json(config.to_json()) == config
  with pytest.raises(ValueError, match="clock_slopes"):
    ExecutorConfig(clock_slopes=("momentum",))


def _regression_loss(params, key, batch):
  del key
  x, y = batch
  return jnp.mean(jnp.square(jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] - y))


# Both compile a 100-step imitation loss (50 s on 2 CPU cores): min_dim 16 runs in CI's
# slow subset (.ci/run), both in `make test-all`.
@pytest.mark.slow
@pytest.mark.parametrize("min_dim", [16, 128])
def test_preconditioner_hint_is_exact_for_the_adafactor_executor(min_dim):
  """`imitation.preconditioner_prediction` (node states on the tensors the rule
  factors, the second moment elsewhere) is what adafactor divides by, and the
  executor's denominator is proportional to it: zero hint errors for the hand-set Adafactor executor (the
  denominator's where it factors every matrix, min_dim 16; the preconditioner's also
  where it factors none, 128); live, nonzero ones for fresh weights."""
  from meta_train import imitation
  config = ExecutorConfig(normalizer="scaled", clock_slopes=RUNNING_AVERAGES)
  hand_set = HandSet(rule_node_degree=True)
  kwargs = {"learning_rate": 0.05, "min_dim_size_to_factor": min_dim}
  params = {"w1": 0.3 * jax.random.normal(jax.random.PRNGKey(0), (20, 24)),
            "b1": jnp.zeros((24,)), "w2": 0.3 * jax.random.normal(jax.random.PRNGKey(1), (24, 16))}
  x = jax.random.normal(jax.random.PRNGKey(2), (12, 8, 20))
  static, dynamic = imitation.split_kwargs(kwargs)
  traj = imitation.rule_trajectory("adafactor", static, dynamic, _regression_loss, params,
                                   (x, jnp.sin(x[..., :16])), jax.random.PRNGKey(3))
  assert float(traj.preconditioner_mask) == 1.0
  cond = imitation.conditioning_for(config, "adafactor", kwargs, params)

  def hint_errors(weights, scale=False):
    metrics = imitation.trajectory_loss(weights, config, hand_set, traj, cond, 0.3,
                                        preconditioner_hint_weight=1.0,
                                        denominator_hint_weight=1.0,
                                        denominator_hint_scale=scale)[1]
    return metrics["preconditioner_rel_err"], metrics["denominator_shape_err"]

  preconditioner_err, denominator_err = hint_errors(_adafactor_weights(config))
  assert float(preconditioner_err) < 1e-8
  if min_dim == 16:   # the hand weights divide every matrix by the factored RMS, itself
    assert float(denominator_err) < 1e-8
    assert float(hint_errors(_adafactor_weights(config), scale=True)[1]) < 1e-8
  fresh = init_weights(config, jax.random.PRNGKey(0))
  assert min(float(e) for e in hint_errors(fresh)) > 1e-3
  grads = jax.grad(lambda w: hint_errors(w)[0])(fresh)
  assert float(jnp.max(jnp.abs(grads["hypernet_linear"]["b"][:3]))) > 0   # the decays
  grads = jax.grad(lambda w: hint_errors(w)[1])(fresh)
  assert float(jnp.max(jnp.abs(grads["tensor_net_linear"]["b"][:6]))) > 0   # the normalizer
