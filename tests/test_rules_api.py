"""The rule registry and its errors: names, keywords, structures, hints."""

import jax
import jax.numpy as jnp
import pytest

import learned_opt
from learned_opt import algorithms

OPTAX_NAMES = {"sgd", "rmsprop", "adam", "adamw", "nadam", "adabelief", "adagrad", "adafactor",
               "lamb", "lars", "lion", "muon"}


def test_names_cover_the_optax_rules():
  assert OPTAX_NAMES <= set(algorithms.names())


def test_unknown_rule_lists_the_known_ones():
  with pytest.raises(KeyError, match=r"Unknown rule 'adamm'.*adam, adamw"):
    algorithms.get("adamm", learning_rate=1e-3)


def test_unknown_and_missing_keywords():
  with pytest.raises(TypeError, match=r"unknown keyword.*\['beta1'\].*accepts.*b1"):
    algorithms.get("adam", learning_rate=1e-3, beta1=0.9)
  with pytest.raises(TypeError, match="learning_rate"):
    algorithms.get("adam")


def test_mismatched_grads_name_the_first_differing_path():
  rule = algorithms.get("adam", learning_rate=1e-3)
  params = {"layer": {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}}
  grads = {"layer": {"w": jnp.ones((2, 2)), "bias": jnp.ones(2)}}
  with pytest.raises(ValueError, match=r"first difference at leaf 'layer/bias'.*'layer/b'"):
    rule.step(grads, rule.init(params), params)
  with pytest.raises(ValueError, match="different structures"):
    rule.step({"layer": {"w": jnp.ones((2, 2))}}, rule.init(params), params)


@pytest.mark.parametrize("name", sorted(OPTAX_NAMES))
def test_every_rule_emits_located_hints(name):
  kwargs = {} if name == "adafactor" else {"learning_rate": 1e-2}
  rule = algorithms.get(name, **kwargs)
  params = {"w": jnp.ones((4, 3)), "b": jnp.zeros(3)}
  grads = jax.tree.map(lambda x: jnp.full_like(x, 0.1), params)
  updates, state, trace = rule.step(grads, rule.init(params), params)
  assert jax.tree.structure(updates) == jax.tree.structure(params)
  assert trace, name
  for hint_name, hint in trace.items():
    assert isinstance(hint, learned_opt.algorithms.Hint)
    assert hint.location in algorithms.LOCATIONS, (name, hint_name)
    if hint.location == algorithms.EDGE:
      for leaf, p in zip(jax.tree.leaves(hint.value), jax.tree.leaves(params)):
        assert leaf.shape == p.shape, (name, hint_name)
  # The trace is a pytree (locations are static), so it can leave jit.
  jax.jit(rule.step)(grads, state, params)
