"""The multi-hop processor: hand-set weights make the executor optax.contrib.muon.

Muon's Newton-Schulz iterations are rounds of two-hop message passing on a weight
tensor's bipartite graph (learned_opt.executor.hops). With its networks reduced to
biases and a few linear weights, the executor equals optax's Muon, including a conv
kernel folded by Muon's dimension numbers and per-round coefficients.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from learned_opt.algorithms import muon as muon_lib
from learned_opt.executor import (ExecutorConfig, ExecutorOptimizer, encode, graph_of, hops,
                                  init_weights, network)
from learned_opt.executor.conditioning import EXTRA_KEYS
from tests.conftest import random_grads
from tests.test_executor_expressivity import compare
from tests.test_rules_structured import heads_and_kernels, strong

CONFIG = ExecutorConfig(processor="multi_hop", extra_keywords=EXTRA_KEYS)
_ADAM_NORMALIZER = (1, 0, 0, 0, 0, -60, -30)
# hop_tensor's inputs: [c, tensor features, plan features]; the plan's columns.
_PLAN = network.num_hyper_features(CONFIG) + CONFIG.embed_dim + 4 + network.NUM_TENSOR_FEATURES
ORTH, FAN_IN, FAN_OUT = _PLAN, _PLAN + 1, _PLAN + 2


def _raw_decay(beta):
  return math.log((1 - beta) / beta)


def muon_weights(beta=0.95, nesterov=True, adam_b1=0.9, adam_b2=0.999, eps=1e-8,
                 weight_decay=0.0, adam_weight_decay=0.0, config=CONFIG):
  """Executor weights that run optax.contrib.muon with these keywords."""
  weights = jax.tree.map(jnp.zeros_like, init_weights(config, jax.random.PRNGKey(0)))
  set_ = lambda module, name, value: weights[module].__setitem__(  # noqa: E731
      name, jnp.asarray(value, jnp.float32))
  h, f = config.edge_hidden, network.NUM_EDGE_FEATURES
  # AdamW's moments on the hypernet (a1 = adam_b1; Muon's beta by the hop shift).
  linear = [0.0, 0.0, 0.0, 0.0 if nesterov else 1.0]
  hyper = ([_raw_decay(adam_b1), _raw_decay(adam_b2), 0.0]
           + [math.log(1 - adam_b1), math.log(1 - adam_b2), math.log(0.5)]
           + linear + [0.0] * (f * h + h) + [weight_decay])
  set_("hypernet_linear", "b", hyper)
  set_("nesterov_head", "b", [1.0 if nesterov else 0.0])
  tensor = np.zeros(network.NUM_TENSOR_OUTPUTS, np.float32)
  tensor[:7], tensor[7] = _ADAM_NORMALIZER, math.log(eps)
  set_("tensor_net_linear", "b", tensor)
  # Per tensor: mix = orthogonalized; shift to beta there; AdamW's decay elsewhere.
  w = np.zeros(weights["hop_tensor_linear"]["w"].shape, np.float32)
  w[ORTH, 0] = 1.0
  w[ORTH, 2] = math.log((1 - beta) / (1 - adam_b1))
  w[ORTH, 3] = -(adam_weight_decay - weight_decay)
  set_("hop_tensor_linear", "w", w)
  set_("hop_tensor_linear", "b", [0.0, 0.0, 0.0, adam_weight_decay - weight_decay])
  # log gain = 0.5 max(0, ln fan_out - ln fan_in): one relu unit through both layers.
  w0 = np.zeros(weights["hop_tensor_hidden_0"]["w"].shape, np.float32)
  w0[FAN_OUT, 0], w0[FAN_IN, 0] = 1.0, -1.0
  set_("hop_tensor_hidden_0", "w", w0)
  w1 = np.zeros(weights["hop_tensor_hidden_1"]["w"].shape, np.float32)
  w1[0, 0] = 1.0
  set_("hop_tensor_hidden_1", "w", w1)
  out = np.zeros(weights["hop_tensor_out"]["w"].shape, np.float32)
  out[0, 1] = 0.5 * 10 * math.log(10)   # plan features are log10(fan) / 10
  set_("hop_tensor_out", "w", out)
  return weights


def _compare(executor, reference, params, steps=25, rtol=1e-4, atol=0.0):
  return compare(executor, reference, params, steps, rtol, advance=True, atol=atol)


# Each case compiles two 25-step programs (30 s on 2 CPU cores): all run in `make test-all`,
# two in CI's slow subset (.ci/run); `make test` checks hand-set Muon through imitation's
# round hints (tests/test_imitate.py) and runs LARS here.
SLOW = pytest.mark.slow
MUON_CASES = [
    pytest.param(dict(learning_rate=1e-2), marks=SLOW),
    pytest.param(dict(learning_rate=1e-2, nesterov=False, beta=0.9, ns_steps=3,
                      ns_coeffs=(3.0, -3.2, 1.2), eps=1e-6), marks=SLOW),
    pytest.param(dict(learning_rate=1e-2, muon_weight_dimension_numbers=heads_and_kernels),
                 marks=SLOW),
    pytest.param(dict(learning_rate=1e-2, weight_decay=0.1, adam_weight_decay=0.01,
                      adam_b1=0.8, adam_b2=0.99), marks=SLOW),
    # Per-round coefficients and the kernel's dimension numbers.
    pytest.param(dict(learning_rate=1e-2, ns_coeffs="dion",
                      muon_weight_dimension_numbers=heads_and_kernels), marks=SLOW),
]


@pytest.mark.parametrize("kwargs", MUON_CASES)
def test_hand_set_weights_are_optax_muon(params, kwargs):
  keys = ("beta", "nesterov", "adam_b1", "adam_b2", "eps", "weight_decay", "adam_weight_decay")
  weights = muon_weights(**{k: kwargs[k] for k in keys if k in kwargs})
  executor = ExecutorOptimizer(weights, CONFIG, "muon", kwargs)
  out = _compare(executor, optax.contrib.muon(**kwargs), strong(params))
  rounds = len(muon_lib.Muon(**kwargs).coeff_rows())
  assert f"ns_iterate_{rounds}" in out.predictions
  assert f"ns_iterate_{rounds + 1}" not in out.predictions


def test_the_conv_kernel_folds_its_positions_into_in_neurons(params):
  """With Muon's kernel dimension numbers the (3, 3, 4, 8) kernel is one 36 x 8 matrix
  (not 9 multiplicity slices of 4 x 8, the parameter graph's reading)."""
  kwargs = dict(learning_rate=1e-2, muon_weight_dimension_numbers=heads_and_kernels)
  executor = ExecutorOptimizer(muon_weights(), CONFIG, "muon", kwargs)
  params = strong(params)
  grads = random_grads(jax.random.PRNGKey(1), params, 0)
  out = jax.jit(executor.step)(grads, executor.init(params), params)
  kernel = np.asarray(out.updates["conv"]["w"]).reshape(36, 8)
  # Orthogonal columns scaled by lr * sqrt(max(1, 8 / 36)) = lr: singular values ~ 0.01
  # (Newton-Schulz's quintic leaves them in about [0.7, 1.2]).
  singular = np.linalg.svd(kernel, compute_uv=False) / 1e-2
  assert np.all((singular > 0.5) & (singular < 1.3)), singular
  per_slice = np.linalg.svd(np.asarray(out.updates["conv"]["w"]).reshape(9, 4, 8),
                            compute_uv=False) / 1e-2
  assert per_slice.max() < 0.9   # not each 4 x 8 slice orthogonalized on its own


def test_per_round_coefficients_match_a_direct_computation():
  """Polar-Express-style: every round its own (c0, c1, c2); the executor's rounds equal
  the iteration written out with numpy."""
  rows = np.asarray([[3.9, -6.2, 2.6], [3.4, -4.7, 2.0], [2.9, -3.1, 1.2]], np.float32)
  x = np.random.default_rng(0).standard_normal((12, 20)).astype(np.float32)
  leaf = muon_lib.LeafPlan(True, (), (0,), (1,), 12, 20)
  out, iterates = hops.run_rounds(jnp.asarray(x), leaf, jnp.asarray(rows))
  y = x.astype(np.float64) / (np.linalg.norm(x) + hops.ROUND_EPS)
  expected = [y]
  for c0, c1, c2 in rows:
    a = y @ y.T
    y = c0 * y + (c1 * a + c2 * a @ a) @ y
    expected.append(y)
  np.testing.assert_allclose(out, expected[-1], rtol=2e-5, atol=2e-6)
  for got, want in zip(iterates, expected):
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_learned_round_coefficients_move_the_rule_rows():
  """c_k = the rule's row + the hop_round network's output (zero at initialization)."""
  weights = muon_weights()
  weights["hop_round_linear"]["b"] = jnp.asarray([0.5, 0.0, -0.25], jnp.float32)
  kwargs = dict(learning_rate=1e-2, ns_steps=2)
  executor = ExecutorOptimizer(weights, CONFIG, "muon", kwargs)
  params = {"w": jnp.ones((6, 10), jnp.float32)}
  plan = executor.plan(params)
  assert plan.rounds == 2 and plan.runs_on(0)
  graph = graph_of(params)
  c, _ = encode.hyper_coefficients(weights, CONFIG, executor.hand_set, executor.rule_id,
                                   executor.hyper_features, jnp.zeros((), jnp.int32))
  feats = encode.hop_features(weights, CONFIG, c, encode.tensor_features(graph, None), graph,
                              plan)
  np.testing.assert_allclose(feats.coeff_rows,
                             np.tile(np.asarray(muon_lib.DEFAULT_NS_COEFFS) + [0.5, 0.0, -0.25],
                                     (2, 1)),
                             rtol=1e-6)


def test_untrained_multi_hop_executor_is_adam_not_muon(params):
  """Fresh weights start as the Adam prior on every rule, Muon included: they run no
  orthogonalization (mix 0), so they fail the Muon comparison."""
  kwargs = dict(learning_rate=1e-2)
  fresh = init_weights(CONFIG, jax.random.PRNGKey(0))
  executor = ExecutorOptimizer(fresh, CONFIG, "muon", kwargs)
  with pytest.raises(AssertionError):
    _compare(executor, optax.contrib.muon(**kwargs), strong(params), steps=2)
  _compare(ExecutorOptimizer(fresh, CONFIG, "adam", kwargs), optax.adam(1e-2), strong(params),
           steps=5)


@pytest.mark.parametrize("option", [
    dict(preconditioning="spectral"), dict(preconditioning="aol"),
    dict(preconditioning="schatten"), dict(adaptive=True), dict(consistent_rms=0.2),
    dict(adam_learning_rate=1e-3)])
def test_muon_options_without_modules_are_refused(option):
  with pytest.raises(ValueError, match=f"runs \\['{next(iter(option))}'\\] only at"):
    ExecutorOptimizer(muon_weights(), CONFIG, "muon", dict(learning_rate=1e-2, **option))


def test_rules_without_rounds_run_none():
  weights = muon_weights()
  params = {"w": jnp.ones((6, 10), jnp.float32)}
  for name in ("adam", "sgd", "adafactor"):
    assert ExecutorOptimizer(weights, CONFIG, name, {"learning_rate": 1e-2}).plan(params) is None
  plan = ExecutorOptimizer(weights, CONFIG, "muon", {"learning_rate": 1e-2, "ns_steps": 0}
                           ).plan(params)
  assert plan.rounds == 0 and not plan.runs_on(0)


def test_learned_coefficients_cannot_overflow_the_rounds():
  """Coefficients far from any preset grow the iterates cubically each round; the rounds'
  bound keeps every iterate's RMS singular value at most hops.ROUND_BOUND."""
  rows = jnp.asarray([[3.6, -3.7, 3.2]] * 5, jnp.float32)   # p(1) = 3.1: unstable
  leaf = muon_lib.LeafPlan(True, (), (0,), (1,), 12, 20)
  x = jnp.asarray(np.random.default_rng(1).standard_normal((12, 20)), jnp.float32)
  out, iterates = hops.run_rounds(x, leaf, rows)
  unbounded, _ = muon_lib.orthogonalize(x, leaf, rows)
  assert not np.all(np.isfinite(unbounded)) or np.linalg.norm(unbounded) > 1e6
  for it in iterates:
    assert np.linalg.norm(it) <= hops.ROUND_BOUND * math.sqrt(12) * (1 + 1e-5)
  assert np.all(np.isfinite(out))


def lars_weights(momentum, nesterov, config=CONFIG):
  """Executor weights that run optax.lars: SGD's normalizer on the momentum of the
  trust-scaled gradient (LARS's own input readout, the trust head at zero)."""
  weights = jax.tree.map(jnp.zeros_like, init_weights(config, jax.random.PRNGKey(0)))
  h, f = config.edge_hidden, network.NUM_EDGE_FEATURES
  linear = [1.0, 0.0, momentum, 0.0] if nesterov else [0.0, 0.0, 1.0, 0.0]
  hyper = [_raw_decay(momentum), 0.0, 0.0, 0.0, 0.0, 0.0] + linear + [0.0] * (f * h + h + 1)
  weights["hypernet_linear"]["b"] = jnp.asarray(hyper, jnp.float32)
  tensor = np.zeros(network.NUM_TENSOR_OUTPUTS, np.float32)
  tensor[:8] = (0, 0, 0, 0, 0, 0, -30, -60)   # d = n / 1
  weights["tensor_net_linear"]["b"] = jnp.asarray(tensor)
  return weights


@pytest.mark.parametrize("nesterov", [False, pytest.param(True, marks=SLOW)])
def test_hand_set_weights_are_optax_lars(params, nesterov):
  """LARS scales each tensor's gradient by its trust ratio before the momentum (an input
  readout of the plan); a tensor at zero reads ratio 1, and the trust-ratio mask leaves
  the masked-out tensors unscaled. A trust head that moves off LARS's own readout fails
  the same run."""
  params = dict(params, zero_bias=jnp.zeros((3,)))
  mask = lambda tree: jax.tree.map(lambda x: x.ndim != 1 or x.shape[0] == 3, tree)  # noqa: E731
  kwargs = dict(learning_rate=0.5, momentum=0.8, nesterov=nesterov, trust_coefficient=0.01,
                trust_ratio_mask=mask)
  weights = lars_weights(0.8, nesterov)
  executor = ExecutorOptimizer(weights, CONFIG, "lars", kwargs)
  plan = executor.plan(params)
  assert plan is not None and not plan.rounds and any(plan.input_readout)
  assert not all(plan.input_readout)   # the mask leaves some tensors out
  # Nesterov's rho u + momentum m cancels on the scalar leaf at some steps (to 1e-6 of
  # lr rho |u|): an absolute floor of 1e-4 of the step's scale, lr trust_coefficient.
  _compare(executor, optax.lars(**kwargs), params, atol=1e-4 * 0.5 * 0.01)
  weights["trust_head"]["b"] = jnp.asarray([0.0, -1.0, 1.0])   # rho = 1
  with pytest.raises(AssertionError):
    _compare(ExecutorOptimizer(weights, CONFIG, "lars", kwargs), optax.lars(**kwargs), params)


def test_a_rule_without_input_readouts_runs_no_reduction_for_them(params):
  """Adam's plan is None: the trust head is never read, whatever its weights."""
  weights = init_weights(CONFIG, jax.random.PRNGKey(0))
  executor = ExecutorOptimizer(weights, CONFIG, "adam", {"learning_rate": 1e-3})
  assert executor.plan(params) is None
  moved = dict(weights, trust_head={"w": weights["trust_head"]["w"] + 1.0,
                                    "b": weights["trust_head"]["b"] + 1.0})
  grads = random_grads(jax.random.PRNGKey(1), params, 0)
  a = executor.step(grads, executor.init(params), params).updates
  other = ExecutorOptimizer(moved, CONFIG, "adam", {"learning_rate": 1e-3})
  b = other.step(grads, other.init(params), params).updates
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)
