"""Encode: the step's graph, layer and edge features from the rule, the clock and the gradient.

  graph  the conditioning vector c = [rule embedding, hyperparameter features, time
         features] (the clock capped at HandSet.max_time) and the hypernet's
         Coefficients: decays a_k and gains b_k of the running averages, the per-edge
         network's weights, a weight-decay gain; with the hand-set pins of
         learned_opt.executor.pins. Beside them the debiasing averages of 1,
         z_k' = a_k z_k + b_k, and the node factor's fixed degree (or None).
  layer  per tensor, the tensor net's raw normalizer outputs and layer gain
         coefficients (pinned per rule where HandSet.rule_gain_slopes says), and the
         step-size integrator's rate and target.
  edge   per parameter entry, the running averages
           s1' = a1 s1 + b1 g,    s2' = sqrt(a2 s2^2 + b2 (g - kappa s1')^2),
         (kappa from the multi-hop modules, else 0), with a1 shifted on
         the tensors HandSet's momentum shifts name (each shift with its own
         debiasing z1'), and the per-edge network's weights folded onto
         the (g, s1') basis for each first-moment decay (`folded_edge_weights`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.executor import conditioning, hops as hops_lib, network, pins, readout
from learned_opt.executor import controller as controller_lib
from learned_opt.executor.config import ExecutorConfig, HandSet
from learned_opt.graph import EDGES, ParamGraph

PyTree = Any
TINY = 1e-30
A1_FLOOR = 0.05  # see folded_edge_weights
MAX_LOG_INPUT_GAIN = 30.0   # |log rho| bound of an input readout (`input_gains`)


class FirstMoment(NamedTuple):
  """A tensor's first-moment decay, 1 / its debiasing z1', and the edge network's
  weights folded onto (g, s1') with them (`folded_edge_weights`); `nesterov` the
  Nesterov term's weights on (g, s1') (hops: already in `folded`), or None;
  `input_gain` rho, by which the first moment and the edge network read the gradient
  (hops' input readout), or None (1)."""
  decay: jax.Array
  inv_z: jax.Array
  folded: tuple[jax.Array, jax.Array]
  nesterov: jax.Array | None = None
  input_gain: jax.Array | None = None


class GraphFeatures(NamedTuple):
  """Graph-level numbers of one step."""
  coeffs: network.Coefficients
  z: jax.Array             # (3,) z_k' = a_k z_k + b_k
  inv_sqrt_z2: jax.Array   # 1 / sqrt(z2'): debiases the RMS state
  inv_z3: jax.Array        # 1 / z3': debiases the node states
  weight_decay: jax.Array  # max(omega, 0)
  degree: Any              # the node factor's fixed degree, or None (free exponents)


class LayerFeatures(NamedTuple):
  """Per tensor (graph order): the tensor net's outputs and the integrator's settings."""
  normalizer: jax.Array     # (T, NUM_NORMALIZER_OUTPUTS) raw normalizer outputs
  gain_coeffs: jax.Array    # (T, NUM_GAIN_COEFFS) layer gain coefficients
  step_rate: Any            # the integrator's rate: a float or (T,)
  step_target: Any          # its cosine target: a float or (T,)


class EdgeFeatures(NamedTuple):
  """One tensor's edges in float32: the gradient, the old and new moments, the params."""
  g: jax.Array
  s1: jax.Array
  s2: jax.Array
  s1_new: jax.Array
  s2_new: jax.Array
  p: jax.Array | None       # the parameters as given (None without params)
  first: FirstMoment


class Encoded(NamedTuple):
  graph: GraphFeatures
  layers: LayerFeatures
  edges: tuple[EdgeFeatures, ...]
  z_first: jax.Array | None   # (T,) the shifted first moments' debiasing, or None
  hops: hops_lib.HopFeatures | None = None   # with the 'multi_hop' processor
  plan: hops_lib.Plan | None = None          # the rule's rounds (static), or None
  controls: controller_lib.Controls | None = None   # with the learned controller


def tensor_features(graph: ParamGraph, min_dim_size_to_factor: float | None) -> jax.Array:
  """(num_tensors, NUM_TENSOR_FEATURES) static shape features of every tensor."""
  rows = []
  for info in graph.tensors:
    rank = len(info.shape)
    dims = sorted(info.shape)
    second = dims[-2] if rank >= 2 else 0
    if min_dim_size_to_factor and rank >= 2:
      relative = max(network.UNFACTORED,
                     min(2.0, math.log2(second / min_dim_size_to_factor) + 0.5))
    else:
      relative = network.UNFACTORED
    rows.append([
        float(rank == 0), float(rank == 1), float(rank >= 2),
        math.log10(info.n_in) / 10 if rank >= 2 else 0.0,
        math.log10(info.shape[-1]) / 10 if rank >= 1 else 0.0,
        math.log10(max(info.size, 1)) / 10,
        math.log10(max(1, math.prod(info.multiplicity))) / 10,
        relative,
    ])
  return jnp.asarray(rows, jnp.float32).reshape(len(rows), network.NUM_TENSOR_FEATURES)


def hyper_coefficients(weights: Any, config: ExecutorConfig, hand_set: HandSet,
                       rule_id: jax.Array, hyper_features: jax.Array, clock: Any
                       ) -> tuple[jax.Array, network.Coefficients]:
  """(conditioning vector c, the hypernet's graph-level Coefficients) at step `clock`.

  The clock the networks see stops at hand_set.max_time (the longest run the weights
  were trained on), so longer runs hold the learned late-training behavior instead
  of extrapolating the time features. With config.clock_slopes, per running
  average k:
    -log(1 - a_k) = L_k(c) + s_k(c) log(1 + t),   log b_k = G_k(c) + u_k(c) log(1 + t),
  so a decay can grow with the clock at a rate the rule sets (Adafactor:
  a = 1 - (t + 1)^-0.8, b = (t + 1)^-0.8: L = 0, s = 0.8, G = 0, u = -0.8). The
  rules' pinned decays (pins.pin_rule_decays, pins.pin_b2_decay) replace the
  hypernet's where `hand_set` says.
  """
  step = clock
  clock = jnp.minimum(clock, hand_set.max_time) if hand_set.max_time else clock
  cond_fn, hyper_fn = network.build(config).apply[:2]
  c = cond_fn(weights, rule_id, hyper_features, conditioning.time_features(clock))
  coeffs = network.split_hyper_outputs(hyper_fn(weights, c), config, clock)
  coeffs = pins.pin_rule_decays(coeffs, config.rules, hand_set, rule_id, step)
  return c, pins.pin_b2_decay(coeffs, config.rules, hand_set, rule_id, hyper_features)


def layer_features(weights: Any, config: ExecutorConfig, hand_set: HandSet, c: jax.Array,
                   rule_id: jax.Array, tensor_feats: jax.Array) -> LayerFeatures:
  """The tensor net's per-tensor outputs, with the rules' pinned gains and, with
  config.learned_step_size, the integrator's rate and target moved by its head."""
  per_tensor = network.build(config).apply[2](weights, c, tensor_feats)
  normalizer = per_tensor[:, :network.NUM_NORMALIZER_OUTPUTS]
  gain_coeffs = per_tensor[:, network.NUM_NORMALIZER_OUTPUTS:network.NUM_TENSOR_OUTPUTS]
  gain_coeffs = pins.pin_rule_gain(gain_coeffs, config.rules, hand_set, rule_id)
  step_rate, step_target = hand_set.step_size_adaptation, hand_set.step_size_target
  if config.learned_step_size:
    head = per_tensor[:, network.NUM_TENSOR_OUTPUTS:]
    step_rate = jnp.maximum(step_rate + head[:, 0], 0.0)
    step_target = step_target + head[:, 1]
  return LayerFeatures(normalizer, gain_coeffs, step_rate, step_target)


def is_matrix(info) -> bool:
  """A plain weight matrix: rank 2, no multiplicity (not a kernel, bias or scalar);
  the tensors HandSet.matrix_momentum_shift applies to."""
  return len(info.shape) == 2 and info.role == EDGES


def momentum_shift(info, hand_set: HandSet) -> float:
  """The tensor's first-moment memory shift: matrix_momentum_shift on plain weight
  matrices, vector_momentum_shift on vectors and scalars (biases, gains, a
  quadratic's point), 0 on kernels and other batched tensors."""
  if is_matrix(info):
    return hand_set.matrix_momentum_shift
  return hand_set.vector_momentum_shift if len(info.shape) <= 1 else 0.0


def shifts_momentum(hand_set: HandSet, config: ExecutorConfig | None = None) -> bool:
  """Whether some tensor's first moment may keep its own decay (and debiasing state):
  with HandSet's momentum shifts, or the multi-hop modules' learned shift."""
  return bool(hand_set.matrix_momentum_shift or hand_set.vector_momentum_shift
              or (config is not None and network.multi_hop(config)))


def shifted_first_decay(a1: jax.Array, shift: float) -> jax.Array:
  """A shifted first-moment decay: 1 - a1 (about 1 / its memory) times e^shift,
  so the memory is e^shift times shorter (floored at a decay of 0). The same as moving
  the hypernet's raw decay output by shift where the memory is long (ship's
  --decay_shift=first:shift does it on every tensor)."""
  return jnp.maximum(1.0 - (1.0 - a1) * math.exp(shift), 0.0)


def folded_edge_weights(coeffs: network.Coefficients, inv_z1: jax.Array
                        ) -> tuple[jax.Array, jax.Array]:
  """The edge network's weights on the (g, s1') basis: (linear (2,), hidden_in (2, H)).

  Every feature is linear in (g, s1'): s1 = (s1' - b1 g) / a1 and s1'/z1'. The
  feature matrix folds into the graph-level weights once per step, and the
  per-edge program reads only g and the new s1' (never the old s1, whose buffer
  the new one may overwrite in place). a1 is floored at A1_FLOOR in the fold:
  below it the old average is not recoverable from (g, s1') and its feature
  reads as (s1' - b1 g) / A1_FLOOR.
  """
  a1, b1 = coeffs.decays[0], coeffs.gains[0]
  inv_a1 = 1.0 / jnp.maximum(a1, A1_FLOOR)
  one, zero = jnp.ones(()), jnp.zeros(())
  basis = jnp.stack([jnp.stack([one, zero]), jnp.stack([-b1 * inv_a1, inv_a1]),
                     jnp.stack([zero, one]), jnp.stack([zero, inv_z1])])   # (F, 2)
  return coeffs.linear @ basis, basis.T @ coeffs.hidden_in


def input_gains(hops: hops_lib.HopFeatures, plan: hops_lib.Plan | None,
                g_leaves: list[jax.Array], p_leaves: list[Any]) -> list[jax.Array | None]:
  """Per tensor its input readout rho (learned_opt.executor.hops), or None where the
  plan reads none (static):
    log rho = lambda_0 + lambda_p log RMS(p) + lambda_g log RMS(g),  0 where either RMS is 0.

  Raises:
    ValueError: the plan reads an input readout but no parameters are given.
  """
  out = []
  for idx, (g, p) in enumerate(zip(g_leaves, p_leaves)):
    if plan is None or not plan.reads_input(idx):
      out.append(None)
      continue
    if p is None:
      raise ValueError("This rule scales the gradient by the parameters' norm (a trust "
                       "ratio): pass params to update(grads, state, params).")
    log_p, log_g = readout.log_rms(p), readout.log_rms(g)
    zero = (log_p <= readout.LOG_ZERO) | (log_g <= readout.LOG_ZERO)
    lam = hops.trust[idx]
    log_rho = jnp.where(zero, 0.0, lam[0] + lam[1] * log_p + lam[2] * log_g)
    out.append(jnp.exp(jnp.clip(log_rho, -MAX_LOG_INPUT_GAIN, MAX_LOG_INPUT_GAIN)))
  return out


def learned_first_moments(coeffs: network.Coefficients, graph: ParamGraph,
                          hand_set: HandSet, hops: hops_lib.HopFeatures, z_first: jax.Array,
                          gains: list[jax.Array | None] | None = None
                          ) -> tuple[list[FirstMoment], jax.Array]:
  """Per tensor its FirstMoment under the hop network's learned shift s_t (added to
  HandSet's), its own debiasing z1', Nesterov's term and its input gain rho
  (`input_gains`; None: 1) (learned_opt.executor.hops):

    a1_t = max(1 - (1 - a1) e^{s_t}, 0),   z1_t' = a1_t z1_t + b1,   g^ = rho g,
    n += eta (a1_t s1' / (a1_t z1_t' + b1) + b1 g^ / z1_t'),

  every weight on g^ folded onto g (times rho).
  """
  a1, b1 = coeffs.decays[0], coeffs.gains[0]
  hand = jnp.asarray([momentum_shift(info, hand_set) for info in graph.tensors], jnp.float32)
  decays = jnp.maximum(1.0 - (1.0 - a1) * jnp.exp(hand + hops.shift), 0.0)
  z = decays * z_first + b1
  gains = gains or [None] * len(graph.tensors)
  out = []
  for idx, rho in enumerate(gains):
    inv_z = 1.0 / z[idx]
    moved = coeffs._replace(decays=coeffs.decays.at[0].set(decays[idx]))
    linear, hidden_in = folded_edge_weights(moved, inv_z)
    nesterov = hops.nesterov * jnp.stack([b1 * inv_z, decays[idx] / (decays[idx] * z[idx] + b1)])
    linear = linear + nesterov
    if rho is not None:   # the g row reads g^ = rho g
      on_g = jnp.stack([rho, jnp.ones_like(rho)])
      linear, nesterov, hidden_in = linear * on_g, nesterov * on_g, hidden_in * on_g[:, None]
    out.append(FirstMoment(decays[idx], inv_z, (linear, hidden_in), nesterov, rho))
  return out, z


def first_moments(coeffs: network.Coefficients, graph: ParamGraph, hand_set: HandSet,
                  z1: jax.Array, z_first: jax.Array | None
                  ) -> tuple[list[FirstMoment], jax.Array | None]:
  """Per tensor its FirstMoment, and the shifted moments' new debiasing state.

  The tensors of one momentum shift share a FirstMoment and their z1' recursion.
  """
  a1, b1 = coeffs.decays[0], coeffs.gains[0]
  shifts = [momentum_shift(info, hand_set) for info in graph.tensors]
  by_shift = {0.0: FirstMoment(a1, 1.0 / z1, folded_edge_weights(coeffs, 1.0 / z1))}
  new_z_first = z_first
  for shift in sorted(set(shifts) - {0.0}):
    members = [i for i, value in enumerate(shifts) if value == shift]
    decay = shifted_first_decay(a1, shift)
    z = decay * z_first[members[0]] + b1
    new_z_first = new_z_first.at[jnp.asarray(members)].set(z)
    moved = coeffs._replace(decays=coeffs.decays.at[0].set(decay))
    by_shift[shift] = FirstMoment(decay, 1.0 / z, folded_edge_weights(moved, 1.0 / z))
  return [by_shift[shift] for shift in shifts], new_z_first


def edge_moments(g: jax.Array, s1: jax.Array, s2: jax.Array, a1: jax.Array,
                 coeffs: network.Coefficients, input_gain: jax.Array | None = None
                 ) -> tuple[jax.Array, jax.Array]:
  """(s1', s2') from the gradient and the old moments, elementwise (a1: the tensor's
  first-moment decay):

    s1' = a1 s1 + b1 rho g,   s2' = sqrt(a2 s2^2 + b2 e^2),   e = g - kappa s1',

  kappa the coefficients' belief (the multi-hop modules' `belief_head`; e = g without
  them) and rho the tensor's `input_gain` (1 without one)."""
  a, b = coeffs.decays, coeffs.gains
  s1_new = a1 * s1 + (b[0] if input_gain is None else b[0] * input_gain) * g
  error = g if coeffs.belief is None else g - coeffs.belief * s1_new
  scaled = jnp.sqrt(b[1]) * error   # (sqrt(b) g)^2: not CSE'd with the row squares
  return s1_new, jnp.sqrt(a[1] * jnp.square(s2) + scaled * scaled + TINY)


def hop_features(weights: Any, config: ExecutorConfig, c: jax.Array, tensor_feats: jax.Array,
                 graph: ParamGraph, plan: hops_lib.Plan | None,
                 hop_inputs: tuple[jax.Array, jax.Array] | None = None,
                 controls: controller_lib.Controls | None = None) -> hops_lib.HopFeatures:
  """The multi-hop modules' per-tensor and per-round outputs (learned_opt.executor.hops),
  from `plan`'s features or the given (plan features, round features) `hop_inputs`,
  moved by the controller's mix and shift offsets when `controls` are given."""
  plan_feats, round_feats = hop_inputs if hop_inputs is not None else (
      hops_lib.plan_features(plan, graph), hops_lib.round_features(plan))
  outputs = network.build(config).apply[3](weights, c, tensor_feats, plan_feats, round_feats)
  offsets = None if controls is None else (controls.mix, controls.shift)
  return hops_lib.features(outputs, plan_feats, round_feats, offsets)


def controller_controls(weights: Any, config: ExecutorConfig, hand_set: HandSet,
                        graph: ParamGraph, c: jax.Array, g_leaves: list, p_leaves: list,
                        state: Any, value: Any) -> controller_lib.Controls:
  """The learned controller's outputs for this step (learned_opt.executor.controller),
  from the gradient, the old state and the loss `value` (None: not given)."""
  x, level = controller_lib.signals(g_leaves, jax.tree.leaves(state.s1),
                                    jax.tree.leaves(state.s2), p_leaves, state.z,
                                    state.count, state.controller, value,
                                    hand_set.readout_rows)
  hidden = state.controller.hidden
  passed = controller_lib.messages(graph, hidden) if config.controller_messages else None
  outputs = network.controller_apply(config)(weights, c, x, hidden, passed)
  return controller_lib.controls(outputs, x, state.controller, level, value)


def encode(weights: Any, config: ExecutorConfig, hand_set: HandSet, graph: ParamGraph,
           rule_id: jax.Array, hyper_features: jax.Array, tensor_feats: jax.Array,
           grads: PyTree, state: Any, params: PyTree | None,
           plan: hops_lib.Plan | None = None,
           hop_inputs: tuple[jax.Array, jax.Array] | None = None,
           value: Any = None) -> Encoded:
  """The step's graph, layer and edge features (see the module doc).

  `state` is the executor's state (count, s1, s2, z, z_first, controller are read);
  `plan` the rule's rounds (static; read with the 'multi_hop' processor) and
  `hop_inputs` its features when they are given traced (`hop_features`); `value` the
  loss at these parameters, for the controller (None: not given).
  """
  c, coeffs = hyper_coefficients(weights, config, hand_set, rule_id, hyper_features,
                                 state.count)
  g_leaves = graph.leaves(grads)
  p_leaves = graph.leaves(params) if params is not None else [None] * len(g_leaves)
  layers = layer_features(weights, config, hand_set, c, rule_id, tensor_feats)
  z = coeffs.decays * state.z + coeffs.gains
  controls = None
  if config.controller_hidden:
    controls = controller_controls(weights, config, hand_set, graph, c, g_leaves, p_leaves,
                                   state, value)
  hops = None
  if network.multi_hop(config):
    hops = hop_features(weights, config, c, tensor_feats, graph, plan, hop_inputs, controls)
    coeffs = coeffs._replace(belief=hops.belief)
    gains = input_gains(hops, plan, g_leaves, p_leaves)
    first, z_first = learned_first_moments(coeffs, graph, hand_set, hops, state.z_first,
                                           gains)
  else:
    first, z_first = first_moments(coeffs, graph, hand_set, z[0], state.z_first)
  # Decoupled weight decay can only pull weights toward zero: meta-training on short
  # horizons otherwise learns a negative one (growing weights lowers the loss for a few
  # hundred steps, then diverges).
  features = GraphFeatures(coeffs, z, jax.lax.rsqrt(z[1]), 1.0 / z[2],
                           jnp.maximum(coeffs.weight_decay, 0.0),
                           pins.node_degree(config.rules, hand_set, rule_id))
  edges = []
  for g, s1, s2, p, moment in zip(g_leaves, jax.tree.leaves(state.s1),
                                  jax.tree.leaves(state.s2), p_leaves, first):
    g, s1, s2 = (x.astype(jnp.float32) for x in (g, s1, s2))
    edges.append(EdgeFeatures(g, s1, s2, *edge_moments(g, s1, s2, moment.decay, coeffs,
                                                       moment.input_gain), p, moment))
  return Encoded(features, layers, tuple(edges), z_first, hops,
                 plan if network.multi_hop(config) else None, controls)
