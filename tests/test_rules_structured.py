"""Adafactor, LAMB, LARS and Muon (the rules with node, layer and two-hop structure) vs optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax.contrib import MuonDimensionNumbers

import learned_opt
from learned_opt.algorithms import base
from tests.rule_equivalence import assert_matches_optax


def not_biases(p):
  """A weight-decay mask (callable): every leaf but rank-1 ones."""
  return jax.tree.map(lambda x: x.ndim != 1, p)


PREFIX_MASK = {"conv": False, "attention": True, "dense": {"w": True, "b": False},
               "head": True, "temperature": False}
SCHEDULE = optax.linear_schedule(1e-2, 1e-3, 20)


def strong(tree):
  """The fixture with weak types dropped (the scalar leaf), so neither side recompiles."""
  return jax.tree.map(lambda x: x.astype(x.dtype), tree)


# -------------------------------------------------------------------- adafactor
ADAFACTOR_CASES = [
    dict(learning_rate=1e-2),                                       # defaults: nothing factored
    dict(learning_rate=1e-2, min_dim_size_to_factor=8),             # attention + dense (transposed)
    dict(learning_rate=SCHEDULE, min_dim_size_to_factor=4, decay_rate=0.6, decay_offset=3,
         multiply_by_parameter_scale=False),
    dict(min_dim_size_to_factor=4, clipping_threshold=None, eps=1e-3),  # learning_rate=None
    dict(learning_rate=1e-2, min_dim_size_to_factor=4, clipping_threshold=0.5, momentum=0.9,
         weight_decay_rate=1e-3, weight_decay_mask=not_biases),
    dict(learning_rate=1e-2, momentum=0.8, dtype_momentum=jnp.bfloat16,
         weight_decay_rate=optax.constant_schedule(1e-3), weight_decay_mask=PREFIX_MASK),
    dict(learning_rate=1e-2, min_dim_size_to_factor=4, factored=False),
]


@pytest.mark.parametrize("kwargs", ADAFACTOR_CASES)
def test_adafactor_matches_optax(params, kwargs):
  assert_matches_optax("adafactor", optax.adafactor(**kwargs), strong(params), rtol=1e-4, **kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(learning_rate=1e-2, min_dim_size_to_factor=12),            # attention, dense (160, 12)
    dict(learning_rate=1e-2, min_dim_size_to_factor=12, momentum=0.9, weight_decay_rate=1e-3),
])
def test_adafactor_factored_big_matches_optax(big_params, kwargs):
  assert_matches_optax("adafactor", optax.adafactor(**kwargs), strong(big_params), rtol=1e-4,
                       **kwargs)


def test_adafactor_node_hints_have_reduced_shapes(big_params):
  rule = learned_opt.algorithms.get("adafactor", learning_rate=1e-2, min_dim_size_to_factor=12)
  state = rule.init(big_params)
  grads = jax.tree.map(jnp.ones_like, big_params)
  _, _, trace = jax.jit(rule.step)(grads, state, big_params)
  assert trace["v_row"].location == base.NODE and trace["v_col"].location == base.NODE
  v_row, v_col = trace["v_row"].value, trace["v_col"].value
  # attention (2, 16, 160): rows reduce the largest axis (160), columns the next (16).
  assert v_row["attention"]["w"].shape == (2, 16)
  assert v_col["attention"]["w"].shape == (2, 160)
  # dense (160, 12): the largest axis is the in-axis, so rows are per out-node.
  assert v_row["dense"]["w"].shape == (12,)
  assert v_col["dense"]["w"].shape == (160,)
  # Unfactored leaves keep a per-edge moment instead.
  assert trace["v"].value["conv"]["w"].shape == (3, 3, 4, 8)
  assert v_row["conv"]["w"].shape == (1,)
  assert trace["clip_denom"].location == base.LAYER
  assert trace["clip_denom"].value["dense"]["w"].shape == ()
  assert trace["param_scale"].value["temperature"].shape == ()
  for name in ("v_row", "v_col", "v"):
    assert jax.tree.structure(trace[name].value) == jax.tree.structure(big_params)


# ------------------------------------------------------------------------- lamb
@pytest.mark.parametrize("kwargs", [
    dict(learning_rate=1e-2),
    dict(learning_rate=3e-3, b1=0.8, b2=0.99, eps=1e-4, eps_root=1e-8),
    dict(learning_rate=1e-2, weight_decay=0.1, mask=not_biases),
    dict(learning_rate=SCHEDULE, weight_decay=0.05, mask=PREFIX_MASK),
])
def test_lamb_matches_optax(params, kwargs):
  assert_matches_optax("lamb", optax.lamb(**kwargs), strong(params), rtol=1e-5, **kwargs)


# ------------------------------------------------------------------------- lars
@pytest.mark.parametrize("kwargs", [
    dict(learning_rate=1e-1),
    dict(learning_rate=1e-1, weight_decay=1e-2, trust_coefficient=0.01, eps=1e-6,
         weight_decay_mask=not_biases, trust_ratio_mask=not_biases),
    dict(learning_rate=1e-1, weight_decay=1e-2, weight_decay_mask=PREFIX_MASK,
         trust_ratio_mask=PREFIX_MASK, momentum=0.8),
    dict(learning_rate=SCHEDULE, momentum=0.9, nesterov=True),
    dict(learning_rate=1e-1, momentum=0.0, trust_ratio_mask=False),
])
def test_lars_matches_optax(params, kwargs):
  assert_matches_optax("lars", optax.lars(**kwargs), strong(params), rtol=1e-5, **kwargs)


def test_lamb_trust_ratio_is_a_layer_hint(params):
  rule = learned_opt.algorithms.get("lamb", learning_rate=1e-2)
  grads = jax.tree.map(jnp.ones_like, params)
  _, _, trace = rule.step(grads, rule.init(params), params)
  ratio = trace["trust_ratio"]
  assert ratio.location == base.LAYER
  assert jax.tree.structure(ratio.value) == jax.tree.structure(params)
  assert all(np.shape(r) == () for r in jax.tree.leaves(ratio.value))
  p = params["dense"]["w"]
  u = trace["direction"].value["dense"]["w"]
  np.testing.assert_allclose(ratio.value["dense"]["w"],
                             np.linalg.norm(p) / np.linalg.norm(u), rtol=1e-5)


# ------------------------------------------------------------------------- muon
def heads_and_kernels(p):
  """Dimension numbers: attention per head (16 -> wide), conv kernel as (3*3*4 -> 8)."""
  return {"conv": {"w": MuonDimensionNumbers((0, 1, 2), 3), "b": None},
          "attention": {"w": MuonDimensionNumbers(1, 2)},
          "dense": {"w": MuonDimensionNumbers(), "b": None},
          "head": [MuonDimensionNumbers(1, 0), None],
          "temperature": None}


MUON_CASES = [
    dict(learning_rate=1e-2),
    dict(learning_rate=1e-2, nesterov=False, beta=0.9, ns_steps=3, ns_coeffs=(3.0, -3.2, 1.2),
         eps=1e-6),
    dict(learning_rate=1e-2, ns_coeffs="dion", adaptive=True),
    dict(learning_rate=1e-2, ns_steps=4, ns_coeffs=((3.4, -4.7, 2.0), (3.0, -3.2, 1.2)),
         preconditioning="spectral"),
    dict(learning_rate=1e-2, preconditioning="aol", weight_decay=0.1,
         weight_decay_mask=not_biases),
    dict(learning_rate=1e-2, preconditioning="schatten", weight_decay=0.1,
         weight_decay_mask=PREFIX_MASK),
    dict(learning_rate=1e-2, mu_dtype=jnp.bfloat16, adam_b1=0.8, adam_b2=0.99,
         adam_eps_root=1e-8, adam_weight_decay=0.01),
    dict(learning_rate=SCHEDULE, adam_learning_rate=optax.cosine_decay_schedule(3e-3, 25),
         consistent_rms=0.2),
    dict(learning_rate=1e-2, muon_weight_dimension_numbers=heads_and_kernels),
    dict(learning_rate=1e-2, muon_weight_dimension_numbers=heads_and_kernels(None),
         preconditioning="aol", adaptive=True, weight_decay=0.1, nesterov=False),
    dict(learning_rate=1e-2, consistent_rms=0.2, preconditioning="schatten",
         muon_weight_dimension_numbers=lambda p: jax.tree.map(
             lambda x: MuonDimensionNumbers(-2, -1) if x.ndim >= 2 else None, p)),
]


@pytest.mark.parametrize("kwargs", MUON_CASES)
def test_muon_matches_optax(params, kwargs):
  assert_matches_optax("muon", optax.contrib.muon(**kwargs), strong(params), rtol=1e-4, **kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(learning_rate=1e-2),
    dict(learning_rate=1e-2, muon_weight_dimension_numbers=heads_and_kernels,
         preconditioning="schatten", weight_decay=0.1),
])
def test_muon_big_matches_optax(big_params, kwargs):
  assert_matches_optax("muon", optax.contrib.muon(**kwargs), strong(big_params), rtol=1e-4,
                       **kwargs)


def test_muon_emits_newton_schulz_iterates(params):
  rule = learned_opt.algorithms.get("muon", learning_rate=1e-2, ns_steps=3)
  grads = jax.tree.map(jnp.ones_like, params)
  _, _, trace = rule.step(grads, rule.init(params), params)
  for k in range(4):
    hint = trace[f"ns_iterate_{k}"]
    assert hint.location == base.EDGE
    assert hint.value["dense"]["w"].shape == params["dense"]["w"].shape
  assert "ns_iterate_4" not in trace
  assert bool(trace["orthogonalized"].value["dense"]["w"])
  assert not bool(trace["orthogonalized"].value["attention"]["w"])
  # X_0 is Frobenius-normalized.
  np.testing.assert_allclose(np.linalg.norm(trace["ns_iterate_0"].value["head"][0]), 1.0,
                             rtol=1e-5)


def test_muon_invalid_dimension_numbers_raise(params):
  rule = learned_opt.algorithms.get(
      "muon", learning_rate=1e-2, muon_weight_dimension_numbers=MuonDimensionNumbers())
  with pytest.raises(ValueError, match="rank >= 2"):
    rule.init(params)  # a single spec for every leaf reaches the biases and the scalar
  with pytest.raises(ValueError, match="preconditioning"):
    learned_opt.algorithms.get("muon", learning_rate=1e-2, preconditioning="polar")
  with pytest.raises(ValueError, match="ns_coeffs"):
    learned_opt.algorithms.get("muon", learning_rate=1e-2, ns_coeffs="nope")


# ----------------------------------------------------------- contracts, refusals
RULES = {
    "adafactor": dict(learning_rate=1e-2, min_dim_size_to_factor=4, momentum=0.9),
    "lamb": dict(learning_rate=1e-2),
    "lars": dict(learning_rate=1e-2),
    "muon": dict(learning_rate=1e-2),
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_init_on_shape_dtype_structs(params, name):
  rule = learned_opt.algorithms.get(name, **RULES[name])
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
  from_abstract, from_arrays = rule.init(abstract), rule.init(params)
  assert jax.tree.structure(from_abstract) == jax.tree.structure(from_arrays)
  for a, b in zip(jax.tree.leaves(from_abstract), jax.tree.leaves(from_arrays)):
    assert a.shape == b.shape and a.dtype == b.dtype
  updates, state, _ = rule.step(jax.tree.map(jnp.ones_like, params), from_abstract, params)
  assert jax.tree.structure(state) == jax.tree.structure(from_arrays)
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(from_arrays)):
    assert a.shape == b.shape and a.dtype == b.dtype


@pytest.mark.parametrize("name", sorted(RULES))
def test_complex_params_are_refused(name):
  rule = learned_opt.algorithms.get(name, **RULES[name])
  with pytest.raises(base.UnsupportedOptionError, match="complex"):
    rule.init({"w": jnp.zeros((4, 4), jnp.complex64)})


def test_muon_unrolled_steps_must_be_static():
  with pytest.raises(base.UnsupportedOptionError, match="ns_steps"):
    learned_opt.algorithms.get("muon", learning_rate=1e-2, ns_steps=jnp.asarray(5))


@pytest.mark.parametrize("name", sorted(RULES))
def test_bf16_updates_keep_gradient_dtype(params, name):
  rule = learned_opt.algorithms.get(name, **RULES[name])
  low = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params)
  updates, _, _ = jax.jit(rule.step)(jax.tree.map(jnp.ones_like, low), rule.init(low), low)
  assert all(u.dtype == jnp.bfloat16 for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("name", sorted(RULES))
def test_unknown_keyword_is_refused(name):
  with pytest.raises(TypeError, match="accepts optax's keywords"):
    learned_opt.algorithms.get(name, learning_rate=1e-2, not_an_option=1)
