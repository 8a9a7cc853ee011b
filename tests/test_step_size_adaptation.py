"""The executor's per-tensor step-size integrator (HandSet.step_size_adaptation)."""

import dataclasses
import math

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_opt.executor import (ExecutorConfig, ExecutorOptimizer, HandSet, init_weights,
                                  network, step_size)
from learned_opt.executor.config import MAX_STEP_SIZE_FACTOR

_ADAPTING = HandSet(step_size_adaptation=0.5, step_size_target=-0.1)


def _executor(hand_set):
  config = ExecutorConfig()
  weights = init_weights(config, jax.random.PRNGKey(0))
  return ExecutorOptimizer(weights, config, "adam", {"learning_rate": 1e-2}, hand_set)


def _run(executor, params, gradient_at, steps):
  state = executor.init(params)
  run = jax.jit(executor.step)
  outs = []
  for t in range(steps):
    out = run(gradient_at(t), state, params)
    state = out.state
    outs.append(out)
  return outs


def test_off_by_default_keeps_no_integrator_state(params):
  outs = _run(_executor(HandSet()), params,
              lambda t: jax.tree.map(lambda x: (-1.0) ** t * jnp.ones_like(x), params), 5)
  assert outs[-1].state.log_step is None and outs[-1].state.grad_mean_square is None
  assert _executor(_ADAPTING).init(params).log_step.shape == (len(jax.tree.leaves(params)),)


def test_log_steps_rise_with_agreeing_and_fall_with_alternating_gradients(params):
  rng = np.random.default_rng(0)
  direction = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), params)
  executor = _executor(_ADAPTING)
  same = _run(executor, params, lambda t: direction, 6)
  flip = _run(executor, params, lambda t: jax.tree.map(lambda x: (-1.0) ** t * x, direction), 6)
  # Step 0 has no first moment yet (cosine 0): the log step moves by -beta * target.
  np.testing.assert_allclose(same[0].state.log_step, 0.05, rtol=1e-5)
  # Then the cosine is +1 (same gradient) or -1 (sign flips): +-beta per step, plus the offset.
  np.testing.assert_allclose(same[-1].state.log_step, 0.05 + 5 * 0.55, rtol=1e-5)
  np.testing.assert_allclose(flip[-1].state.log_step, 0.05 - 5 * 0.45, rtol=1e-5)


def test_the_log_step_scales_the_update_and_is_bounded(params):
  rng = np.random.default_rng(1)
  direction = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), params)
  adapting, fixed = _executor(_ADAPTING), _executor(HandSet())
  state = adapting.init(params)
  got = adapting.step(direction, state._replace(log_step=jnp.full_like(state.log_step, 1.0)),
                      params)
  want = fixed.step(direction, state._replace(log_step=None), params)
  # Same state, first step (s1 = 0, cosine 0): log step 1 + 0.05 on every tensor.
  for a, b in zip(jax.tree.leaves(got.updates), jax.tree.leaves(want.updates)):
    np.testing.assert_allclose(a, math.exp(1.05) * b, rtol=1e-4, atol=1e-12)
  fast = dataclasses.replace(_ADAPTING, step_size_adaptation=50.0)
  outs = _run(_executor(fast), params, lambda t: direction, 3)
  np.testing.assert_allclose(outs[-1].state.log_step, math.log(MAX_STEP_SIZE_FACTOR),
                             rtol=1e-6)
  raised = _run(_executor(dataclasses.replace(fast, max_step_size_factor=100.0)), params,
                lambda t: direction, 3)
  np.testing.assert_allclose(raised[-1].state.log_step, math.log(100.0), rtol=1e-6)
  for bad in (0.5, math.inf):
    with pytest.raises(ValueError, match=r"max_step_size_factor must be finite and >= 1"):
      HandSet(max_step_size_factor=bad)


def test_the_leak_pulls_the_log_step_back_to_the_learned_step(params):
  rng = np.random.default_rng(3)
  direction = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), params)
  leaky = dataclasses.replace(_ADAPTING, step_size_leak=0.25)
  executor = _executor(leaky)
  state = executor.init(params)
  state = state._replace(log_step=jnp.full_like(state.log_step, -2.0))
  # First step (s1 = 0, cosine 0): l' = 0.75 * -2 + 0.5 * (0 + 0.1).
  out = jax.jit(executor.step)(direction, state, params)
  np.testing.assert_allclose(out.state.log_step, 0.75 * -2.0 + 0.05, rtol=1e-5)
  with pytest.raises(ValueError, match=r"step_size_leak must be in \[0, 1\)"):
    HandSet(step_size_leak=1.0)


def test_learned_head_starts_neutral_and_its_outputs_set_rate_and_target(params):
  base = init_weights(ExecutorConfig(), jax.random.PRNGKey(0))
  learned = ExecutorConfig(learned_step_size=True)
  weights = network.complete_weights(base, learned)
  assert set(weights) == set(base) | {"step_size_head"}
  rng = np.random.default_rng(0)
  direction = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), params)

  def log_steps(config, weights, steps=4):
    executor = ExecutorOptimizer(weights, config, "adam", {"learning_rate": 1e-2}, _ADAPTING)
    return _run(executor, params, lambda t: direction, steps)[-1].state.log_step

  # A zero head is the fixed integrator.
  np.testing.assert_allclose(log_steps(learned, weights), log_steps(ExecutorConfig(), base),
                             rtol=1e-6)
  # Head biases (rate +0.5, target -0.2): rate 1.0, target -0.3 on every tensor.
  head = dict(weights["step_size_head"], b=jnp.asarray([0.5, -0.2], jnp.float32))
  moved = dict(weights, step_size_head=head)
  np.testing.assert_allclose(log_steps(learned, moved, steps=2), 0.3 + 1.3, rtol=1e-5)
  # The rate cannot go negative.
  head = dict(weights["step_size_head"], b=jnp.asarray([-5.0, 0.0], jnp.float32))
  np.testing.assert_array_equal(log_steps(learned, dict(weights, step_size_head=head)), 0.0)


def test_the_floor_holds_the_log_step_under_alternating_gradients(params):
  rng = np.random.default_rng(2)
  direction = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), params)
  flip = lambda t: jax.tree.map(lambda x: (-1.0) ** t * x, direction)   # noqa: E731
  floored = dataclasses.replace(_ADAPTING, step_size_adaptation=5.0, min_step_size_factor=0.5)
  outs = _run(_executor(floored), params, flip, 4)
  np.testing.assert_allclose(outs[-1].state.log_step, math.log(0.5), rtol=1e-6)
  default = _run(_executor(dataclasses.replace(floored, min_step_size_factor=1 / 30)),
                 params, flip, 4)
  np.testing.assert_allclose(default[-1].state.log_step, -math.log(MAX_STEP_SIZE_FACTOR),
                             rtol=1e-6)
  with pytest.raises(ValueError, match=r"min_step_size_factor must be in \(0, 1\]"):
    HandSet(min_step_size_factor=0.0)


@hypothesis.settings(max_examples=50, deadline=None)
@hypothesis.given(st.floats(-2.0, 2.0), st.floats(0.0, 0.5))
def test_deadband_holds_inside_and_shifts_below(x, width):
  got = float(step_size.deadband(jnp.float32(x), width))
  if x > 0:
    assert got == pytest.approx(x, rel=1e-6)
  elif x >= -width:
    assert got == 0.0
  else:
    assert got == pytest.approx(x + width, rel=1e-5, abs=1e-6)
  assert float(step_size.deadband(jnp.float32(x), 0.0)) == pytest.approx(x, rel=1e-6)


def test_deadband_in_the_integrator(params):
  rng = np.random.default_rng(3)
  direction = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), params)
  flip = lambda t: jax.tree.map(lambda x: (-1.0) ** t * x, direction)   # noqa: E731
  banded = dataclasses.replace(_ADAPTING, step_size_deadband=0.3)
  outs = _run(_executor(banded), params, flip, 4)
  # Step 0: cosine 0, signal 0 - (-0.1) = 0.1 > 0; then cosine -1: signal -0.9 + 0.3 = -0.6.
  np.testing.assert_allclose(outs[-1].state.log_step, 0.5 * (0.1 - 3 * 0.6), rtol=1e-5)
  with pytest.raises(ValueError, match="step_size_deadband must be >= 0"):
    HandSet(step_size_deadband=-0.1)


@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(st.lists(st.floats(-6.0, 6.0), min_size=1, max_size=30), st.floats(0.5, 0.999))
def test_gradient_fall_tracks_the_second_moments_mean_square(log_rms, a2):
  """The running number equals mean(s2^2) of the real recursion, so f is
  log RMS(g) - log RMS(s2' / sqrt(z2')) without reading s2."""
  b2 = 1.0 - a2
  rng = np.random.default_rng(0)
  s2, z2, running = np.zeros((4, 3)), 0.0, jnp.zeros(())
  for log_g in log_rms:
    g = math.exp(log_g) * rng.choice([-1.0, 1.0], (4, 3))
    s2 = np.sqrt(a2 * s2**2 + b2 * g**2)
    z2 = a2 * z2 + b2
    fall, running = step_size.gradient_fall(jnp.float32(np.mean(g**2)), running, a2, b2,
                                       jnp.float32(z2))
    want = log_g - 0.5 * math.log(np.mean(s2**2) / z2)
    assert float(fall) == pytest.approx(want, rel=1e-3, abs=1e-3)


@hypothesis.settings(max_examples=50, deadline=None)
@hypothesis.given(st.floats(-10.0, 3.0), st.floats(0.1, 5.0), st.floats(0.0, 0.5))
def test_gated_width_closes_as_the_gradient_leaves_its_level(fall, scale, width):
  got = float(step_size.gated_width(width, jnp.float32(fall), scale))
  assert 0.0 <= got <= width + 1e-7
  if abs(fall) >= scale:
    assert got == 0.0
  else:
    assert got == pytest.approx(width * (1 - abs(fall) / scale), rel=1e-4, abs=1e-7)
  assert float(step_size.gated_width(width, jnp.float32(0.0), scale)) == pytest.approx(width)


def test_the_fall_gate_in_the_integrator(params):
  """One step against the momentum (cosine -1, signal -0.9): a gradient at the level the
  second moment remembers keeps the band open (2 wide: the step holds); one far below
  or far above it closes the band (the step shrinks)."""
  rng = np.random.default_rng(4)
  grads = jax.tree.map(lambda x: jnp.asarray(rng.choice([-1.0, 1.0], x.shape), x.dtype), params)
  gated = dataclasses.replace(_ADAPTING, step_size_deadband=2.0, step_size_deadband_fall=1.0)
  executor = _executor(gated)
  state = executor.init(params)
  # Every gradient entry is +-1 (mean square 1); the running mean square says what s2
  # remembers: 1 (level: the band stays open), 1e6 (fallen far) or 1e-6 (jumped: closed).
  count = jnp.asarray(5, jnp.int32)
  state = state._replace(count=count, s1=jax.tree.map(jnp.negative, grads),
                         z=jnp.ones((3,), jnp.float32),
                         grad_mean_square=jnp.ones_like(state.grad_mean_square))
  np.testing.assert_allclose(executor.step(grads, state, params).state.log_step, 0.0, atol=1e-6)
  fallen = state._replace(grad_mean_square=1e6 * state.grad_mean_square)
  np.testing.assert_allclose(executor.step(grads, fallen, params).state.log_step, -0.45,
                             rtol=1e-5)
  jumped = state._replace(grad_mean_square=1e-6 * state.grad_mean_square)
  np.testing.assert_allclose(executor.step(grads, jumped, params).state.log_step, -0.45,
                             rtol=1e-5)
  ungated = _executor(dataclasses.replace(gated, step_size_deadband_fall=0.0))
  np.testing.assert_allclose(
      ungated.step(grads, fallen._replace(grad_mean_square=None), params).state.log_step, 0.0,
      atol=1e-6)
  with pytest.raises(ValueError, match="step_size_deadband_fall must be >= 0"):
    HandSet(step_size_deadband_fall=-1.0)


def test_a_state_with_the_integrator_can_be_donated(params):
  """Every state leaf is its own buffer, so a jitted step may donate the state."""
  executor = _executor(dataclasses.replace(_ADAPTING, step_size_deadband=0.1,
                                           step_size_deadband_fall=1.0))
  state = executor.init(params)
  leaves = jax.tree.leaves(state)
  assert len({id(x) for x in leaves}) == len(leaves)
  step = jax.jit(lambda s, g: executor.step(g, s, params).state, donate_argnums=0)
  grads = jax.tree.map(jnp.ones_like, params)
  state = step(step(state, grads), grads)
  assert int(state.count) == 2
