"""Meta-gradient estimators on a sharded task population: PES, TBPTT and ES.

One interface, `Estimator`:

  state = estimator.init(key, theta, train)                # population, sharded
  grad, state, metrics = estimator.estimate(theta, state, train, valid)

`estimate` is a pure, jittable function; it advances every task of the
population by one segment (see `meta_train.unroll`) and returns an estimate of
the gradient of the meta-objective with respect to the learned optimizer's
meta-parameters theta, averaged over the population.

Meta-objectives. For one particle and one segment of T steps, with n_i the
normalized training losses and v the normalized validation loss of the final
parameters (`unroll`: normalized by the episode's initial loss, clipped):

  'train':  J = (1/T) sum_i n_i     mean normalized training loss over the unroll
  'valid':  J = v                   final normalized validation loss

On the "log_mean" loss scale (`unroll.Problem.loss_scale`) each part of the
segment contributes (k/T) log(mean of its k values of n_i) (and 'valid' log v):
the log of a smoothed loss, not the mean of logs of minibatch losses. ES reads its
whole-episode segment in windows of the truncation length, each contributing so, and
so estimates the objective PES does.

J is split at the segment's reset (if any) into the part earned by the old
episode and the part earned by the new one, J = J_old + J_new.

Estimators.

* 'pes' (antithetic Persistent Evolution Strategies). Each task draws
  eps ~ N(0, sigma^2 I) per segment and trains two particles with theta + eps
  and theta - eps from their own (persistent) states. With A the sum of the
  perturbations its current episode has seen before this segment,

    g = [(J+_old - J-_old) (A + eps) + (J+_new - J-_new) eps] / (2 sigma^2),
    A <- eps if the task reset inside the segment, else A + eps.

  The old episode's losses depend on every perturbation since its start, the
  new one's only on eps, so g is unbiased for the gradient of the Gaussian-
  smoothed sum of objectives over all truncations (no truncation bias).
* 'tbptt' (truncated backprop through the unroll). One particle per task;
  g = dJ/dtheta through the segment's scan, the carried state held fixed:
  low variance, biased toward short horizons.
* 'es' (antithetic ES over whole episodes). Segments are whole episodes
  (T = H, no staggering), so A is always 0 and g = (J+ - J-) eps / (2 sigma^2):
  PES with a single truncation.

A task whose parameters go non-finite, or whose gradient contribution is
non-finite, ends its episode (it resets at its next step, A <- 0); its
contribution still enters g, so the caller sees a non-finite meta-gradient
(and skips it) instead of a silently smaller population.

Devices. The population's leading axis is sharded over the mesh axis 'tasks'
(`shard_map`): each device runs its tasks vmapped; theta, the data splits and
the gradient are replicated (one psum). The population size must be a multiple
of the number of devices. Each task draws its randomness (data, resets,
perturbations) from its own key, so results do not depend on the device count.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from meta_train import unroll

PyTree = Any
AXIS = "tasks"
KINDS = ("pes", "tbptt", "es")
OBJECTIVES = ("train", "valid")


class EstimatorState(NamedTuple):
  """A population and what the estimator keeps per task (leading axis: task)."""
  tasks: unroll.Task            # [P]
  particles: unroll.Particle    # [P, K]: K = 2 (antithetic) or 1 (tbptt)
  accumulators: PyTree          # [P, *theta]: A per task (pes, es); None for tbptt


class Estimator(NamedTuple):
  """init(key, theta, train) -> state; estimate(theta, state, train, valid)."""
  init: Callable[..., EstimatorState]
  estimate: Callable[..., tuple[PyTree, EstimatorState, dict[str, jax.Array]]]
  mesh: Mesh
  state_sharding: NamedSharding   # the population's: leading axis over 'tasks'
  inner_steps: int   # inner steps per estimate: tasks * particles * segment length


def default_mesh() -> Mesh:
  """All devices (of all processes) on one 'tasks' axis."""
  return Mesh(np.asarray(jax.devices()), (AXIS,))


def objective_parts(objective: str, segment: unroll.Segment, scale: str = "linear",
                    window: int | None = None) -> tuple[jax.Array, jax.Array]:
  """(J_old, J_new): the objective earned by the old and by the new episode.

  `window` (log_mean only): the segment's T steps are read as T / window windows,
  each contributing (k/T) log(mean of its k values) per part, so a whole-episode
  ES segment earns the objective that PES earns over truncations of `window`
  steps, instead of the log of one mean over the episode, which its first,
  largest losses dominate. None: one window (the segment).
  """
  if objective == "train":
    total = segment.normalized.shape[-1]
    window = window or total
    if total % window:
      raise ValueError(f"A segment of {total} steps does not split into windows of {window}.")
    windowed = lambda x: x.reshape(x.shape[:-1] + (total // window, window))  # noqa: E731
    normalized = windowed(segment.normalized)

    def part(mask):
      earned = jnp.sum(jnp.where(mask, normalized, 0.0), -1)
      if scale != "log_mean":
        return jnp.sum(earned, -1) / total
      count = jnp.sum(mask, -1)
      return jnp.sum(count / total * unroll.floored_log(earned / jnp.maximum(count, 1)), -1)

    fresh = windowed(segment.fresh)
    return part(~fresh), part(fresh)
  if objective == "valid":
    reset = segment.fresh[..., -1]
    valid = unroll.floored_log(segment.valid) if scale == "log_mean" else segment.valid
    return jnp.where(reset, 0.0, valid), jnp.where(reset, valid, 0.0)
  raise ValueError(f"Unknown meta-objective {objective!r}; use one of {OBJECTIVES}.")


def perturbation(key: jax.Array, theta: PyTree, sigma: float,
                 trainable: PyTree | None = None) -> PyTree:
  """eps ~ N(0, sigma^2 I), shaped like theta (one draw for all leaves: one RNG call).

  `trainable`: per leaf of theta, 1.0 or 0.0; leaves at 0.0 are not perturbed, so
  the estimate of their gradient is exactly 0 and the other leaves' estimates do
  not carry their noise.
  """
  flat, unravel = jax.flatten_util.ravel_pytree(theta)
  eps = unravel(sigma * jax.random.normal(key, flat.shape, flat.dtype))
  return eps if trainable is None else jax.tree.map(lambda e, m: e * m, eps, trainable)


def _all_finite(tree: PyTree) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


class _TaskResult(NamedTuple):
  contribution: PyTree   # this task's gradient estimate (or its J for tbptt)
  task: unroll.Task
  particles: unroll.Particle
  accumulator: PyTree
  objective: jax.Array   # J averaged over the task's particles
  valid: jax.Array
  ok: jax.Array


def antithetic_task(problem: unroll.Problem, objective: str, sigma: float, length: int,
                    theta: PyTree, task: unroll.Task, particles: unroll.Particle,
                    accumulator: PyTree, train: Any, valid: Any,
                    trainable: PyTree | None = None) -> _TaskResult:
  """One task's PES (or ES) segment and gradient estimate (see `perturbation`)."""
  plan = unroll.plan_segment(problem, task, train, valid, length)
  eps = perturbation(plan.key, theta, sigma, trainable)
  thetas = jax.tree.map(lambda t, e: jnp.stack([t + e, t - e]), theta, eps)
  particles, segments = jax.vmap(unroll.run_segment, in_axes=(None, 0, 0, None, None))(
      problem, thetas, particles, task, plan)
  old, new = objective_parts(objective, segments, problem.loss_scale,
                             problem.truncation_length)
  d_old, d_new = (old[0] - old[1]) / (2 * sigma**2), (new[0] - new[1]) / (2 * sigma**2)
  has_old = plan.reset_at > 0
  reset = plan.reset_at < length
  contribution = jax.tree.map(
      lambda a, e: jnp.where(has_old, d_old * (a + e), 0.0) + d_new * e, accumulator, eps)
  accumulator = jax.tree.map(lambda a, e: jnp.where(reset, e, a + e), accumulator, eps)
  ok = _all_finite(contribution) & jnp.all(segments.finite)
  accumulator = jax.tree.map(lambda a: jnp.where(ok, a, 0.0), accumulator)
  return _TaskResult(contribution, unroll.end_episode(problem, plan.next_task, ~ok),
                     particles, accumulator, jnp.mean(old + new), jnp.mean(segments.valid),
                     ok)


def tbptt_task(problem: unroll.Problem, objective: str, length: int, theta: PyTree,
               task: unroll.Task, particles: unroll.Particle, train: Any, valid: Any
               ) -> _TaskResult:
  """One task's segment with J differentiable in theta (the start state is fixed)."""
  plan = unroll.plan_segment(problem, task, train, valid, length)
  particles = jax.lax.stop_gradient(particles)
  particles, segments = jax.vmap(unroll.run_segment, in_axes=(None, None, 0, None, None))(
      problem, theta, particles, task, plan)
  old, new = objective_parts(objective, segments, problem.loss_scale)
  ok = jnp.all(segments.finite)
  j = jnp.mean(old + new)
  return _TaskResult(j, unroll.end_episode(problem, plan.next_task, ~ok), particles, None,
                     j, jnp.mean(segments.valid), ok)


def make(kind: str, problem: unroll.Problem, population: int, objective: str = "train",
         sigma: float = 0.01, mesh: Mesh | None = None,
         compiler_options: dict[str, Any] | None = None,
         trainable: PyTree | None = None) -> Estimator:
  """Builds an estimator of `kind` ('pes', 'tbptt', 'es') for a population.

  Args:
    kind: the gradient estimator.
    problem: task structure, learned optimizer and clock lengths.
    population: number of tasks P (a multiple of the mesh's device count).
    objective: 'train' (mean normalized training loss over the unroll) or
      'valid' (final normalized validation loss).
    sigma: perturbation standard deviation (pes, es).
    mesh: a mesh with a 'tasks' axis; default: all devices.
    compiler_options: XLA options for the jitted `init`.
    trainable: per leaf of theta, 1.0 (meta-trained) or 0.0 (held fixed: pes and
      es do not perturb it, so its estimate is 0); None: every leaf. tbptt
      differentiates every leaf; the caller masks its gradient.

  Returns:
    An `Estimator`; jit `estimate` (alone or inside a larger step).
  """
  if kind not in KINDS:
    raise ValueError(f"Unknown estimator {kind!r}; use one of {KINDS}.")
  if objective not in OBJECTIVES:
    raise ValueError(f"Unknown meta-objective {objective!r}; use one of {OBJECTIVES}.")
  mesh = mesh or default_mesh()
  devices = mesh.shape[AXIS]
  if population % devices:
    raise ValueError(f"population {population} is not a multiple of the {devices} devices "
                     f"of the mesh axis {AXIS!r}.")
  num_particles = 1 if kind == "tbptt" else 2
  length = problem.horizon if kind == "es" else problem.truncation_length

  def init(key: jax.Array, theta: PyTree, train: Any) -> EstimatorState:
    tasks, particle = unroll.init_population(problem, key, population, train,
                                             staggered=kind != "es")
    particles = jax.tree.map(
        lambda x: jnp.broadcast_to(x[:, None], (x.shape[0], num_particles) + x.shape[1:]),
        particle)
    accumulators = None if kind == "tbptt" else jax.tree.map(
        lambda t: jnp.zeros((population,) + t.shape, t.dtype), theta)
    return EstimatorState(tasks, particles, accumulators)

  state_sharding = NamedSharding(mesh, PartitionSpec(AXIS))
  init_jit = jax.jit(init, out_shardings=state_sharding, compiler_options=compiler_options)

  def local(theta, state: EstimatorState, train, valid):
    if kind == "tbptt":
      def total(theta):
        out = jax.vmap(tbptt_task, in_axes=(None, None, None, None, 0, 0, None, None))(
            problem, objective, length, theta, state.tasks, state.particles, train, valid)
        return jnp.sum(out.contribution), out
      grad_sum, out = jax.grad(total, has_aux=True)(theta)
    else:
      out = jax.vmap(antithetic_task,
                     in_axes=(None, None, None, None, None, 0, 0, 0, None, None, None))(
          problem, objective, sigma, length, theta, state.tasks, state.particles,
          state.accumulators, train, valid, trainable)
      grad_sum = jax.tree.map(lambda c: jnp.sum(c, 0), out.contribution)
    grad = jax.tree.map(lambda g: jax.lax.psum(g, AXIS) / population, grad_sum)
    metrics = {
        "meta_loss": jax.lax.psum(jnp.sum(out.objective), AXIS) / population,
        "valid_loss": jax.lax.psum(jnp.sum(out.valid), AXIS) / population,
        "ended": jax.lax.psum(jnp.sum(~out.ok), AXIS),
    }
    return grad, EstimatorState(out.task, out.particles, out.accumulator), metrics

  spec = PartitionSpec(AXIS)
  estimate = jax.shard_map(local, mesh=mesh,
                           in_specs=(PartitionSpec(), spec, PartitionSpec(), PartitionSpec()),
                           out_specs=(PartitionSpec(), spec, PartitionSpec()),
                           check_vma=False)
  return Estimator(init_jit, estimate, mesh, state_sharding,
                   population * num_particles * length)
