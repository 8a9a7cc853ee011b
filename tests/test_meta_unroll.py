"""Truncated unrolls: clocks, resets, normalization, and the executor as trained."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tasks
from learned_opt.executor import ExecutorConfig, HandSet, init_weights
from learned_opt.executor.optimizer import ExecutorOptimizer
from meta_train import unroll
from tasks.data.splits import Datasets, GeneratedSplit
from tasks.data.synthetic import GaussianNoise


class DiagonalQuadratic(tasks.Task):
  """0.5 sum_j c_j x_j^2, deterministic (the batch is ignored)."""

  def __init__(self, curvature, datasets):
    self.name, self.curvature, self.datasets = "diagonal_quadratic", curvature, datasets

  def init(self, key):
    return {"x": jax.random.normal(key, self.curvature.shape)}

  def loss_and_metrics(self, params, key, batch):
    del key, batch
    return 0.5 * jnp.sum(self.curvature * jnp.square(params["x"])), {}


class DiagonalQuadraticFamily(tasks.TaskFamily):
  """Cheap to compile: curvatures log-uniform in [e^-3, 1] (the dynamic config)."""

  name = "diagonal_quadratic"

  def __init__(self, dim: int = 4):
    self.dim = dim

  def sample_static(self, key):
    return self.dim

  def sample_dynamic(self, key, static):
    return {"curvature": jnp.exp(jax.random.uniform(key, (static,), minval=-3.0, maxval=0.0))}

  def datasets(self, static):
    return Datasets(*(GeneratedSplit(GaussianNoise(static, 0.0), 1, seed=i) for i in range(3)))

  def task(self, config):
    return DiagonalQuadratic(config.dynamic["curvature"], self.datasets(config.static))


def momentum_optimizer() -> unroll.LearnedOptimizer:
  """theta = {log_lr, logit_beta}: m <- beta m + g, update -lr m."""

  def init(params):
    return jax.tree.map(jnp.zeros_like, params)

  def step(theta, grads, m, params, value=None):
    del params, value
    beta, lr = jax.nn.sigmoid(theta["logit_beta"]), jnp.exp(theta["log_lr"])
    m = jax.tree.map(lambda m, g: beta * m + g, m, grads)
    return jax.tree.map(lambda m: -lr * m, m), m

  return unroll.LearnedOptimizer(init, step)


THETA = {"log_lr": jnp.log(0.3), "logit_beta": jnp.asarray(0.5)}
FAST_COMPILE = {"xla_backend_optimization_level": 0}   # these programs are compile-bound


def quadratic_problem(truncation_length=3, num_truncations=2, dim=4,
                      loss_scale="linear") -> unroll.Problem:
  family = DiagonalQuadraticFamily(dim)
  return unroll.Problem(family, dim, momentum_optimizer(), truncation_length,
                        num_truncations, max_normalized_loss=10.0, loss_scale=loss_scale)


def test_clocks_resets_and_fresh_starts():
  problem = quadratic_problem(truncation_length=3, num_truncations=2)   # H = 6
  data = problem.family.datasets(problem.static)
  tasks_, particles = jax.jit(
      lambda k: unroll.init_population(problem, k, 16, data.train),
      compiler_options=FAST_COMPILE)(jax.random.PRNGKey(0))
  offsets = np.asarray(tasks_.step)
  assert offsets.min() >= 0 and offsets.max() < 6 and len(set(offsets.tolist())) > 2

  @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
  def segment(tasks_, particles):
    def one(task, particle):
      plan = unroll.plan_segment(problem, task, data.train, data.valid, 3)
      particle, seg = unroll.run_segment(problem, THETA, particle, task, plan)
      return plan, particle, seg
    return jax.vmap(one)(tasks_, particles)

  for _ in range(5):
    plan, new_particles, seg = segment(tasks_, particles)
    s = np.asarray(tasks_.step)
    np.testing.assert_array_equal(plan.reset_at, 6 - s)
    np.testing.assert_array_equal(seg.fresh, np.arange(3)[None] >= (6 - s)[:, None])
    end = s + 3
    np.testing.assert_array_equal(plan.next_task.step, np.where(end > 6, end - 6, end))
    for k in range(16):
      if 6 - s[k] < 3:   # reset inside: the first fresh step sees the new episode's start
        i = 6 - s[k]
        np.testing.assert_allclose(seg.loss[k, i], plan.episode.init_loss[k], rtol=1e-6)
        np.testing.assert_allclose(seg.normalized[k, i], 1.0, rtol=1e-6)
        np.testing.assert_allclose(plan.next_task.init_loss[k], plan.episode.init_loss[k])
      else:
        np.testing.assert_array_equal(plan.next_task.init_loss[k], tasks_.init_loss[k])
    assert np.all(np.isfinite(seg.loss)) and np.all(seg.finite)
    tasks_, particles = plan.next_task, new_particles


def test_reset_restarts_optimizer_state():
  problem = quadratic_problem(truncation_length=3, num_truncations=1)   # H = 3
  data = problem.family.datasets(problem.static)

  @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
  def run(key):
    task, particle = unroll.init_task(problem, key, 2, data.train)
    plan = unroll.plan_segment(problem, task, data.train, data.valid, 3)
    return plan, *unroll.run_segment(problem, THETA, particle, task, plan)

  plan, particle, seg = run(jax.random.PRNGKey(1))
  assert int(plan.reset_at) == 1
  # Steps 1 and 2 run the new episode from zero momentum: x2 = x0 (1 - lr c)(1 - lr c (1 + b)) ...
  x0, c = plan.episode.params["x"], plan.episode.dynamic["curvature"]
  lr, beta = 0.3, float(jax.nn.sigmoid(0.5))
  m1 = c * x0
  x1 = x0 - lr * m1
  x2 = x1 - lr * (beta * m1 + c * x1)
  np.testing.assert_allclose(particle.params["x"], x2, rtol=1e-5)
  np.testing.assert_allclose(seg.loss[1], 0.5 * np.sum(c * x0**2), rtol=1e-5)


def test_normalize_clips_and_handles_nonfinite():
  got = unroll.normalize(jnp.asarray([1.0, 5.0, jnp.nan, jnp.inf, -1.0]), jnp.asarray(2.0), 2.0)
  np.testing.assert_allclose(got, [0.5, 2.0, 2.0, 2.0, -0.5])


def test_normalize_on_the_log_scale_floors_and_clips():
  losses = jnp.asarray([1.0, 2e-3, 5.0, jnp.nan, 0.0])
  got = unroll.normalize(losses, jnp.asarray(2.0), 2.0, "log")
  np.testing.assert_allclose(
      got, np.log([0.5, 1e-3, 2.0, 2.0, unroll.LOG_FLOOR]), rtol=1e-6)
  assert np.all(np.isfinite(got))


def test_unknown_loss_scale_is_refused():
  with pytest.raises(ValueError, match="Unknown loss_scale 'exp'"):
    quadratic_problem(loss_scale="exp")


def test_end_episode_sets_clock_to_horizon():
  problem = quadratic_problem(truncation_length=3, num_truncations=2)
  data = problem.family.datasets(problem.static)
  tasks_ = unroll.Task(jnp.asarray([0, 3, 5, 6], jnp.int32), jnp.zeros((4, 2), jnp.uint32),
                       {"curvature": jnp.ones((4, 4))}, jnp.ones(4))
  ended = unroll.end_episode(problem, tasks_, jnp.asarray([True, False, True, False]))
  np.testing.assert_array_equal(ended.step, np.where([1, 0, 1, 0], 6, tasks_.step))


def test_executor_trains_as_deployed():
  """The unroll's executor step equals the optax optimizer learned_opt.load gives."""
  config = ExecutorConfig(embed_dim=2, hidden=4, edge_hidden=1,
                          trained_options=(("adam", ("learning_rate",)),))
  weights = init_weights(config, jax.random.PRNGKey(0))
  family = tasks.families.ImageMLPFamily(datasets=("digits",), widths=(4, 4), depths=(1, 1),
                                         activations=("relu",), batch_sizes=(8,),
                                         layer_norm=(False,))
  static = family.sample_static(jax.random.PRNGKey(0))
  optimizer = unroll.executor_optimizer(config, HandSet(), "adam", {"learning_rate": 1e-2})
  problem = unroll.Problem(family, static, optimizer, 4, 2)
  data = family.datasets(static)

  @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
  def run(weights, key, train, valid):
    task, particle = unroll.init_task(problem, key, 0, train)
    plan = unroll.plan_segment(problem, task, train, valid, 4)
    return task, particle, plan, *unroll.run_segment(problem, weights, particle, task, plan)

  task, particle, plan, after, seg = run(weights, jax.random.PRNGKey(2), data.train,
                                         data.valid)
  assert np.all(np.isfinite(seg.loss)) and bool(seg.finite)

  deployed = ExecutorOptimizer(weights, config, "adam", {"learning_rate": 1e-2}).as_optax()
  t = problem.task(task.dynamic)

  @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
  def deployed_step(params, state, batch, key):
    updates, state = deployed.update(jax.grad(t.loss)(params, key, batch), state, params)
    return jax.tree.map(jnp.add, params, updates), state

  params, state = particle.params, deployed.init(particle.params)
  for i in range(4):
    params, state = deployed_step(params, state, jax.tree.map(lambda x: x[i], plan.batches),
                                  plan.loss_keys[i])
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(after.params)):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-7)
