"""Hypergradient step sizes (Baydin et al. 2018) on Adam and Muon: against a numpy oracle,
its base rule at beta = 0, its hints, optax and its refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import learned_opt
from learned_opt.algorithms import base
from tests.rule_equivalence import assert_matches_optax

LR = 0.05


def small_params():
  rng = np.random.default_rng(0)
  return {"w": jnp.asarray(rng.standard_normal((4, 3)), jnp.float32),
          "b": jnp.asarray(rng.standard_normal(3), jnp.float32),
          "s": jnp.asarray(0.5, jnp.float32)}


def drifting_grads(params, steps, seed=1):
  """A fixed pull plus noise, so consecutive directions agree sometimes and not always."""
  rng = np.random.default_rng(seed)
  pull = jax.tree.map(lambda x: rng.standard_normal(x.shape), params)
  return [jax.tree.map(lambda p, x: jnp.asarray(p + 1.5 * rng.standard_normal(x.shape),
                                                jnp.float32), pull, params)
          for _ in range(steps)]


def numpy_hypergradient(grads_seq, params, form, beta, lr):
  """The paper's rule, written independently: numpy step sizes on optax.adam(1)'s direction."""
  adam = optax.adam(1.0)
  adam_state = adam.init(params)
  leaves = lambda tree: [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]
  alpha = [lr] * len(jax.tree.leaves(params))
  previous = [np.zeros(np.shape(x)) for x in jax.tree.leaves(params)]
  out = []
  for grads in grads_seq:
    step, adam_state = adam.update(grads, adam_state, params)
    direction = [-u for u in leaves(step)]
    for i, (g, d) in enumerate(zip(leaves(grads), previous)):
      dot = float(np.sum(g * d))
      if form == "additive":
        alpha[i] = alpha[i] + beta * dot
      else:
        norms = np.linalg.norm(g) * np.linalg.norm(d)
        alpha[i] = alpha[i] * (1 + beta * (dot / norms if norms > 0 else 0.0))
    out.append(([-a * d for a, d in zip(alpha, direction)], list(alpha)))
    previous = direction
  return out


@pytest.mark.parametrize("form,beta", [("multiplicative", 0.1), ("additive", 1e-3)])
def test_matches_a_numpy_implementation_of_the_paper(form, beta):
  params = small_params()
  grads_seq = drifting_grads(params, 20)
  rule = learned_opt.algorithms.get("hypergradient", learning_rate=LR, hypergradient_lr=beta,
                                    form=form)
  step = jax.jit(rule.step)
  state = rule.init(params)
  expected = numpy_hypergradient(grads_seq, params, form, beta, LR)
  moved = False
  for t, (grads, (ref_updates, ref_alpha)) in enumerate(zip(grads_seq, expected)):
    updates, state, trace = step(grads, state, params)
    for ours, ref in zip(jax.tree.leaves(updates), ref_updates):
      np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * np.max(np.abs(ref)),
                                 err_msg=f"{form} step {t}")
    np.testing.assert_allclose(jax.tree.leaves(trace["step_size"].value), ref_alpha,
                               rtol=1e-5, err_msg=f"{form} step {t}")
    moved |= not np.allclose(ref_alpha, LR, rtol=1e-3)
  assert moved, "the step sizes never moved: the test exercises nothing"


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(form="additive"),
    dict(base_kwargs=dict(b1=0.8, b2=0.99, eps=1e-6, nesterov=True)),
])
def test_beta_zero_is_adam(params, kwargs):
  adam_kwargs = kwargs.get("base_kwargs", {})
  assert_matches_optax("hypergradient", optax.adam(1e-2, **adam_kwargs), params, rtol=1e-6,
                       learning_rate=1e-2, hypergradient_lr=0.0, **kwargs)


@pytest.mark.parametrize("base_kwargs", [{}, dict(weight_decay=0.1, ns_steps=3)])
def test_beta_zero_is_muon(params, base_kwargs):
  strong = jax.tree.map(lambda x: x.astype(x.dtype), params)  # no weak-typed scalar leaf
  # The tolerance of tests/test_rules_structured.py's muon-vs-optax comparison.
  assert_matches_optax("hypergradient", optax.contrib.muon(1e-2, **base_kwargs), strong,
                       rtol=1e-4, learning_rate=1e-2, hypergradient_lr=0.0, base="muon",
                       base_kwargs=base_kwargs)


def _run(rule, params, gradient_at, steps):
  state, traces, updates = rule.init(params), [], []
  step = jax.jit(rule.step)
  for t in range(steps):
    u, state, trace = step(gradient_at(t), state, params)
    updates.append(u)
    traces.append(trace)
  return updates, traces


# additive: |g . d| is up to 12 here (the 4x3 leaf), so beta = 1e-3 keeps alpha positive.
@pytest.mark.parametrize("form,beta", [("multiplicative", 0.05), ("additive", 1e-3)])
def test_log_step_size_rises_when_gradients_agree_and_falls_when_they_alternate(form, beta):
  params, steps = small_params(), 6
  rule = learned_opt.algorithms.get("hypergradient", learning_rate=LR, hypergradient_lr=beta,
                                    form=form)
  grads = jax.tree.map(jnp.ones_like, params)
  same_u, same = _run(rule, params, lambda t: grads, steps)
  _, flip = _run(rule, params, lambda t: jax.tree.map(lambda g: (-1.0) ** t * g, grads), steps)
  for u, trace in zip(same_u, same):
    log_alpha = trace["log_step_size"].value
    assert trace["log_step_size"].location == base.LAYER
    np.testing.assert_allclose(jax.tree.leaves(log_alpha),
                               np.log(jax.tree.leaves(trace["step_size"].value)), rtol=1e-6)
    # The step sizes used: the update is -alpha times the Adam direction (hint 'direction').
    for a, x, d in zip(jax.tree.leaves(log_alpha), jax.tree.leaves(u),
                       jax.tree.leaves(trace["direction"].value)):
      np.testing.assert_allclose(-np.exp(a) * d, x, rtol=1e-5)
  rising = np.array([jax.tree.leaves(t["log_step_size"].value) for t in same])
  falling = np.array([jax.tree.leaves(t["log_step_size"].value) for t in flip])
  np.testing.assert_allclose(rising[0], np.log(LR), rtol=1e-6)  # d_0 = 0: alpha_1 = alpha_0
  assert (np.diff(rising, axis=0) > 0).all() and (np.diff(falling, axis=0) < 0).all()
  if form == "multiplicative":  # Adam's direction is sign(g): the cosine is +1, then -1.
    np.testing.assert_allclose(rising[-1], np.log(LR * (1 + beta) ** (steps - 1)), rtol=1e-5)
    np.testing.assert_allclose(falling[-1], np.log(LR * (1 - beta) ** (steps - 1)), rtol=1e-5)
    np.testing.assert_allclose(jax.tree.leaves(same[-1]["hypergradient"].value), 1.0,
                               rtol=1e-5)


def test_step_sizes_are_clipped():
  params = small_params()
  rule = learned_opt.algorithms.get("hypergradient", learning_rate=LR, hypergradient_lr=0.5,
                                    max_learning_rate=0.06, min_learning_rate=0.04)
  grads = jax.tree.map(jnp.ones_like, params)
  _, same = _run(rule, params, lambda t: grads, 4)
  _, flip = _run(rule, params, lambda t: jax.tree.map(lambda g: (-1.0) ** t * g, grads), 4)
  np.testing.assert_allclose(jax.tree.leaves(same[-1]["step_size"].value), 0.06, rtol=1e-6)
  np.testing.assert_allclose(jax.tree.leaves(flip[-1]["step_size"].value), 0.04, rtol=1e-6)


@pytest.mark.parametrize("base_name", ["adam", "muon"])
def test_hints_state_and_dtypes(params, base_name):
  rule = learned_opt.algorithms.get("hypergradient", learning_rate=1e-2, base=base_name)
  grads = jax.tree.map(jnp.ones_like, params)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
  state = rule.init(abstract)
  _, new_state, trace = jax.jit(rule.step)(grads, state, params)
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state)):
    assert a.shape == b.shape and a.dtype == b.dtype
  assert trace["learning_rate"].location == base.GRAPH and "adam_learning_rate" not in trace
  for name, hint in trace.items():
    for leaf, p in zip(jax.tree.leaves(hint.value), jax.tree.leaves(params)):
      if hint.location == base.EDGE:
        assert leaf.shape == p.shape, name
      elif hint.location == base.LAYER:
        assert leaf.shape == (), name
  low = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params)
  updates, _, _ = jax.jit(rule.step)(jax.tree.map(jnp.ones_like, low), rule.init(low), low)
  assert all(u.dtype == jnp.bfloat16 for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("base_name", ["adam", "muon"])
def test_as_optax_trains_under_jit(base_name):
  target = small_params()
  params = jax.tree.map(jnp.zeros_like, target)
  loss = lambda p: sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree.leaves(p),
                                                              jax.tree.leaves(target)))
  tx = learned_opt.algorithms.get("hypergradient", learning_rate=0.05, base=base_name,
                                  hypergradient_lr=0.02).as_optax()
  assert isinstance(tx, optax.GradientTransformationExtraArgs)

  @jax.jit
  def train_step(p, s):
    value, grads = jax.value_and_grad(loss)(p)
    updates, s = tx.update(grads, s, p, value=value)
    return optax.apply_updates(p, updates), s

  state = tx.init(params)
  start = float(loss(params))
  for _ in range(40):
    params, state = train_step(params, state)
  assert float(loss(params)) < 0.1 * start
  assert np.isfinite(jax.tree.leaves(state.step_size)).all()


def test_bad_input_is_refused():
  get = learned_opt.algorithms.get
  with pytest.raises(ValueError, match=r"unknown form 'exponential'.*multiplicative.*additive"):
    get("hypergradient", learning_rate=1e-2, form="exponential")
  with pytest.raises(ValueError, match=r"unknown base 'sgd'.*adam.*muon"):
    get("hypergradient", learning_rate=1e-2, base="sgd")
  with pytest.raises(base.UnsupportedOptionError, match="schedule"):
    get("hypergradient", learning_rate=optax.linear_schedule(1e-2, 1e-3, 10))
  with pytest.raises(ValueError, match="base_kwargs must not hold learning_rate"):
    get("hypergradient", learning_rate=1e-2, base_kwargs=dict(learning_rate=1e-3))
  with pytest.raises(TypeError, match=r"'adam' got unknown keyword.*\['beta'\]"):
    get("hypergradient", learning_rate=1e-2, base_kwargs=dict(beta=0.9))
  with pytest.raises(base.UnsupportedOptionError, match="complex"):
    get("hypergradient", learning_rate=1e-2).init({"w": jnp.zeros((2, 2), jnp.complex64)})
