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

from learned_opt.executor import ExecutorConfig, ExecutorOptimizer, init_weights, network
from tests.conftest import random_grads


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


def _compare(executor, reference, params, steps=30, rtol=2e-4):
  state, ref_state = executor.init(params), reference.init(params)
  step = jax.jit(executor.step)
  for t in range(steps):
    grads = random_grads(jax.random.PRNGKey(1), params, t)
    out = step(grads, state, params)
    state = out.state
    ref, ref_state = reference.update(grads, ref_state, params)
    for a, b in zip(jax.tree.leaves(out.updates), jax.tree.leaves(ref)):
      np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(jnp.max(jnp.abs(b))),
                                 err_msg=f"step {t}")


def test_executor_can_be_adam(params):
  config = ExecutorConfig()
  weights = _hand_weights(config, decays=(0.9, 0.999, 0.5), gains=(0.1, 0.001, 0.5),
                          linear=(0, 0, 0, 1), exponents=(1, 0, 0, 0, 0, 0))
  executor = ExecutorOptimizer(weights, config, "adam", {"learning_rate": 1e-2})
  _compare(executor, optax.adam(1e-2, eps=1e-12), params)


def test_executor_can_be_sgd_with_momentum(params):
  config = ExecutorConfig()
  weights = _hand_weights(config, decays=(0.8, 0.5, 0.5), gains=(1.0, 1.0, 1.0),
                          linear=(0, 0, 1, 0), exponents=(0, 0, 0, 0, 0, 0))
  executor = ExecutorOptimizer(weights, config, "sgd", {"learning_rate": 0.1, "momentum": 0.8})
  _compare(executor, optax.sgd(0.1, momentum=0.8), params)


def test_executor_can_be_lamb(params):
  config = ExecutorConfig()
  weights = _hand_weights(config, decays=(0.9, 0.999, 0.5), gains=(0.1, 0.001, 0.5),
                          linear=(0, 0, 0, 1), exponents=(1, 0, 0, 0, 0, 0),
                          weight_decay=0.01, gain_linear=(1.0, -1.0))
  executor = ExecutorOptimizer(weights, config, "lamb",
                               {"learning_rate": 1e-2, "weight_decay": 0.01})
  _compare(executor, optax.lamb(1e-2, eps=1e-12, weight_decay=0.01), params)
