"""One executor step over the parameter graph: encode -> process -> decode.

  encode   (learned_opt.executor.encode) the conditioning and the hypernet's
           graph-level coefficients, the tensor net's per-tensor outputs, and the
           new running averages of every parameter entry;
  process  (learned_opt.executor.processors, ExecutorConfig.processor) the node
           factors of the normalizer, from the processor's own state;
  decode   (learned_opt.executor.decode) the direction per entry, the layer gain
           and the step-size integrator, and the update -lr mu d.

The per-edge work of all three is elementwise and XLA fuses it: per parameter the
step reads g, s1, s2 (and p) and writes s1', s2' and the update; the state is
2 floats per parameter plus O(nodes + layers) (`ExecutorState`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.executor import controller as controller_lib
from learned_opt.executor import decode, encode, hops, processors, step_size
from learned_opt.executor.config import ExecutorConfig, HandSet, check_pair
from learned_opt.graph import ParamGraph

PyTree = Any
FORMS = decode.FORMS


class ExecutorState(NamedTuple):
  """2 floats per parameter (s1, s2), the processor's node state, O(layers) state
  (with the learned controller, H + 4 floats per tensor).

  Fields the architecture and hand-set record do not need are None.
  """
  count: jax.Array     # int32 scalar
  s1: PyTree           # per parameter, parameter dtype
  s2: PyTree           # per parameter, parameter dtype (>= 0)
  nodes: processors.NodeState   # the processor's state (float32)
  z: jax.Array         # (3,) float32: running averages of 1 (debiasing)
  # (num_tensors,) float32: adapted log step sizes (with the step-size integrator).
  log_step: jax.Array | None
  # (num_tensors,) float32: running mean square of g per tensor (on the integrator's row
  # sample) with the second moment's decay and gain, for the dead band's gate: mean(s2^2)
  # follows the same recursion, so this is what s2 remembers.
  grad_mean_square: jax.Array | None
  # (num_tensors,) float32: per tensor, the running average of 1 under its own
  # first-moment decay where HandSet's momentum shifts move it (0 elsewhere): its
  # debiasing (with a momentum shift).
  z_first: jax.Array | None
  # The learned controller's O(tensors) state (learned_opt.executor.controller), or None.
  controller: controller_lib.ControllerState | None = None


class StepOutput(NamedTuple):
  updates: PyTree
  state: ExecutorState
  # Hint predictions for imitation: the debiased moments and the denominator the
  # direction divides by (pytrees), per tensor (graph order) how far log RMS of the
  # direction sits above its clipping knot ('clip_excess'), and with a rule's rounds
  # every round's iterate ('ns_iterate_k', pytrees, zeros where no round ran).
  predictions: dict[str, PyTree]


def init_state(params: PyTree, config: ExecutorConfig, hand_set: HandSet) -> ExecutorState:
  """Zero state; accepts arrays or jax.ShapeDtypeStruct leaves."""
  zeros = lambda x: jnp.zeros(x.shape, x.dtype)  # noqa: E731
  num_tensors = len(jax.tree.leaves(params))
  integrator = step_size.init(num_tensors, config, hand_set)
  return ExecutorState(
      count=jnp.zeros([], jnp.int32),
      s1=jax.tree.map(zeros, params), s2=jax.tree.map(zeros, params),
      nodes=processors.get(config.processor).init(params, config),
      z=jnp.zeros((3,), jnp.float32),
      log_step=integrator.log_step, grad_mean_square=integrator.grad_mean_square,
      z_first=(jnp.zeros((num_tensors,), jnp.float32)
               if encode.shifts_momentum(hand_set, config) else None),
      controller=(controller_lib.init(num_tensors, config.controller_hidden)
                  if config.controller_hidden else None))


def layout_problems(state: ExecutorState, config: ExecutorConfig, hand_set: HandSet
                    ) -> list[str]:
  """The optional fields `state` has or lacks against what `config` and `hand_set` need."""
  expected = init_state({}, config, hand_set)
  problems = []
  for name in ("log_step", "grad_mean_square", "z_first", "controller"):
    if (getattr(state, name) is None) != (getattr(expected, name) is None):
      problems.append(f"{name} is {'missing' if getattr(state, name) is None else 'extra'}")
  for name in ("rows", "cols"):
    if (getattr(state.nodes, name) is None) != (getattr(expected.nodes, name) is None):
      problems.append(f"nodes.{name} is "
                      f"{'missing' if getattr(state.nodes, name) is None else 'extra'}")
  return problems


def first_moment(edge: encode.EdgeFeatures, hop: hops.HopFeatures | None) -> jax.Array:
  """The debiased first moment the update reads: s1'/z1', or with the multi-hop
  modules' Nesterov weight eta, (1 - eta) s1'/z1' plus eta times Nesterov's debiased
  momentum (encode.learned_first_moments; NAdam's and Muon's with nesterov)."""
  plain = edge.s1_new * edge.first.inv_z
  if hop is None or edge.first.nesterov is None:
    return plain
  nesterov = edge.first.nesterov
  return (1.0 - hop.nesterov) * plain + nesterov[0] * edge.g + nesterov[1] * edge.s1_new


def executor_step(weights: Any, config: ExecutorConfig, hand_set: HandSet, graph: ParamGraph,
                  rule_id: jax.Array, hyper_features: jax.Array, learning_rate: Any,
                  tensor_feats: jax.Array, grads: PyTree, state: ExecutorState,
                  params: PyTree | None, form: str = "fused",
                  plan: hops.Plan | None = None,
                  hop_inputs: tuple[jax.Array, jax.Array] | None = None,
                  value: Any = None) -> StepOutput:
  """Runs the executor once: encode -> process -> decode.

  All arguments but `config`, `hand_set`, `graph`, `form` and `plan` (the rule's
  rounds, learned_opt.executor.hops.plan_for; read by the 'multi_hop' processor) may
  be traced. `hop_inputs` (plan features, round features) replace `plan`'s own when
  `plan` is a union of several rules' (learned_opt.executor.hops.union). `value`, the
  loss at the parameters the gradient was taken at, is read by the learned
  controller only (None: not given).
  """
  if form not in FORMS:
    raise ValueError(f"Unknown executor form {form!r}; use one of {FORMS}.")
  check_pair(config, hand_set)
  encoded = encode.encode(weights, config, hand_set, graph, rule_id, hyper_features,
                          tensor_feats, grads, state, params, plan, hop_inputs, value)
  factors, nodes = processors.get(config.processor).apply(encoded, graph, state.nodes, config)
  decoded = decode.decode(encoded, factors, graph, config, hand_set,
                          step_size.IntegratorState(state.log_step, state.grad_mean_square),
                          learning_rate, state.count, form)
  g_leaves = graph.leaves(grads)
  s1_leaves, s2_leaves = jax.tree.leaves(state.s1), jax.tree.leaves(state.s2)
  unflat = graph.unflatten
  edges = encoded.edges
  new_state = ExecutorState(
      count=jnp.minimum(state.count, jnp.iinfo(jnp.int32).max - 1) + 1,
      s1=unflat([e.s1_new.astype(x.dtype) for e, x in zip(edges, s1_leaves)]),
      s2=unflat([e.s2_new.astype(x.dtype) for e, x in zip(edges, s2_leaves)]),
      nodes=nodes, z=encoded.graph.z, log_step=decoded.integrator.log_step,
      grad_mean_square=decoded.integrator.grad_mean_square, z_first=encoded.z_first,
      controller=(None if encoded.controls is None else controller_lib.with_last_update(
          encoded.controls.state, decoded.log_rms_update)))
  updates = [u.astype(g.dtype) for u, g in zip(decoded.updates, g_leaves)]
  predictions = {
      "first_moment": unflat([first_moment(e, encoded.hops) for e in edges]),
      "second_moment_rms": unflat([e.s2_new * encoded.graph.inv_sqrt_z2 for e in edges]),
      "denominator": unflat(decoded.denominators), "clip_excess": decoded.clip_excess}
  if encoded.plan is not None and encoded.plan.rounds:   # X_k where the rounds ran, else 0
    for k in range(encoded.plan.rounds + 1):
      predictions[f"ns_iterate_{k}"] = unflat([
          its[k] if its is not None else jnp.zeros(e.g.shape, jnp.float32)
          for its, e in zip(decoded.iterates, edges)])
  return StepOutput(unflat(updates), new_state, predictions)
