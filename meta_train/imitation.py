"""Imitation (the NAR phase): train the executor on the rules' step-by-step traces.

One imitation example is a (task, rule, hyperparameters) triple. The rule trains
the task for `unroll` steps; we record every step's parameters, gradients, the
rule's update and its hints. The executor then runs along that trajectory with
its own state fed back from step to step (free-running state, as at deployment,
from the same zero start), and is trained on

  L = mean_t mean_tensors [1 - cos(u_exec, u_rule)
                           + (log |u_exec| - log |u_rule|)^2]          (update loss)
    + hint_weight * relative squared error of the moment hints       (hint loss)
    + preconditioner_hint_weight * relative squared error of the RMS
      a factoring rule divides by                            (preconditioner hint)
    + denominator_hint_weight * the spread of log(executor's denominator / that RMS)
      over each tensor (with denominator_hint_scale: its mean square)  (denominator hint)
    + primitive_hint_weight * -log(share of the denominator the rule's own term
      carries, DENOMINATOR_PRIMITIVES)                            (primitive hint)
    + clip_hint_weight * (log RMS(d) above its clipping knot - log RMS(u))^2
      per tensor, u = g / the RMS a factoring rule divides by          (clip hint)
    + ns_hint_weight * mean_k log(1 + relative squared error of the k-th round's
      iterate X_k) on the tensors a rule with rounds runs them on (Muon's
      Newton-Schulz iterates, 'ns_iterate_k')                        (round hints)
    + round_offset_weight * mean square of the learned offsets of the round
      coefficients from the rule's own                       (round offset penalty)

Direction and log-magnitude are separated on purpose: a relative squared error
has a trap at u_exec = 0 (its gradient with respect to the log step size
vanishes there), while the log-magnitude term pulls equally hard from either side.

Examples of one task architecture are stacked and the loss is vmapped over them,
so every rule and every hyperparameter setting shares one compiled step.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from learned_opt import algorithms
from learned_opt.executor import conditioning, decode, encode, hops, network, step as step_lib
from learned_opt.executor.config import ExecutorConfig, HandSet
from learned_opt.executor.optimizer import graph_of, hyper_features
from learned_opt.graph import EDGES

PyTree = Any

# Which rule hints supervise the executor's moment predictions.
HINT_TARGETS = {
    name: {"first_moment": ("mu_hat", None), "second_moment_rms": ("nu_hat", "sqrt")}
    for name in ("adam", "adamw", "nadam", "lamb", "adabelief")
}
# Which rule hint is the RMS the rule divides the gradient by, as 1 / hint (adafactor's
# `scale`: its factored second moment on the matrices it factors, the full one elsewhere).
# It supervises `preconditioner_prediction`, whose factored part reads only the node
# states: what they remember, not how the tensor net blends them.
PRECONDITIONER_HINTS = {"adafactor": "scale"}
_STATIC_TYPES = (bool, int, type(None), str)


class Trajectory(NamedTuple):
  """A rule's run on one task, stacked over time (leading axis = step)."""
  params: PyTree         # parameters before each step
  grads: PyTree
  updates: PyTree        # the rule's updates
  first_moment: PyTree   # hint targets (zeros where the rule has none)
  second_moment_rms: PyTree
  hint_mask: jax.Array   # () 1.0 when the rule provides the hint targets
  loss: jax.Array        # (T,) training loss along the way
  preconditioner_rms: PyTree   # PRECONDITIONER_HINTS' target (zeros where the rule has none)
  preconditioner_mask: jax.Array   # () 1.0 when the rule provides it
  # The rule's round iterates X_0 .. X_K ('ns_iterate_k' hints; () for a rule without
  # rounds), padded with zeros to a batch's most rounds by `pad_rounds`.
  ns_iterates: tuple[PyTree, ...] = ()


class Conditioning(NamedTuple):
  rule_id: jax.Array       # () int32
  hyper_features: jax.Array
  learning_rate: jax.Array  # () float32
  tensor_features: jax.Array
  # With the 'multi_hop' processor: the rounds' static plan (a batch's union,
  # hops.union), and this rule's own plan and round features (hops.plan_features,
  # hops.round_features: zeros on the tensors and rounds the rule does not run).
  plan: hops.Plan | None = None
  plan_features: jax.Array | None = None
  round_features: jax.Array | None = None


def split_kwargs(kwargs: Mapping[str, Any]) -> tuple[tuple[tuple[str, Any], ...], dict]:
  """Static kwargs (ints, bools, None: they change shapes or code paths) vs. floats."""
  static = tuple(sorted((k, v) for k, v in kwargs.items()
                        if isinstance(v, _STATIC_TYPES) and not isinstance(v, float)))
  dynamic = {k: jnp.asarray(v, jnp.float32) for k, v in kwargs.items()
             if not (isinstance(v, _STATIC_TYPES) and not isinstance(v, float))}
  return static, dynamic


@functools.partial(jax.jit, static_argnames=("name", "static", "loss_fn"))
def rule_trajectory(name: str, static: tuple, dynamic: dict, loss_fn: Any,
                    params: PyTree, batches: PyTree, key: jax.Array) -> Trajectory:
  """Runs rule `name` on the task for as many steps as `batches` has (inside scan)."""
  rule = algorithms.get(name, **dict(static), **dynamic)
  targets = HINT_TARGETS.get(name)
  preconditioner_hint = PRECONDITIONER_HINTS.get(name)

  def body(carry, inputs):
    params, state = carry
    batch, step_key = inputs
    loss, grads = jax.value_and_grad(loss_fn)(params, step_key, batch)
    updates, state, trace = rule.step(grads, state, params)
    zeros = jax.tree.map(jnp.zeros_like, grads)
    first = second = zeros
    if targets:
      first = trace[targets["first_moment"][0]].value
      second = jax.tree.map(jnp.sqrt, trace[targets["second_moment_rms"][0]].value)
    preconditioner = zeros
    if preconditioner_hint:
      preconditioner = jax.tree.map(lambda x: 1.0 / x, trace[preconditioner_hint].value)
    iterates = tuple(trace[f"ns_iterate_{k}"].value for k in range(rounds + 1)) if rounds else ()
    new_params = jax.tree.map(lambda p, u: p + u, params, updates)
    return (new_params, state), (params, grads, updates, first, second, preconditioner, loss,
                                 iterates)

  plan = rule.message_passing(params)
  rounds = 0 if plan is None else len(plan.coeff_rows)
  steps = jax.tree.leaves(batches)[0].shape[0]
  keys = jax.random.split(key, steps)
  _, (ps, gs, us, firsts, seconds, preconditioners, losses, iterates) = jax.lax.scan(
      body, (params, rule.init(params)), (batches, keys))
  mask = jnp.asarray(1.0 if targets else 0.0)
  preconditioner_mask = jnp.asarray(1.0 if preconditioner_hint else 0.0)
  return Trajectory(ps, gs, us, firsts, seconds, mask, losses, preconditioners,
                    preconditioner_mask, iterates)


def pad_rounds(traj: Trajectory, cond: Conditioning, plan: hops.Plan | None
               ) -> tuple[Trajectory, Conditioning]:
  """`traj` and `cond` for a batch whose rounds follow `plan` (hops.union of the
  batch's): the iterates padded with zeros and the round features with inactive
  rounds up to its rounds, and `plan` as the static plan."""
  if cond.plan_features is None:
    return traj, cond
  rounds = 0 if plan is None else plan.rounds
  zeros = jax.tree.map(jnp.zeros_like, traj.grads)
  iterates = tuple(traj.ns_iterates) + (zeros,) * (rounds + 1 - len(traj.ns_iterates))
  own = cond.round_features.shape[0]
  inactive = hops.round_features(None, rounds - own)
  return (traj._replace(ns_iterates=iterates if rounds else ()),
          cond._replace(plan=plan, round_features=jnp.concatenate(
              [cond.round_features, inactive], axis=0)))


def conditioning_for(config: ExecutorConfig, name: str, kwargs: Mapping[str, Any],
                     params: PyTree) -> Conditioning:
  """The executor's conditioning for rule `name` with `kwargs` on `params`' tree (with
  the 'multi_hop' processor, the rule's own plan; see `pad_rounds` for a batch)."""
  graph = graph_of(params)
  cond = Conditioning(
      rule_id=jnp.asarray(config.rules.index(name), jnp.int32),
      hyper_features=hyper_features(config, name, kwargs),
      learning_rate=jnp.asarray(kwargs["learning_rate"], jnp.float32),
      tensor_features=encode.tensor_features(graph, kwargs.get("min_dim_size_to_factor")))
  if not network.multi_hop(config):
    return cond
  plan = hops.plan_for(algorithms.get(name, **kwargs), params)
  return cond._replace(plan=plan, plan_features=hops.plan_features(plan, graph),
                       round_features=hops.round_features(plan))


def _relative_error(pred: PyTree, target: PyTree) -> jax.Array:
  """Mean over tensors of |pred - target|^2 / (|target|^2 + tiny)."""
  errs = [jnp.sum(jnp.square(p.astype(jnp.float32) - t.astype(jnp.float32)))
          / (jnp.sum(jnp.square(t.astype(jnp.float32))) + 1e-30)
          for p, t in zip(jax.tree.leaves(pred), jax.tree.leaves(target))]
  return jnp.mean(jnp.stack(errs))


def preconditioner_prediction(config: ExecutorConfig, graph: Any,
                              out: step_lib.StepOutput, tensor_feats: jax.Array) -> PyTree:
  """The RMS a factoring rule divides by, as the executor's new state has it.

  On the tensors the rule factors (`network.factored_by_rule`) and that have row and
  column states (the 'row_column' processor),
  sqrt(r_i c_j / mean r) of the debiased row and column states; elsewhere the
  debiased second moment.
  """
  factored = network.factored_by_rule(tensor_feats)
  inv_z3 = 1.0 / out.state.z[2]
  node_states = config.processor == "row_column"
  rows, cols = ((jax.tree.leaves(out.state.nodes.rows), jax.tree.leaves(out.state.nodes.cols))
                if node_states else (None, None))
  second = graph.leaves(out.predictions["second_moment_rms"])
  preds = []
  for idx, info in enumerate(graph.tensors):
    v = second[idx]
    if info.role == EDGES and node_states:
      r, c = rows[idx] * inv_z3, cols[idx] * inv_z3
      estimate = jnp.sqrt(r[..., :, None] * c[..., None, :]
                          / jnp.mean(r, axis=-1)[..., None, None])
      v = jnp.where(factored[idx], estimate, v)
    preds.append(v)
  return graph.unflatten(preds)


def _executor_step(weights, config, hand_set, graph, cond: Conditioning, grads, state, params,
                   loss) -> step_lib.StepOutput:
  """The executor's step along a rule's trajectory, given the trajectory's loss at
  `params` (as a training loop passes `value=`; read by a learned controller)."""
  hop_inputs = (None if cond.plan_features is None
                else (cond.plan_features, cond.round_features))
  return step_lib.executor_step(weights, config, hand_set, graph, cond.rule_id,
                                cond.hyper_features,
                                cond.learning_rate, cond.tensor_features, grads, state, params,
                                plan=cond.plan, hop_inputs=hop_inputs, value=loss)


def round_hint_errors(predictions: dict[str, PyTree], iterates: tuple[PyTree, ...],
                      runs: jax.Array, graph: Any) -> jax.Array:
  """(K + 1,) relative squared error of each round's iterate X_k over the tensors the
  rule runs the rounds on (`runs`, per tensor 0/1): sum |X_k - X_k*|^2 / sum |X_k*|^2."""
  errors = []
  for k, target in enumerate(iterates):
    pred = graph.leaves(predictions[f"ns_iterate_{k}"])
    num = sum(runs[i] * jnp.sum(jnp.square(p - t))
              for i, (p, t) in enumerate(zip(pred, graph.leaves(target))))
    den = sum(runs[i] * jnp.sum(jnp.square(t)) for i, t in enumerate(graph.leaves(target)))
    errors.append(num / (den + 1e-30))
  return jnp.stack(errors)


def trajectory_loss(weights: Any, config: ExecutorConfig, hand_set: HandSet, traj: Trajectory,
                    cond: Conditioning, hint_weight: float, warmup: int = 0,
                    magnitude_weight: float = 1.0, warmup_gradient: bool = False,
                    preconditioner_hint_weight: float = 0.0,
                    denominator_hint_weight: float = 0.0,
                    denominator_hint_scale: bool = False,
                    clip_hint_weight: float = 0.0,
                    ns_hint_weight: float = 0.0) -> tuple[jax.Array, dict]:
  """Free-running imitation loss of the executor along one trajectory.

  The first `warmup` steps run the executor (its own state fed back, as at
  deployment) without loss, so the loss also covers late steps of a run (later
  clocks, warmed-up state). By default no gradient flows through them either.
  With `warmup_gradient` the loss backpropagates through the warmed-up state
  into the warm-up's steps (rematerialized per step, so memory holds one state
  per step): what the state remembers over a long run, a second moment's decay
  above all, is then supervised. Without it a decay's effect on the warm state
  is invisible to the loss, and a gain that compensates for a wrong decay over
  the loss window fits as well: one long second-moment memory can then imitate
  every Adam b2 over the window, and its updates fall behind Adam's in long runs.

  `preconditioner_hint_weight` (0: off) weighs the preconditioner hint
  (PRECONDITIONER_HINTS) into the loss, on the rules that provide it;
  `denominator_hint_weight` (0: off) weighs `denominator_shape_error` of the
  executor's denominator against the same hint (with `denominator_hint_scale`, its
  scale too: the denominator equal to that RMS, not only proportional).
  `clip_hint_weight` (0: off) weighs `clip_error`: where the executor's clipping knot
  sits against its direction (HandSet.rule_clip_knots), on the same rules.
  Without it, a knot set from the gain's bias has a flat way out: a direction scaled up
  far enough is clipped at every step, its update normalized to RMS 1 whatever the rule
  says, and imitation can settle there.
  `ns_hint_weight` (0: off) weighs `round_hint_errors` (every round's iterate) on the
  rules with rounds; the metrics report each round's error ('ns_iterate_k_rel_err')
  whenever the batch runs rounds.
  """
  first_params = jax.tree.map(lambda x: x[0], traj.params)
  graph = graph_of(first_params)
  state = step_lib.init_state(first_params, config, hand_set)
  if warmup:
    warm_weights = weights if warmup_gradient else jax.lax.stop_gradient(weights)

    def warm_body(state, inputs):
      params, grads, loss = inputs
      return _executor_step(warm_weights, config, hand_set, graph, cond, grads, state,
                            params, loss).state, None

    head = jax.tree.map(lambda x: x[:warmup], (traj.params, traj.grads, traj.loss))
    if warmup_gradient:
      state = jax.lax.scan(jax.checkpoint(warm_body), state, head)[0]
    else:
      state = jax.lax.stop_gradient(jax.lax.scan(warm_body, state, head)[0])
    traj = traj._replace(**{f: jax.tree.map(lambda x: x[warmup:], getattr(traj, f))
                            for f in ("params", "grads", "updates", "first_moment",
                                      "second_moment_rms", "loss", "preconditioner_rms",
                                      "ns_iterates")})
  runs = (cond.plan_features[:, 0] if cond.plan_features is not None
          else jnp.zeros((len(graph.tensors),)))

  def body(state, inputs):
    params, grads, target, first, second, preconditioner, iterates, loss = inputs
    out = _executor_step(weights, config, hand_set, graph, cond, grads, state, params, loss)
    round_err = (round_hint_errors(out.predictions, iterates, runs, graph) if iterates
                 else jnp.zeros((0,)))
    update_err = _relative_error(out.updates, target)
    update_loss = _direction_and_magnitude_loss(out.updates, target, magnitude_weight)
    pred_first, pred_second = (out.predictions["first_moment"],
                               out.predictions["second_moment_rms"])
    # Rules without these hints: the target is the (frozen) prediction, so no signal.
    first = _where(traj.hint_mask, first, jax.lax.stop_gradient(pred_first))
    second = _where(traj.hint_mask, second, jax.lax.stop_gradient(pred_second))
    hint_err = 0.5 * (_relative_error(pred_first, first)
                      + _relative_error(pred_second, second))
    if preconditioner_hint_weight:
      predicted = preconditioner_prediction(config, graph, out, cond.tensor_features)
      preconditioner = _where(traj.preconditioner_mask, preconditioner,
                              jax.lax.stop_gradient(predicted))
      preconditioner_err = _relative_error(predicted, preconditioner)
    else:
      preconditioner_err = jnp.zeros(())
    if denominator_hint_weight:
      denominator = out.predictions["denominator"]
      # Rules without the hint: the target is the (frozen) denominator, so no signal.
      rms = _where(traj.preconditioner_mask, preconditioner, jax.lax.stop_gradient(denominator))
      update_grads = _where(traj.preconditioner_mask, grads, jax.tree.map(jnp.ones_like, grads))
      denominator_err = denominator_shape_error(denominator, rms, update_grads,
                                                with_scale=denominator_hint_scale)
    else:
      denominator_err = jnp.zeros(())
    if clip_hint_weight:
      # Rules without the hint: a unit RMS, so the (masked-out) error stays finite.
      rms = _where(traj.preconditioner_mask, preconditioner,
                   jax.tree.map(jnp.ones_like, preconditioner))
      clip_err = clip_error(out.predictions["clip_excess"], graph.leaves(grads),
                            graph.leaves(rms))
    else:
      clip_err = jnp.zeros(())
    cosine = _cosine(out.updates, target)
    return out.state, (update_loss, update_err, hint_err, preconditioner_err, denominator_err,
                       clip_err, cosine, round_err)

  _, (update_loss, update_err, hint_err, preconditioner_err, denominator_err, clip_err,
      cosine, round_err) = jax.lax.scan(
      body, state,
      (traj.params, traj.grads, traj.updates, traj.first_moment, traj.second_moment_rms,
       traj.preconditioner_rms, traj.ns_iterates, traj.loss))
  update_loss = jnp.mean(update_loss)
  # log1p keeps rare huge errors (early, unstable steps) from dominating the batch.
  hint_loss = traj.hint_mask * jnp.mean(jnp.log1p(hint_err))
  loss = update_loss + hint_weight * hint_loss
  metrics = {"update_rel_err": jnp.mean(update_err), "hint_rel_err": jnp.mean(hint_err),
             "cosine": jnp.mean(cosine)}
  if preconditioner_hint_weight:
    loss = loss + preconditioner_hint_weight * traj.preconditioner_mask * jnp.mean(
        jnp.log1p(preconditioner_err))
    metrics["preconditioner_rel_err"] = jnp.mean(preconditioner_err)
  if denominator_hint_weight:
    loss = loss + denominator_hint_weight * traj.preconditioner_mask * jnp.mean(denominator_err)
    metrics["denominator_shape_err"] = jnp.mean(denominator_err)
  if clip_hint_weight:
    loss = loss + clip_hint_weight * traj.preconditioner_mask * jnp.mean(clip_err)
    metrics["clip_err"] = jnp.mean(clip_err)
  if traj.ns_iterates:
    has_rounds = (jnp.sum(runs) > 0).astype(jnp.float32)
    if ns_hint_weight:
      loss = loss + ns_hint_weight * has_rounds * jnp.mean(jnp.log1p(round_err))
    for k in range(round_err.shape[1]):   # NaN where the rule runs no rounds: not averaged
      metrics[f"ns_iterate_{k}_rel_err"] = jnp.where(has_rounds > 0, jnp.mean(round_err[:, k]),
                                                     jnp.nan)
  return loss, metrics


def clip_error(clip_excess: jax.Array, grads: Sequence[jax.Array],
               rms: Sequence[jax.Array]) -> jax.Array:
  """Mean over tensors (graph order) of (clip_excess - log RMS(g / rms))^2.

  `clip_excess` (per tensor) is log RMS of the executor's direction above its clipping
  knot; log RMS(g / rms) is where the rule's own update u sits against its clipping
  threshold of 1 (Adafactor: rms its factored second moment). Tensors with an all-zero
  gradient count zero.
  """
  errs, present = [], []
  for i, (g, r) in enumerate(zip(grads, rms)):
    g = g.astype(jnp.float32)
    u_square = jnp.mean(jnp.square(g / (r.astype(jnp.float32) + 1e-30)))
    live = (jnp.sum(jnp.square(g)) > 0).astype(jnp.float32)
    target = 0.5 * jnp.log(u_square + 1e-30)
    errs.append(live * jnp.square(clip_excess[i] - target))
    present.append(live)
  return jnp.sum(jnp.stack(errs)) / jnp.maximum(jnp.sum(jnp.stack(present)), 1.0)


def denominator_shape_error(denominator: PyTree, rms: PyTree, grads: PyTree,
                            with_scale: bool = False) -> jax.Array:
  """How far the denominator is from proportional to `rms` (with `with_scale`: from
  equal to it), per tensor, averaged.

  Per tensor with r = log(denominator) - log(rms) per entry, the variance of r under
  weights (g / rms)^2 normalized to sum 1 (the rule's own squared update: entries
  the rule barely moves, dead units above all, count little). Zero when the
  denominator is c * rms for any per-tensor c (the scale is the layer gain's and
  the numerator's business); scalars count zero. With `with_scale` it is the weighted
  mean of r^2 instead (variance plus squared mean; scalars count too): zero only for
  the rule's own denominator, which pins the scale the layer gain's readouts see
  (Adafactor's update clipping acts at RMS(g / RMS) = 1).
  """
  errs = []
  for den, target, g in zip(jax.tree.leaves(denominator), jax.tree.leaves(rms),
                            jax.tree.leaves(grads)):
    if den.size < 2 and not with_scale:
      continue
    target = target.astype(jnp.float32)
    r = jnp.log(den + 1e-30) - jnp.log(target + 1e-30)
    w = jnp.square(g.astype(jnp.float32) / (target + 1e-30))
    w = w / (jnp.sum(w) + 1e-30)
    mean = jnp.sum(w * r)
    errs.append(jnp.sum(w * jnp.square(r - (0.0 if with_scale else mean))))
  return jnp.mean(jnp.stack(errs)) if errs else jnp.zeros(())


def rule_run(config: ExecutorConfig, name: str, kwargs: Mapping[str, Any],
             task: Any, steps: int, seed: int = 0) -> tuple[Trajectory, Conditioning]:
  """The rule's own `steps`-step run on `task` (a tasks.Task) from the seed's
  initialization, and the executor's conditioning for that rule and task."""
  key = jax.random.PRNGKey(seed)
  params = task.init(key)
  static, dynamic = split_kwargs(kwargs)
  traj = rule_trajectory(name, static, dynamic, task.loss, params,
                         task.datasets.train.stacked(key, steps), key)
  return traj, conditioning_for(config, name, kwargs, params)


def per_step_agreement(weights: Any, config: ExecutorConfig, hand_set: HandSet,
                       traj: Trajectory,
                       cond: Conditioning, norm_ratio: bool = False,
                       metrics: Callable[[PyTree, PyTree], tuple] | None = None
                       ) -> tuple[np.ndarray, ...]:
  """Per-step update cosine and relative error (or, with `norm_ratio`, the norm ratio
  executor / rule) of the executor along a trajectory, its own state fed back.

  `metrics(executor updates, rule updates)`, when given, replaces that pair: any
  tuple of arrays, stacked over steps.
  """
  first_params = jax.tree.map(lambda x: x[0], traj.params)
  graph = graph_of(first_params)
  if metrics is None:
    second = _global_norm_ratio if norm_ratio else _global_relative_error
    metrics = lambda pred, target: (_cosine(pred, target), second(pred, target))  # noqa: E731

  @jax.jit
  def run(weights, traj, cond):
    def body(state, inputs):
      params, grads, target, loss = inputs
      out = _executor_step(weights, config, hand_set, graph, cond, grads, state, params, loss)
      return out.state, metrics(out.updates, target)
    return jax.lax.scan(body, step_lib.init_state(first_params, config, hand_set),
                        (traj.params, traj.grads, traj.updates, traj.loss))[1]

  return tuple(np.asarray(x) for x in run(weights, traj, cond))


def hint_agreement(weights: Any, config: ExecutorConfig, hand_set: HandSet, traj: Trajectory,
                   cond: Conditioning) -> dict[str, float]:
  """Median per-step relative error of each hint the rule gives and the executor predicts,
  along the rule's trajectory (the executor's own state fed back): 'first_moment' and
  'second_moment_rms' (HINT_TARGETS' rules), 'ns_iterate_k' (rules with rounds, over the
  tensors they run on). Empty for a rule without such hints."""
  first_params = jax.tree.map(lambda x: x[0], traj.params)
  graph = graph_of(first_params)
  runs = (cond.plan_features[:, 0] if cond.plan_features is not None
          else jnp.zeros((len(graph.tensors),)))

  @jax.jit
  def run(weights, traj, cond):
    def body(state, inputs):
      params, grads, first, second, iterates, loss = inputs
      out = _executor_step(weights, config, hand_set, graph, cond, grads, state, params, loss)
      errors = {"first_moment": _global_relative_error(out.predictions["first_moment"], first),
                "second_moment_rms": _global_relative_error(
                    out.predictions["second_moment_rms"], second)}
      if iterates:
        rounds = jnp.sqrt(round_hint_errors(out.predictions, iterates, runs, graph))
        errors.update({f"ns_iterate_{k}": rounds[k] for k in range(len(iterates))})
      return out.state, errors
    return jax.lax.scan(body, step_lib.init_state(first_params, config, hand_set),
                        (traj.params, traj.grads, traj.first_moment, traj.second_moment_rms,
                         traj.ns_iterates, traj.loss))[1]

  errors = run(weights, traj, cond)
  keep = [k for k in errors if k.startswith("ns_iterate_")] if traj.ns_iterates else []
  if float(traj.hint_mask) > 0:
    keep = ["first_moment", "second_moment_rms"] + keep
  return {k: float(np.median(np.asarray(errors[k]))) for k in keep}


def _global_norm_ratio(pred: PyTree, target: PyTree) -> jax.Array:
  """|pred| / |target| over the whole pytree."""
  def norm(tree):
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32)))
                        for x in jax.tree.leaves(tree)))
  return norm(pred) / (norm(target) + 1e-30)


def _global_relative_error(pred: PyTree, target: PyTree) -> jax.Array:
  """|pred - target| / |target| over the whole pytree."""
  num = sum(jnp.sum(jnp.square(p.astype(jnp.float32) - t.astype(jnp.float32)))
            for p, t in zip(jax.tree.leaves(pred), jax.tree.leaves(target)))
  den = sum(jnp.sum(jnp.square(t.astype(jnp.float32))) for t in jax.tree.leaves(target))
  return jnp.sqrt(num / (den + 1e-30))


def _direction_and_magnitude_loss(pred: PyTree, target: PyTree,
                                  magnitude_weight: float = 1.0) -> jax.Array:
  """Mean over tensors of (1 - cosine) + w (log-norm ratio)^2; all-zero targets skipped."""
  terms, weights = [], []
  for p, t in zip(jax.tree.leaves(pred), jax.tree.leaves(target)):
    p, t = p.astype(jnp.float32), t.astype(jnp.float32)
    p_sq, t_sq = jnp.sum(jnp.square(p)), jnp.sum(jnp.square(t))
    cosine = jnp.sum(p * t) / jnp.sqrt(p_sq * t_sq + 1e-30)
    log_ratio = 0.5 * (jnp.log(p_sq + 1e-30) - jnp.log(t_sq + 1e-30))
    present = (t_sq > 1e-30).astype(jnp.float32)
    terms.append(present * ((1.0 - cosine) + magnitude_weight * jnp.square(log_ratio)))
    weights.append(present)
  return jnp.sum(jnp.stack(terms)) / jnp.maximum(jnp.sum(jnp.stack(weights)), 1.0)


def _where(flag: jax.Array, a: PyTree, b: PyTree) -> PyTree:
  return jax.tree.map(lambda x, y: jnp.where(flag > 0, x, y), a, b)


def _cosine(a: PyTree, b: PyTree) -> jax.Array:
  dot = sum(jnp.sum(x.astype(jnp.float32) * y.astype(jnp.float32))
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  na = jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(a)))
  nb = jnp.sqrt(sum(jnp.sum(jnp.square(y.astype(jnp.float32))) for y in jax.tree.leaves(b)))
  return dot / (na * nb + 1e-30)


PENALTY_CLOCKS = (0, 200, 2000)   # step counts at which the weight penalties look


def _mean_over_clocks(weights: Any, config: ExecutorConfig, conds: Conditioning,
                      per_tensor_fn: Callable[[jax.Array, Conditioning], jax.Array],
                      exempt: tuple[str, ...] = ()) -> jax.Array:
  """Mean of `per_tensor_fn(tensor-net outputs, conditioning)` (a scalar) over the
  batch's conditionings (vmapped `Conditioning`) and PENALTY_CLOCKS, leaving out the
  conditionings on a rule named in `exempt`."""
  cond_fn, _, tensor_fn = network.build(config).apply[:3]

  def one(cond, clock):
    c = cond_fn(weights, cond.rule_id, cond.hyper_features, conditioning.time_features(clock))
    return per_tensor_fn(tensor_fn(weights, c, cond.tensor_features), cond)

  clocks = jnp.asarray(PENALTY_CLOCKS, jnp.int32)
  per_clock = jax.vmap(lambda t: jax.vmap(lambda cond: one(cond, t))(conds))(clocks)
  exempt_ids = jnp.asarray([config.rules.index(r) for r in exempt if r in config.rules]
                           or [-1], jnp.int32)
  counted = jnp.all(conds.rule_id[:, None] != exempt_ids[None, :], axis=1).astype(jnp.float32)
  return jnp.sum(per_clock * counted[None, :]) / jnp.maximum(
      len(PENALTY_CLOCKS) * jnp.sum(counted), 1.0)


def direction_readout_penalty(weights: Any, config: ExecutorConfig,
                              conds: Conditioning, exempt: tuple[str, ...] = ()) -> jax.Array:
  """Mean square of the layer gain's linear and hinge coefficients on log RMS(d).

  A prior that the gain reads the direction's RMS only where a rule needs it
  (LAMB's and LARS's trust ratios): along imitation runs of a few hundred steps
  Adam's direction keeps about one RMS, so a coefficient on it is nearly free
  there, but late in training, when that RMS falls, it holds the update up
  (`readout.layer_log_gain`). Averaged over the batch's conditionings (vmapped
  `Conditioning`), their tensors, and PENALTY_CLOCKS (clocks past the imitated runs).
  Conditionings on a rule named in `exempt` (e.g. the rules that do read the
  direction's RMS: lamb, lars and adafactor, whose update clipping does) are left
  out of the mean.
  """
  start = network.DIRECTION_GAIN_INDEX   # the direction's linear and hinge coefficients
  return _mean_over_clocks(
      weights, config, conds,
      lambda out, cond: jnp.mean(jnp.square(out[:, start:start + 2])), exempt)


def round_offset_penalty(weights: Any, config: ExecutorConfig, conds: Conditioning
                         ) -> jax.Array:
  """Mean square of the learned offsets of the round coefficients (learned_opt.executor.
  hops: c_k = the rule's own row + the `hop_round` offset) over the active rounds of the
  batch's conditionings and PENALTY_CLOCKS; 0 without rounds.

  A prior that a rule's rounds keep its own coefficients unless its iterates say
  otherwise: along imitation's early-training runs offsets of a few hundredths fit
  about as well, but near a minimum they change where Muon's fixed-size orthogonalized
  steps leave the loss.
  """
  if not network.multi_hop(config) or conds.round_features is None:
    return jnp.zeros(())
  applies = network.build(config).apply
  cond_fn, hop_fn = applies[0], applies[3]

  def one(cond, clock):
    c = cond_fn(weights, cond.rule_id, cond.hyper_features, conditioning.time_features(clock))
    per_round = hop_fn(weights, c, cond.tensor_features, cond.plan_features,
                       cond.round_features)[1]
    active = cond.round_features[:, 4:5]
    return jnp.sum(jnp.square(active * per_round)), 3.0 * jnp.sum(active)

  clocks = jnp.asarray(PENALTY_CLOCKS, jnp.int32)
  squares, counts = jax.vmap(lambda t: jax.vmap(lambda cond: one(cond, t))(conds))(clocks)
  return jnp.sum(squares) / jnp.maximum(jnp.sum(counts), 1.0)


def normalizer_mixture(outputs: jax.Array, config: ExecutorConfig) -> jax.Array:
  """Per tensor, how evenly the normalizer mixes its three denominator terms.

  The terms' weights t = (alpha, beta, k) (the RMS state's, the constant's, the
  sign gain's; learned_opt.executor.decode) as fractions q = t / sum(t); returns
  the Gini impurity 1 - sum q^2: 0 when one term carries the denominator, 2/3
  when all three weigh the same. Every imitated rule divides by one of them per
  tensor (Adam and RMSProp: alpha; SGD and Adafactor's factored moment: beta;
  Lion: k), but along short imitation runs a mixture fits almost as well and
  generalizes worse: a beta term beside Adam's alpha shrinks its updates against
  Adam's late in long runs.
  """
  fractions = _denominator_fractions(outputs, config)
  return 1.0 - jnp.sum(jnp.square(fractions), axis=-1)


def _denominator_fractions(outputs: jax.Array, config: ExecutorConfig,
                           node_bias: bool = False) -> jax.Array:
  """(num_tensors, 3): the denominator terms' coefficients (alpha, beta's, k) as fractions
  of their sum; with `node_bias`, beta's times the node factor's bias e^{w_0} where only
  beta's term carries the node factor (ExecutorConfig.normalizer='scaled')."""
  alpha = jnp.abs(outputs[:, 0])
  beta = decode.normalizer_constant(outputs[:, 5], config.normalizer, 0.0)
  if node_bias and config.normalizer == "scaled":
    beta = beta * jnp.exp(jnp.clip(outputs[:, 4], -30.0, 30.0))
  k = decode.sign_gain(outputs[:, 6], config.normalizer)
  terms = jnp.stack([alpha, beta, k], axis=-1)
  return terms / (jnp.sum(terms, axis=-1, keepdims=True) + 1e-12)


# Which of the executor's three denominator terms (learned_opt.executor.decode) each rule
# divides by, on the tensors it does not factor and on those it does (only adafactor
# factors): 'edge' (alpha v, the per-entry RMS), 'constant' (beta's term: 1 for SGD-like
# rules, the factored row/column RMS through the node factor for adafactor), 'sign'
# (k |n|). Rules not named get no primitive hint.
DENOMINATOR_TERMS = ("edge", "constant", "sign")
DENOMINATOR_PRIMITIVES = {
    **{name: ("edge", "edge") for name in ("adam", "adamw", "nadam", "rmsprop", "lamb",
                                            "adabelief", "adagrad")},
    **{name: ("constant", "constant") for name in ("sgd", "lars")},
    "lion": ("sign", "sign"),
    "adafactor": ("edge", "constant"),
}


def primitive_targets(config: ExecutorConfig) -> jax.Array:
  """(num rules, 2) int32: per rule of the embedding table, the index in DENOMINATOR_TERMS
  of the term it divides by on unfactored and on factored tensors; -1 for no hint."""
  return jnp.asarray([[DENOMINATOR_TERMS.index(term) for term in DENOMINATOR_PRIMITIVES[name]]
                      if name in DENOMINATOR_PRIMITIVES else [-1, -1]
                      for name in config.rules], jnp.int32)


def primitive_error(outputs: jax.Array, config: ExecutorConfig, rule_id: jax.Array,
                    tensor_feats: jax.Array) -> jax.Array:
  """Mean over tensors of -log q_target: how little of the denominator the rule's own
  term (DENOMINATOR_PRIMITIVES) carries.

  q are the terms' coefficients (alpha, beta's, k) as fractions of their sum, beta's
  with the node factor's bias e^{w_0} where only beta's term carries the node factor
  (ExecutorConfig.normalizer='scaled'). 0 when the rule's term alone divides; 0 for rules
  without a hint. A hint on the algorithm's structure in the sense of CLRS's hints: which
  primitive a step uses, not what it computes (the update loss says that).
  """
  fractions = _denominator_fractions(outputs, config, node_bias=True)
  factored = network.factored_by_rule(tensor_feats).astype(jnp.int32)
  target = primitive_targets(config)[rule_id][factored]          # (num_tensors,)
  share = jnp.take_along_axis(fractions, jnp.maximum(target, 0)[:, None], axis=-1)[:, 0]
  hinted = (target >= 0).astype(jnp.float32)
  return jnp.sum(hinted * -jnp.log(share + 1e-6)) / jnp.maximum(jnp.sum(hinted), 1.0)


def primitive_hint(weights: Any, config: ExecutorConfig, conds: Conditioning,
                   exempt: tuple[str, ...] = ()) -> jax.Array:
  """`primitive_error` averaged over the batch's conditionings and PENALTY_CLOCKS,
  leaving out the conditionings on a rule named in `exempt`."""
  return _mean_over_clocks(
      weights, config, conds,
      lambda out, cond: primitive_error(out, config, cond.rule_id, cond.tensor_features),
      exempt)


def normalizer_mixture_penalty(weights: Any, config: ExecutorConfig,
                               conds: Conditioning, exempt: tuple[str, ...] = ()
                               ) -> jax.Array:
  """`normalizer_mixture` averaged over tensors, the batch's conditionings and
  PENALTY_CLOCKS: a prior that each rule divides by one primitive (imitation
  decides which). Conditionings on a rule named in `exempt` are left out (e.g.
  adafactor, whose vectors divide by alpha's term and matrices by beta's: the
  tensor net's outputs for both come from one rule conditioning)."""
  return _mean_over_clocks(weights, config, conds,
                           lambda out, cond: jnp.mean(normalizer_mixture(out, config)),
                           exempt)


def make_train_step(config: ExecutorConfig, hand_set: HandSet,
                    meta_opt: optax.GradientTransformation,
                    hint_weight: float, magnitude_weight: float = 1.0,
                    readout_penalty: float = 0.0, penalty_exempt: tuple[str, ...] = (),
                    mixture_penalty: float = 0.0, warmup_gradient: bool = False,
                    mixture_exempt: tuple[str, ...] = (),
                    preconditioner_hint_weight: float = 0.0,
                    denominator_hint_weight: float = 0.0,
                    primitive_hint_weight: float = 0.0,
                    denominator_hint_scale: bool = False,
                    primitive_hint_exempt: tuple[str, ...] = (),
                    clip_hint_weight: float = 0.0, ns_hint_weight: float = 0.0,
                    round_offset_weight: float = 0.0):
  """A jitted step: mean loss over a stacked batch of trajectories, one meta-update.

  `warmup` (static: one compile per value) is the number of leading steps of every
  trajectory run without loss, see `trajectory_loss`. `readout_penalty` weighs
  `direction_readout_penalty` into the loss (0: off), leaving out the rules in
  `penalty_exempt`; `mixture_penalty` weighs `normalizer_mixture_penalty` (0: off),
  leaving out the rules in `mixture_exempt`.
  `warmup_gradient`, `preconditioner_hint_weight`, `denominator_hint_weight`,
  `denominator_hint_scale` and `clip_hint_weight`: see `trajectory_loss`.
  `primitive_hint_weight` weighs `primitive_hint` (0: off), leaving out the rules in
  `primitive_hint_exempt`. `ns_hint_weight`: see `trajectory_loss`.
  `round_offset_weight` weighs `round_offset_penalty` (0: off).
  """

  def batch_loss(weights, trajs, conds, warmup):
    losses, metrics = jax.vmap(trajectory_loss,
                               in_axes=(None, None, None, 0, 0) + (None,) * 9)(
        weights, config, hand_set, trajs, conds, hint_weight, warmup, magnitude_weight, warmup_gradient,
        preconditioner_hint_weight, denominator_hint_weight, denominator_hint_scale,
        clip_hint_weight, ns_hint_weight)
    loss = jnp.mean(losses)
    if readout_penalty:
      penalty = direction_readout_penalty(weights, config, conds, penalty_exempt)
      metrics = dict(metrics, readout_penalty=jnp.broadcast_to(penalty, losses.shape))
      loss = loss + readout_penalty * penalty
    if mixture_penalty:
      mixture = normalizer_mixture_penalty(weights, config, conds, mixture_exempt)
      metrics = dict(metrics, mixture_penalty=jnp.broadcast_to(mixture, losses.shape))
      loss = loss + mixture_penalty * mixture
    if primitive_hint_weight:
      hint = primitive_hint(weights, config, conds, primitive_hint_exempt)
      metrics = dict(metrics, primitive_hint=jnp.broadcast_to(hint, losses.shape))
      loss = loss + primitive_hint_weight * hint
    if round_offset_weight:
      offsets = round_offset_penalty(weights, config, conds)
      metrics = dict(metrics, round_offset_penalty=jnp.broadcast_to(offsets, losses.shape))
      loss = loss + round_offset_weight * offsets
    return loss, metrics

  @functools.partial(jax.jit, static_argnames=("warmup",))
  def train_step(weights, opt_state, trajs, conds, warmup: int = 0):
    (loss, metrics), grads = jax.value_and_grad(batch_loss, has_aux=True)(
        weights, trajs, conds, warmup)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
    updates, new_opt_state = meta_opt.update(grads, opt_state, weights)
    new_weights = optax.apply_updates(weights, updates)
    # A non-finite meta-gradient is skipped (and counted), never applied.
    weights = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new_weights, weights)
    opt_state = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new_opt_state, opt_state)
    # Per-example metrics (vectors over the batch) so callers can group them by rule.
    return weights, opt_state, dict(metrics, loss=loss, skipped=1.0 - finite)

  return train_step


def stack(items: Sequence[Any]) -> Any:
  return jax.tree.map(lambda *xs: jnp.stack(xs), *items)


SAMPLING_KINDS = ("log", "uniform", "log1m", "choice", "fixed")


@dataclasses.dataclass(frozen=True)
class RuleSampler:
  """Samples optax keyword arguments for a rule from ranges in the config."""
  name: str
  # key -> ('log', lo, hi) | ('uniform', lo, hi) | ('log1m', lo, hi) (a decay: 1 - beta
  # log-uniform, so time constants spread evenly on a log scale) | ('choice', seq) | ('fixed', v)
  ranges: Mapping[str, Any]

  def sample(self, rng: np.random.Generator) -> dict[str, Any]:
    out = {}
    for key, spec in self.ranges.items():
      kind = spec[0]
      if kind == "log":
        out[key] = float(math.exp(rng.uniform(math.log(spec[1]), math.log(spec[2]))))
      elif kind == "uniform":
        out[key] = float(rng.uniform(spec[1], spec[2]))
      elif kind == "log1m":
        out[key] = float(1.0 - math.exp(rng.uniform(math.log(1.0 - spec[2]),
                                                    math.log(1.0 - spec[1]))))
      elif kind == "choice":
        out[key] = spec[1][int(rng.integers(len(spec[1])))]
      elif kind == "fixed":
        out[key] = spec[1]
      else:
        raise ValueError(f"rule {self.name}: unknown sampling kind {kind!r} for {key}; use "
                         f"one of {SAMPLING_KINDS}.")
    return out


def log_decay_stats(spec: Sequence[Any]) -> tuple[float, float]:
  """(mean, standard deviation) of log(1 - beta) for beta drawn by a sampling spec.

  Args:
    spec: a decay keyword's sampling spec, as `RuleSampler` draws it.

  Returns:
    (center, scale); scale is 1 where the spread is below 1e-3 (a fixed value).
  """
  kind = spec[0]
  if kind == "uniform":
    betas = np.linspace(spec[1], spec[2], 2001)
  elif kind == "log":
    betas = np.exp(np.linspace(math.log(spec[1]), math.log(spec[2]), 2001))
  elif kind == "log1m":
    betas = 1.0 - np.exp(np.linspace(math.log(1.0 - spec[2]), math.log(1.0 - spec[1]), 2001))
  elif kind == "choice":
    betas = np.asarray(spec[1], np.float64)
  elif kind == "fixed":
    betas = np.asarray([spec[1]], np.float64)
  else:
    raise ValueError(f"unknown sampling kind {kind!r}; use one of {SAMPLING_KINDS}.")
  logs = np.log(np.maximum(1.0 - betas, 1e-12))
  scale = float(np.std(logs))
  return float(np.mean(logs)), scale if scale >= 1e-3 else 1.0
