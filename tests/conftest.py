"""Shared fixtures: a pytree that mixes every kind of leaf the rules must handle."""

import os

# Tests run on CPU with a few virtual devices (sharding tests need more than one).
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def mixed_params(key: jax.Array, big: bool = False) -> dict:
  """Conv kernels, a rank-3 attention weight, dense weights, biases and a scalar.

  `big=True` gives some dimensions >= 128 so factored (adafactor) paths are taken.
  """
  keys = jax.random.split(key, 8)
  wide = 160 if big else 24
  return {
      "conv": {"w": 0.3 * jax.random.normal(keys[0], (3, 3, 4, 8)),
               "b": 0.1 * jax.random.normal(keys[1], (8,))},
      "attention": {"w": 0.2 * jax.random.normal(keys[2], (2, 16, wide))},
      "dense": {"w": 0.2 * jax.random.normal(keys[3], (wide, 12)),
                "b": 0.1 * jax.random.normal(keys[4], (12,))},
      "head": [0.3 * jax.random.normal(keys[5], (12, 5)), None],
      "temperature": jnp.asarray(1.5, jnp.float32),  # not weak-typed: no recompiles
  }


def random_executor_weights(config, seed: int = 0):
  """Executor weights with init_weights' structure and random values (0.1 N(0, 1)).

  The structure comes from eval_shape (no compilation); eager `init_weights`
  compiles dozens of tiny programs (~10 s on a loaded 2-core machine), and the
  compiled program's shapes do not depend on the values.
  """
  from learned_opt.executor import init_weights  # pylint: disable=import-outside-toplevel
  shapes = jax.eval_shape(lambda key: init_weights(config, key), jax.random.PRNGKey(0))
  rng = np.random.default_rng(seed)
  return jax.tree.map(
      lambda s: jnp.asarray(0.1 * rng.standard_normal(s.shape), s.dtype), shapes)


def random_grads(key: jax.Array, params: dict, step: int) -> dict:
  leaves, treedef = jax.tree.flatten(params)
  rng = np.random.default_rng([int(jax.random.key_data(key).ravel()[-1]), step])
  # Scales differ per leaf and over time so normalizations are exercised.
  grads = [jnp.asarray((1.0 + 0.5 * np.sin(step + i)) * rng.standard_normal(x.shape),
                       x.dtype) for i, x in enumerate(leaves)]
  return jax.tree.unflatten(treedef, grads)


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "slow: a long integration test (imitation, meta-training, evaluation runs); "
      "`make test` deselects it (-m 'not slow'), `make test-all` runs it.")


@pytest.fixture
def params():
  return mixed_params(jax.random.PRNGKey(0))


@pytest.fixture
def big_params():
  return mixed_params(jax.random.PRNGKey(0), big=True)
