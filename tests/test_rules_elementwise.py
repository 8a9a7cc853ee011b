"""SGD, RMSProp, Adagrad, AdaBelief and Lion against optax, on a mixed pytree."""

import dataclasses
import inspect

import jax
import jax.numpy as jnp
import optax
import pytest

import learned_opt
from tests.conftest import random_grads
from tests.rule_equivalence import assert_matches_optax

SCHEDULE = optax.linear_schedule(1e-2, 1e-3, 20)


def _no_bias_mask(tree):
  """Decay only rank >= 2 leaves (a callable mask, as optax calls it on updates)."""
  return jax.tree.map(lambda x: x.ndim >= 2, tree)


# A prefix of the params tree: whole subtrees switched on or off at once.
PREFIX_MASK = {"conv": False, "attention": True, "dense": {"w": True, "b": False},
               "head": True, "temperature": False}

CASES = {
    "sgd": [
        dict(learning_rate=1e-2),
        dict(learning_rate=1e-2, momentum=0.9),
        dict(learning_rate=SCHEDULE, momentum=0.8, nesterov=True),
        dict(learning_rate=1e-2, momentum=0.9, accumulator_dtype=jnp.bfloat16),
    ],
    "rmsprop": [
        dict(learning_rate=1e-3),
        dict(learning_rate=1e-3, centered=True),
        dict(learning_rate=1e-3, momentum=0.9),
        # optax scales by the learning rate before the momentum trace: a schedule shows it.
        dict(learning_rate=SCHEDULE, momentum=0.9, nesterov=True),
        dict(learning_rate=1e-3, bias_correction=True, decay=0.95),
        dict(learning_rate=1e-3, centered=True, bias_correction=True, initial_scale=1.0),
        dict(learning_rate=1e-3, eps_in_sqrt=False, eps=1e-6, initial_scale=0.5),
    ],
    "adagrad": [
        dict(learning_rate=1e-2),
        dict(learning_rate=1e-1, initial_accumulator_value=0.0, eps=1e-5),
        dict(learning_rate=SCHEDULE, initial_accumulator_value=1.0),
    ],
    "adabelief": [
        dict(learning_rate=1e-2),
        dict(learning_rate=SCHEDULE, nesterov=True),
        dict(learning_rate=3e-3, b1=0.8, b2=0.99, eps=1e-8, eps_root=0.0),
    ],
    "lion": [
        dict(learning_rate=1e-3),
        dict(learning_rate=1e-3, weight_decay=0.1, mask=_no_bias_mask),
        dict(learning_rate=1e-3, weight_decay=0.1, mask=PREFIX_MASK),
        dict(learning_rate=1e-3, weight_decay=0.0, mu_dtype=jnp.bfloat16),
        dict(learning_rate=SCHEDULE, weight_decay=optax.linear_schedule(0.1, 0.0, 10),
             b1=0.8, b2=0.95),
    ],
}

ALL_CASES = [pytest.param(name, kwargs, id=f"{name}-{i}")
             for name, cases in CASES.items() for i, kwargs in enumerate(cases)]

# One configuration per rule that allocates every piece of state it can have.
FULL_STATE = {
    "sgd": dict(learning_rate=1e-2, momentum=0.9, accumulator_dtype=jnp.bfloat16),
    "rmsprop": dict(learning_rate=1e-3, centered=True, momentum=0.9, bias_correction=True,
                    initial_scale=1.0),
    "adagrad": dict(learning_rate=1e-2),
    "adabelief": dict(learning_rate=1e-2),
    "lion": dict(learning_rate=1e-3, mu_dtype=jnp.bfloat16),
}


@pytest.mark.parametrize("name, kwargs", ALL_CASES)
def test_matches_optax(params, name, kwargs):
  assert_matches_optax(name, getattr(optax, name)(**kwargs), params, **kwargs)


@pytest.mark.parametrize("name", sorted(FULL_STATE))
def test_bfloat16_matches_optax(params, name):
  """bf16 params and grads: same numbers as optax, bf16 updates, stable state dtypes."""
  kwargs = FULL_STATE[name]
  bf16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params)
  assert_matches_optax(name, getattr(optax, name)(**kwargs), bf16, steps=5, **kwargs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_keywords_are_optax(name):
  """Field names, order and defaults are exactly optax's keyword arguments."""
  ours = [(f.name, f.default) for f in dataclasses.fields(learned_opt.algorithms.get(
      name, learning_rate=1e-3).__class__)]
  theirs = [(p.name, p.default if p.default is not inspect.Parameter.empty
             else dataclasses.MISSING)
            for p in inspect.signature(getattr(optax, name)).parameters.values()]
  assert ours == theirs


@pytest.mark.parametrize("name", sorted(FULL_STATE))
def test_init_on_shape_dtype_structs(params, name):
  """init accepts ShapeDtypeStructs, and step keeps the state's structure and dtypes."""
  rule = learned_opt.algorithms.get(name, **FULL_STATE[name])
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
  from_abstract = rule.init(abstract)
  state = rule.init(params)
  spec = lambda tree: jax.tree.map(lambda x: (x.shape, x.dtype), tree)  # noqa: E731
  assert jax.tree.structure(from_abstract) == jax.tree.structure(state)
  assert spec(from_abstract) == spec(state)
  _, new_state, trace = jax.jit(rule.step)(random_grads(jax.random.PRNGKey(1), params, 0),
                                           state, params)
  assert spec(new_state) == spec(state)
  assert new_state.count.dtype == jnp.int32 and int(new_state.count) == 1
  assert trace["learning_rate"].location == learned_opt.algorithms.GRAPH
  edge = [h for k, h in trace.items() if k != "learning_rate"]
  assert edge and all(h.location == learned_opt.algorithms.EDGE for h in edge)


def test_unknown_keyword_is_refused():
  # optax.lion has no `mode` (only scale_by_lion does), so neither do we.
  with pytest.raises(TypeError, match="mode"):
    learned_opt.algorithms.get("lion", learning_rate=1e-3, mode="smooth")


def test_as_optax_chains(params):
  """The optax bridge composes with optax.chain like optax's own rmsprop."""
  kwargs = dict(learning_rate=1e-3, momentum=0.9, centered=True)
  ours = optax.chain(optax.clip_by_global_norm(1.0),
                     learned_opt.algorithms.get("rmsprop", **kwargs).as_optax())
  ref = optax.chain(optax.clip_by_global_norm(1.0), optax.rmsprop(**kwargs))
  ours_state, ref_state = ours.init(params), ref.init(params)
  ours_update, ref_update = jax.jit(ours.update), jax.jit(ref.update)
  for t in range(3):
    grads = random_grads(jax.random.PRNGKey(2), params, t)
    u, ours_state = ours_update(grads, ours_state, params)
    v, ref_state = ref_update(grads, ref_state, params)
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(v)):
      assert jnp.allclose(a, b, rtol=1e-5, atol=1e-8)
