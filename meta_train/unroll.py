"""Truncated inner unrolls of a population of tasks, each on its own clock.

Meta-training runs a learned optimizer on a *population* of P tasks that share
one static structure (one compiled program, see `tasks.families`), vmapped,
for a *segment* of T inner steps at a time: the body of a `lax.scan` over
batches stacked as [T, batch, ...].

Episodes and clocks. A task trains one initialization for an *episode* of
H = truncation_length * num_truncations steps, then resets: a new dynamic
config (`family.sample_dynamic`), new initial parameters and a zero optimizer
state. Each task counts the steps of its current episode, its clock
`step` in [0, H]. A step taken at clock H first resets the task, so in a
segment that starts at clock s the steps

  i >= H - s   (0-based within the segment)

belong to a new episode; we call them *fresh*. T <= H, so a segment holds at
most one reset. Populations start desynchronized: task k starts at clock
offset_k ~ U{0, ..., H - 1} with fresh parameters (its first episode is that
much shorter), so resets are spread over outer steps and every outer step sees
tasks in every phase of training.

Objective. Step i records the training loss l_i of the parameters it
differentiates (before its update) and the normalized loss

  n_i = min(l_i / l_0, c)                       (loss_scale "linear", "log_mean"), or
  n_i = log max(min(l_i / l_0, c), LOG_FLOOR)    (loss_scale "log"),

non-finite l_i reading as c, with c = `max_normalized_loss` and l_0 the
episode's *initial loss*: the loss of its initial parameters on a training
batch drawn when the episode starts. Dividing by l_0 puts tasks of different
scales on one footing (an untrained classifier reads 1) and the clip bounds
what a diverging task contributes. On the linear scale, going from 1e-2 to
1e-5 of the initial loss is worth almost nothing, so an optimizer meta-trained
on it learns to make fast early progress and stall at a noise floor; the log
scale weighs every factor of loss reduction alike (the floor keeps a zero loss
finite). "log" averages the logs of single minibatch losses, which rewards noise
(Jensen: a run whose minibatch losses swing between 1e-6 and 1e-1 scores better
than a steady one at 1e-3, so a noisy optimizer can outscore one that ends
lower); "log_mean" takes the log of each segment's mean instead
(`estimators.objective_parts`).
At the end of a segment the final parameters are also evaluated on one
validation batch, normalized the same way.

Who shares what. A task's clock, key, dynamic config, normalizer and the
segment's data (`SegmentPlan`: batches, the fresh episode it may switch to)
are shared by every particle that trains it (the pair theta + eps, theta - eps
of antithetic PES); only parameters and optimizer state are per particle
(`Particle`). Functions here handle one task or one particle; estimators vmap
them over the population and the particles.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Hashable, Mapping, NamedTuple

import jax
import jax.numpy as jnp

import tasks
from learned_opt.executor import step as step_lib
from learned_opt.executor.config import ExecutorConfig, HandSet
from learned_opt.executor.optimizer import graph_of
from meta_train import imitation

PyTree = Any
LOSS_SCALES = ("linear", "log", "log_mean")
LOG_FLOOR = 1e-6   # the log-scale objective counts losses below 1e-6 l_0 as 1e-6 l_0


class LearnedOptimizer(NamedTuple):
  """A pure optimizer whose behaviour depends on meta-parameters theta.

  Attributes:
    init: params -> optimizer state.
    step: (theta, grads, state, params, value) -> (updates, new state); params +=
      updates; value is the loss at params (read by a learned controller).
  """
  init: Callable[[PyTree], PyTree]
  step: Callable[..., tuple[PyTree, PyTree]]


def executor_optimizer(config: ExecutorConfig, hand_set: HandSet, algorithm: str,
                       kwargs: Mapping[str, Any], form: str = "fused") -> LearnedOptimizer:
  """The executor (architecture `config`, hand-set record `hand_set`) conditioned on
  one rule; theta is its haiku weights.

  The conditioning is the one `learned_opt.load` builds for the same rule and
  keywords, so a meta-trained checkpoint deploys exactly as it was trained.
  `form` is the executor's implementation (`step.FORMS`: the fused program
  `learned_opt.load` runs, or the plain reference used for speed comparisons).
  """
  kwargs = dict(kwargs)

  def step(weights, grads, state, params, value=None):
    cond = imitation.conditioning_for(config, algorithm, kwargs, params)
    out = step_lib.executor_step(weights, config, hand_set, graph_of(params), cond.rule_id,
                                 cond.hyper_features, cond.learning_rate,
                                 cond.tensor_features, grads, state, params, form,
                                 value=value)
    return out.updates, out.state

  return LearnedOptimizer(lambda params: step_lib.init_state(params, config, hand_set), step)


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
  """What a population shares: task structure, learned optimizer, clock lengths.

  Attributes:
    family: the task family (host object; `task(config)` works under jit/vmap).
    static: the population's static structure (`family.sample_static`).
    optimizer: the learned optimizer being meta-trained.
    truncation_length: T, inner steps per segment (PES/TBPTT truncation).
    num_truncations: episodes last H = T * num_truncations steps.
    max_normalized_loss: c, the clip of the normalized loss.
    loss_scale: "linear" or "log" (see the module docstring).
  """
  family: tasks.TaskFamily
  static: Hashable
  optimizer: LearnedOptimizer
  truncation_length: int
  num_truncations: int
  max_normalized_loss: float = 2.0
  loss_scale: str = "linear"

  def __post_init__(self):
    if self.loss_scale not in LOSS_SCALES:
      raise ValueError(f"Unknown loss_scale {self.loss_scale!r}; use one of {LOSS_SCALES}.")

  @property
  def horizon(self) -> int:
    return self.truncation_length * self.num_truncations

  def task(self, dynamic: Mapping[str, jax.Array]) -> tasks.Task:
    return self.family.task(tasks.TaskConfig(self.static, dynamic))


class Task(NamedTuple):
  """One task's clock and episode, shared by its particles."""
  step: jax.Array       # int32 (): steps taken in the current episode, in [0, H]
  key: jax.Array        # uint32 (2,): the task's key, split once per segment
  dynamic: PyTree       # the episode's dynamic config
  init_loss: jax.Array  # float32 (): l_0, the episode's normalizer


class Particle(NamedTuple):
  """One particle: inner parameters and learned-optimizer state."""
  params: PyTree
  opt_state: PyTree


class Episode(NamedTuple):
  """A fresh start: dynamic config, initial parameters and their initial loss."""
  dynamic: PyTree
  params: PyTree
  init_loss: jax.Array


class SegmentPlan(NamedTuple):
  """A segment's inputs for one task, identical for all of its particles."""
  batches: PyTree        # [T, batch, ...] training batches
  loss_keys: jax.Array   # [T, 2] keys passed to the loss
  valid_batch: PyTree    # one validation batch, for the final parameters
  valid_key: jax.Array   # the key passed to the validation loss
  reset_at: jax.Array    # int32 (): H - s; steps i >= reset_at are fresh
  episode: Episode       # the episode the task switches to at step reset_at
  next_task: Task        # the task after the segment
  key: jax.Array         # a spare key for the estimator (perturbations)


class Segment(NamedTuple):
  """What one particle recorded over a segment."""
  loss: jax.Array        # [T] raw training losses
  normalized: jax.Array  # [T] n_i
  fresh: jax.Array       # [T] bool: the step belongs to an episode started in this segment
  valid: jax.Array       # () normalized validation loss of the final parameters
  finite: jax.Array      # () bool: final parameters and last loss are finite


def normalize(loss: jax.Array, init_loss: jax.Array, clip: float,
              scale: str = "linear") -> jax.Array:
  """min(l / l_0, c), with c for non-finite losses; its log (floored) on the "log" scale."""
  ratio = loss / jnp.maximum(init_loss, 1e-8)
  ratio = jnp.where(jnp.isfinite(ratio), jnp.minimum(ratio, clip), clip)
  return floored_log(ratio) if scale == "log" else ratio


def floored_log(x: jax.Array) -> jax.Array:
  """log max(x, LOG_FLOOR): the log scale's value of a normalized loss."""
  return jnp.log(jnp.maximum(x, LOG_FLOOR))


def new_episode(problem: Problem, key: jax.Array, train: Any) -> Episode:
  """Draws a dynamic config and initial parameters, and measures l_0."""
  k_dynamic, k_init, k_batch, k_loss = jax.random.split(key, 4)
  dynamic = problem.family.sample_dynamic(k_dynamic, problem.static)
  task = problem.task(dynamic)
  params = task.init(k_init)
  init_loss = task.loss(params, k_loss, train.sample(k_batch))
  return Episode(dynamic, params, init_loss)


def start(problem: Problem, episode: Episode) -> Particle:
  """A particle at an episode's start: its initial parameters, a fresh optimizer state."""
  return Particle(episode.params, problem.optimizer.init(episode.params))


def init_task(problem: Problem, key: jax.Array, offset: jax.Array, train: Any
              ) -> tuple[Task, Particle]:
  """One task at clock `offset`, with fresh parameters (an unbatched particle)."""
  k_task, k_episode = jax.random.split(key)
  episode = new_episode(problem, k_episode, train)
  task = Task(jnp.asarray(offset, jnp.int32), k_task, episode.dynamic,
              episode.init_loss)
  return task, start(problem, episode)


def init_population(problem: Problem, key: jax.Array, size: int, train: Any,
                    staggered: bool = True) -> tuple[Task, Particle]:
  """`size` tasks with clock offsets ~ U{0..H-1} (or all 0), stacked on axis 0."""
  k_offsets, k_tasks = jax.random.split(key)
  if staggered:
    offsets = jax.random.randint(k_offsets, (size,), 0, problem.horizon)
  else:
    offsets = jnp.zeros((size,), jnp.int32)
  return jax.vmap(lambda k, o: init_task(problem, k, o, train))(
      jax.random.split(k_tasks, size), offsets)


def _select(flag: jax.Array, a: PyTree, b: PyTree) -> PyTree:
  return jax.tree.map(lambda x, y: jnp.where(flag, x, y), a, b)


def plan_segment(problem: Problem, task: Task, train: Any, valid: Any,
                 length: int) -> SegmentPlan:
  """Draws one task's segment of `length` steps and advances its clock.

  With s = task.step and e = s + length: the reset (if any) happens at step
  H - s, and the clock after the segment is e, or e - H when e > H.
  """
  horizon = problem.horizon
  if not 0 < length <= horizon:
    raise ValueError(f"segment length {length} must be in [1, horizon={horizon}]: a "
                     "segment may hold at most one reset.")
  key, k_data, k_loss, k_valid, k_valid_loss, k_episode, k_spare = jax.random.split(
      task.key, 7)
  episode = new_episode(problem, k_episode, train)
  end = task.step + length
  wraps = end > horizon
  next_task = Task(step=jnp.where(wraps, end - horizon, end).astype(jnp.int32), key=key,
                   dynamic=_select(wraps, episode.dynamic, task.dynamic),
                   init_loss=jnp.where(wraps, episode.init_loss, task.init_loss))
  return SegmentPlan(
      batches=train.stacked(k_data, length),
      loss_keys=jax.random.split(k_loss, length),
      valid_batch=valid.sample(k_valid), valid_key=k_valid_loss,
      reset_at=(horizon - task.step).astype(jnp.int32),
      episode=episode, next_task=next_task, key=k_spare)


def run_segment(problem: Problem, theta: PyTree, particle: Particle, task: Task,
                plan: SegmentPlan) -> tuple[Particle, Segment]:
  """Trains one particle through a planned segment (lax.scan over its batches)."""
  length = plan.loss_keys.shape[0]
  index = jnp.arange(length)
  fresh = index >= plan.reset_at
  first = index == plan.reset_at
  restart = start(problem, plan.episode)
  clip = problem.max_normalized_loss

  def body(p: Particle, xs):
    batch, loss_key, is_fresh, is_first = xs
    p = _select(is_first, restart, p)
    dynamic = _select(is_fresh, plan.episode.dynamic, task.dynamic)
    init_loss = jnp.where(is_fresh, plan.episode.init_loss, task.init_loss)
    loss, grads = jax.value_and_grad(problem.task(dynamic).loss)(p.params, loss_key, batch)
    updates, opt_state = problem.optimizer.step(theta, grads, p.opt_state, p.params, loss)
    params = jax.tree.map(lambda x, u: x + u.astype(x.dtype), p.params, updates)
    normalized = normalize(loss, init_loss, clip, problem.loss_scale)
    return Particle(params, opt_state), (loss, normalized)

  # Rematerialized: backprop (TBPTT) keeps only the carry per step, not every
  # intermediate of the executor (memory, and a much smaller compiled program).
  particle, (losses, normalized) = jax.lax.scan(
      jax.checkpoint(body, prevent_cse=False), particle,
      (plan.batches, plan.loss_keys, fresh, first))
  after = plan.next_task
  valid_loss = problem.task(after.dynamic).loss(particle.params, plan.valid_key,
                                                plan.valid_batch)
  finite = jnp.isfinite(losses[-1]) & jnp.all(jnp.stack(
      [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(particle.params)]))
  return particle, Segment(losses, normalized, fresh,
                           normalize(valid_loss, after.init_loss, clip, problem.loss_scale),
                           finite)


def end_episode(problem: Problem, task: Task, ended: jax.Array) -> Task:
  """Sets the clock of tasks flagged `ended` to H: they reset at their next step."""
  return task._replace(step=jnp.where(ended, problem.horizon, task.step).astype(jnp.int32))
