"""Estimators against the exact meta-gradient (autodiff through the whole unroll)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

from meta_train import estimators, unroll
from tests.test_meta_unroll import THETA, quadratic_problem

FAST_COMPILE = {"xla_backend_optimization_level": 0}   # these programs are compile-bound
POPULATION = 256
PROBLEM = quadratic_problem(truncation_length=3, num_truncations=3)   # H = 9
DATA = PROBLEM.family.datasets(PROBLEM.static)


def _flat(tree) -> np.ndarray:
  return np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree.leaves(tree)])


def _cosine(a, b) -> float:
  a, b = _flat(a), _flat(b)
  return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@functools.lru_cache(maxsize=None)
def _estimator(kind: str, devices: int = 4, objective: str = "train"):
  mesh = Mesh(np.asarray(jax.devices()[:devices]), (estimators.AXIS,))
  est = estimators.make(kind, PROBLEM, POPULATION, objective, sigma=0.01, mesh=mesh,
                        compiler_options=FAST_COMPILE)
  return est, jax.jit(est.estimate, compiler_options=FAST_COMPILE)


@functools.lru_cache(maxsize=None)
def _exact(length: int, segments: int):
  """d/dtheta of mean_tasks sum_segments J, through every segment (one particle)."""

  def total(theta, state):
    def per_task(task, particle):
      j = 0.0
      for _ in range(segments):
        plan = unroll.plan_segment(PROBLEM, task, DATA.train, DATA.valid, length)
        particle, segment = unroll.run_segment(PROBLEM, theta, particle, task, plan)
        old, new = estimators.objective_parts("train", segment)
        j, task = j + old + new, plan.next_task
      return j
    first = jax.tree.map(lambda x: x[:, 0], state.particles)
    return jnp.mean(jax.vmap(per_task)(state.tasks, first))

  return jax.jit(jax.grad(total), compiler_options=FAST_COMPILE)


def _run(kind: str, segments: int, key=0):
  est, estimate = _estimator(kind)
  state = est.init(jax.random.PRNGKey(key), THETA, DATA.train)
  start, total = state, jax.tree.map(jnp.zeros_like, THETA)
  for _ in range(segments):
    grad, state, metrics = estimate(THETA, state, DATA.train, DATA.valid)
    total = jax.tree.map(jnp.add, total, grad)
  return start, total, state, metrics


def test_pes_agrees_with_exact_gradient_across_truncations_and_resets():
  start, pes, state, metrics = _run("pes", segments=3)
  # Staggered clocks: some tasks reset inside these segments, some at their start.
  assert len(set(np.asarray(start.tasks.step).tolist())) > 3
  exact = _exact(3, 3)(THETA, start)
  assert _cosine(pes, exact) >= 0.9, (pes, exact)
  np.testing.assert_allclose(_flat(pes), _flat(exact), rtol=0.3)
  assert int(metrics["ended"]) == 0 and np.isfinite(float(metrics["meta_loss"]))


def test_es_agrees_with_exact_gradient_of_whole_episodes():
  start, es, _, _ = _run("es", segments=1)
  np.testing.assert_array_equal(start.tasks.step, 0)
  exact = _exact(9, 1)(THETA, start)
  assert _cosine(es, exact) >= 0.9, (es, exact)


def test_tbptt_is_autodiff_through_its_segment():
  start, tbptt, state, _ = _run("tbptt", segments=1)
  exact = _exact(3, 1)(THETA, start)
  np.testing.assert_allclose(_flat(tbptt), _flat(exact), rtol=1e-4, atol=1e-7)
  assert jax.tree.leaves(state.particles)[0].shape[:2] == (POPULATION, 1)


def test_sharding_does_not_change_the_estimate():
  est4, estimate4 = _estimator("pes", 4)
  est1, estimate1 = _estimator("pes", 1)
  state = est4.init(jax.random.PRNGKey(3), THETA, DATA.train)
  g4, s4, _ = estimate4(THETA, state, DATA.train, DATA.valid)
  g1, s1, _ = estimate1(THETA, jax.device_put(state, est1.state_sharding), DATA.train,
                        DATA.valid)
  assert len(s4.tasks.step.sharding.device_set) == 4
  np.testing.assert_allclose(_flat(g4), _flat(g1), rtol=1e-5, atol=1e-6)
  for a, b in zip(jax.tree.leaves(s4), jax.tree.leaves(s1)):
    np.testing.assert_array_equal(a, b)


def test_nonfinite_contribution_ends_the_task_and_clears_its_accumulator():
  est, estimate = _estimator("pes")
  state = est.init(jax.random.PRNGKey(4), THETA, DATA.train)
  state, _ = estimate(THETA, state, DATA.train, DATA.valid)[1:]
  poisoned = state._replace(accumulators=jax.tree.map(
      lambda a: a.at[5].set(jnp.nan), state.accumulators))
  # Task 5 must keep its episode through the next segment for A to matter.
  poisoned = poisoned._replace(tasks=poisoned.tasks._replace(
      step=poisoned.tasks.step.at[5].set(0)))
  grad, after, metrics = estimate(THETA, poisoned, DATA.train, DATA.valid)
  assert not np.all(np.isfinite(_flat(grad)))
  assert int(metrics["ended"]) == 1
  assert int(after.tasks.step[5]) == PROBLEM.horizon
  assert np.all(_flat(jax.tree.map(lambda a: a[5], after.accumulators)) == 0)
  assert np.all(np.isfinite(_flat(after.accumulators)))
  # The next segment restarts task 5 and the estimate is finite again.
  grad, after, metrics = estimate(THETA, after, DATA.train, DATA.valid)
  assert np.all(np.isfinite(_flat(grad))) and int(metrics["ended"]) == 0


def test_objective_parts_split_at_the_reset():
  seg = unroll.Segment(loss=jnp.zeros(4), normalized=jnp.asarray([1.0, 2.0, 3.0, 4.0]),
                       fresh=jnp.asarray([False, False, True, True]),
                       valid=jnp.asarray(0.5), finite=jnp.asarray(True))
  np.testing.assert_allclose(estimators.objective_parts("train", seg), [0.75, 1.75])
  np.testing.assert_allclose(estimators.objective_parts("valid", seg), [0.0, 0.5])
  no_reset = seg._replace(fresh=jnp.zeros(4, bool))
  np.testing.assert_allclose(estimators.objective_parts("valid", no_reset), [0.5, 0.0])
  with pytest.raises(ValueError, match="meta-objective"):
    estimators.objective_parts("test", seg)


def test_log_mean_objective_is_the_log_of_each_parts_mean():
  seg = unroll.Segment(loss=jnp.zeros(4), normalized=jnp.asarray([1e-6, 1e-1, 3.0, 1.0]),
                       fresh=jnp.asarray([False, False, True, True]),
                       valid=jnp.asarray(0.5), finite=jnp.asarray(True))
  old, new = estimators.objective_parts("train", seg, "log_mean")
  np.testing.assert_allclose([old, new], [0.5 * np.log(0.0500005), 0.5 * np.log(2.0)],
                             rtol=1e-6)
  # Not the mean of the logs, which a swing down to 1e-6 would drag far lower.
  assert old > 0.5 * np.mean(np.log([1e-6, 1e-1]))
  whole = seg._replace(fresh=jnp.zeros(4, bool))
  np.testing.assert_allclose(estimators.objective_parts("train", whole, "log_mean"),
                             [np.log(np.mean([1e-6, 1e-1, 3.0, 1.0])), 0.0], rtol=1e-5)
  np.testing.assert_allclose(estimators.objective_parts("valid", whole, "log_mean"),
                             [np.log(0.5), 0.0], rtol=1e-6)


def test_population_must_divide_over_devices():
  mesh = Mesh(np.asarray(jax.devices()[:4]), (estimators.AXIS,))
  with pytest.raises(ValueError, match="multiple of the 4 devices"):
    estimators.make("pes", PROBLEM, 6, mesh=mesh)


@pytest.mark.parametrize("kind", ["pes", "es"])
def test_a_held_leaf_is_not_perturbed_and_the_others_still_estimate_its_gradient(kind):
  mesh = Mesh(np.asarray(jax.devices()[:4]), (estimators.AXIS,))
  held = {"log_lr": 1.0, "logit_beta": 0.0}
  est = estimators.make(kind, PROBLEM, POPULATION, "train", sigma=0.01, mesh=mesh,
                        compiler_options=FAST_COMPILE, trainable=held)
  state = est.init(jax.random.PRNGKey(0), THETA, DATA.train)
  exact = _exact(9, 1) if kind == "es" else _exact(3, 1)
  grad, _, _ = jax.jit(est.estimate, compiler_options=FAST_COMPILE)(
      THETA, state, DATA.train, DATA.valid)
  assert float(grad["logit_beta"]) == 0.0
  want = float(exact(THETA, state)["log_lr"])
  assert np.sign(float(grad["log_lr"])) == np.sign(want)
  np.testing.assert_allclose(float(grad["log_lr"]), want, rtol=0.3)


def test_windowed_log_mean_is_the_sum_of_its_windows_objectives():
  rng = np.random.default_rng(0)
  normalized = jnp.asarray(np.exp(rng.normal(size=(2, 12))), jnp.float32)
  fresh = jnp.asarray(np.arange(12) >= 5)[None].repeat(2, 0)   # a reset inside window 2
  seg = unroll.Segment(loss=jnp.zeros((2, 12)), normalized=normalized, fresh=fresh,
                       valid=jnp.zeros(2), finite=jnp.ones(2, bool))
  got = estimators.objective_parts("train", seg, "log_mean", window=4)
  want = np.zeros((2, 2))
  for w in range(3):
    part = seg._replace(normalized=normalized[:, 4 * w:4 * w + 4], fresh=fresh[:, 4 * w:4 * w + 4])
    want += np.asarray(estimators.objective_parts("train", part, "log_mean")) / 3
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # One window is the whole segment, as without `window`; linear scales ignore windows.
  for scale in ("log_mean", "linear"):
    np.testing.assert_allclose(estimators.objective_parts("train", seg, scale, window=12),
                               estimators.objective_parts("train", seg, scale), rtol=1e-6)
  np.testing.assert_allclose(estimators.objective_parts("train", seg, "linear", window=4),
                             estimators.objective_parts("train", seg, "linear"), rtol=1e-6)
  with pytest.raises(ValueError, match="does not split into windows of 5"):
    estimators.objective_parts("train", seg, "log_mean", window=5)
