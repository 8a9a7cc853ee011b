"""Adam, AdamW and NAdam against optax, on a mixed pytree."""

import optax
import pytest

from tests.rule_equivalence import assert_matches_optax


@pytest.mark.parametrize("kwargs", [
    dict(learning_rate=1e-2),
    dict(learning_rate=3e-3, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8),
    dict(learning_rate=1e-2, nesterov=True),
    dict(learning_rate=optax.linear_schedule(1e-2, 1e-3, 20)),
])
def test_adam_matches_optax(params, kwargs):
  assert_matches_optax("adam", optax.adam(**kwargs), params, **kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(learning_rate=1e-2),
    dict(learning_rate=1e-2, b1=0.7),
])
def test_nadam_matches_optax(params, kwargs):
  assert_matches_optax("nadam", optax.nadam(**kwargs), params, **kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(learning_rate=1e-2),
    dict(learning_rate=1e-2, weight_decay=0.1, nesterov=True),
    dict(learning_rate=1e-2, weight_decay=0.1,
         mask=lambda p: {k: (v if k != "conv" else {"w": True, "b": False})
                         for k, v in __import__("jax").tree.map(lambda _: True, p).items()}),
])
def test_adamw_matches_optax(params, kwargs):
  assert_matches_optax("adamw", optax.adamw(**kwargs), params, **kwargs)
