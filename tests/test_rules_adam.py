"""Adam, AdamW and NAdam against optax, on a mixed pytree."""

import jax
import numpy as np
import optax
import pytest

import learned_opt
from learned_opt.algorithms import base
from tests.conftest import random_grads
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


# ------------------------------------------------------------- adamw weight-decay masks
# A prefix of the `params` fixture's tree (see tests/conftest.py): one bool covers a whole
# subtree ("dense" holds w and b; "head" is the list [array, None]).
PREFIX_MASK = {"conv": False, "attention": True, "dense": True, "head": True,
               "temperature": False}


def _not_rank_one(tree):
  """A callable mask (optax calls it on the updates): decay every leaf of rank != 1."""
  return jax.tree.map(lambda x: x.ndim != 1, tree)


def _prefix_from_callable(tree):
  """A callable mask that returns a prefix tree rather than one bool per leaf."""
  del tree
  return dict(PREFIX_MASK, conv={"w": True, "b": False})


@pytest.mark.parametrize("mask", [PREFIX_MASK, _not_rank_one, _prefix_from_callable],
                         ids=["prefix", "callable", "callable-prefix"])
def test_adamw_masks_match_optax(params, mask):
  kwargs = dict(learning_rate=1e-2, weight_decay=0.1, mask=mask)
  assert_matches_optax("adamw", optax.adamw(**kwargs), params, **kwargs)


def test_adamw_prefix_mask_decays_whole_subtrees(params):
  """Masked-out subtrees get plain Adam updates; masked-in ones get the decay."""
  grads = random_grads(jax.random.PRNGKey(3), params, 0)
  adamw = learned_opt.algorithms.get("adamw", learning_rate=1e-2, weight_decay=0.5,
                                     mask=PREFIX_MASK)
  adam = learned_opt.algorithms.get("adam", learning_rate=1e-2)
  decayed, _, _ = adamw.step(grads, adamw.init(params), params)
  plain, _, _ = adam.step(grads, adam.init(params), params)
  for key, masked_in in PREFIX_MASK.items():
    for a, b, p in zip(jax.tree.leaves(decayed[key]), jax.tree.leaves(plain[key]),
                       jax.tree.leaves(params[key])):
      expected = b - 1e-2 * 0.5 * p if masked_in else b
      np.testing.assert_allclose(np.asarray(a), np.asarray(expected), rtol=1e-5, atol=1e-8,
                                 err_msg=key)


def test_leaf_mask_resolves_optax_masks(params):
  """None, a bool, a prefix tree and a callable all resolve to one bool per leaf."""
  # Leaves in order: attention/w, conv/b, conv/w, dense/b, dense/w, head/0, temperature.
  assert base.leaf_mask(None, params) == [True] * 7
  assert base.leaf_mask(False, params) == [False] * 7
  assert base.leaf_mask(PREFIX_MASK, params) == [True, False, False, True, True, True, False]
  assert base.leaf_mask(_not_rank_one, params) == [True, False, True, False, True, True, True]
