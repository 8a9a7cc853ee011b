"""Decode: the update from the encoded edges, the processor's node factors and the layer gain.

Per parameter entry (edge), with f = [g, s1, s1', s1'/z1'] (learned_opt.executor.encode):

  n = sum_i l_i f_i + sum_h w2_h relu(sum_i W1_ih f_i)      (bias-free, degree 1)

Every f_i is linear in (g, s1'), so the per-edge program reads only g and s1' with
the weights folded onto that basis (`encode.folded_edge_weights`). The normalizer,
per tensor from the tensor net (alpha = |w_a|, the processor's node factor N, a
sign gain k >= 0, an epsilon e), divides it (ExecutorConfig.normalizer):

  'exp':     d = n / ((alpha v + beta) N + k |n| + e) + omega p,   beta = exp(w_b)
  'scaled':  d = n / (alpha v + beta N + k |n| + e) + omega p,     beta = |w_b| RMS(g)

v = s2' / sqrt(z2'). Adam is alpha = 1, beta = 0, N = 1, e = eps; Adafactor the
factored row/column RMS in N; Lion k |n| (a soft sign); SGD beta = 1. omega >= 0 is
a learned weight-decay gain. Per parameter the normalizer costs a few multiply-adds
and one division, like Adam's. Every input of n and of the denominator is
positively homogeneous of degree 1 in the gradient, so the update is invariant to
the gradient's scale whenever the node exponents make N of degree 0.

The update is -lr mu d, log mu the layer gain (learned_opt.executor.readout) plus
the integrator's log step size (learned_opt.executor.step_size) and the learned
controller's (learned_opt.executor.controller). No per-parameter
hidden vector is ever materialized: each hidden unit is a scalar-weighted sum of
the features, which XLA fuses into one elementwise loop.

`form="plain"` runs the same network the way it is usually written, as a
reference and for the speed comparison: the features stacked into a [..., F]
array, a [F, H] matmul to a [..., H] hidden array, and both readouts on the whole
tensor. It equals the fused form up to rounding, except that the fused readout
reads a row sample of tensors with more than HandSet.readout_rows in-neurons and
the fused fold floors a1 at encode.A1_FLOOR.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.executor import hops as hops_lib, network, readout, step_size
from learned_opt.executor.config import ExecutorConfig, HandSet
from learned_opt.executor.encode import (TINY, EdgeFeatures, Encoded, FirstMoment,
                                         GraphFeatures, edge_moments)
from learned_opt.executor.processors import MAX_LOG, NodeFactors, bounded_exp
from learned_opt.graph import ParamGraph

FORMS = ("fused", "plain")


class TensorOut(NamedTuple):
  """One tensor's decoded direction and what the layer gain and integrator read."""
  direction: jax.Array
  denominator: jax.Array
  log_rms_d: jax.Array | None    # with a direction readout
  log_rms_p: jax.Array | None    # with a layer readout
  alignment: jax.Array | None    # cos(g, s1), with the integrator
  g_square: jax.Array | None     # mean(g^2), with the integrator
  iterates: list[jax.Array] | None = None   # the rounds' X_0 .. X_K, where they ran


class Decoded(NamedTuple):
  """The step's updates (float32, graph order) and the integrator's new state."""
  updates: list[jax.Array]
  denominators: list[jax.Array]
  clip_excess: jax.Array      # (T,) log RMS(d) above the clipping knot (imitation's hint)
  integrator: step_size.IntegratorState
  iterates: list[list[jax.Array] | None]   # per tensor the rounds' iterates, or None
  # (T,) log RMS of each tensor's update (on the readout's sample; the direction's RMS
  # taken as 1 without a direction readout), for the learned controller; or None.
  log_rms_update: jax.Array | None = None


def sign_gain(raw: jax.Array, normalizer: str) -> jax.Array:
  """The sign gain k >= 0 from its raw output: |raw| ('scaled') or softplus(raw)."""
  return jnp.abs(raw) if normalizer == "scaled" else jax.nn.softplus(raw)


def normalizer_constant(raw: jax.Array, normalizer: str, log_rms_g: jax.Array | None
                        ) -> jax.Array:
  """beta's term >= 0 from its raw output: exp(raw) ('exp'), or |raw| times the tensor's
  running gradient RMS ('scaled'; `log_rms_g` its log, 0.0 for beta's coefficient alone)."""
  if normalizer == "scaled":
    return jnp.abs(raw) * bounded_exp(log_rms_g)
  return bounded_exp(raw)


def _edge_numerator(g: jax.Array, s1: jax.Array, linear: jax.Array, hidden_in: jax.Array,
                    hidden_out: jax.Array) -> jax.Array:
  """l_g g + l_s s1' + sum_h w2_h relu(W_gh g + W_sh s1'), scalar-weighted array sums."""
  n = linear[0] * g + linear[1] * s1
  for h in range(hidden_out.shape[0]):
    n = n + hidden_out[h] * jax.nn.relu(hidden_in[0, h] * g + hidden_in[1, h] * s1)
  return n


def _plain_edge_numerator(features: jax.Array, coeffs: network.Coefficients) -> jax.Array:
  """The edge network on stacked features [..., F]: writes the [..., H] hidden array."""
  hidden = jax.nn.relu(features @ coeffs.hidden_in)
  return features @ coeffs.linear + hidden @ coeffs.hidden_out


def direction(inputs: tuple, w: jax.Array, first: FirstMoment, features: GraphFeatures,
              normalizer: str, form: str = "fused", s1_old: jax.Array | None = None,
              numerator: bool = False) -> tuple[jax.Array, ...]:
  """(d, its denominator), elementwise, from (g, s1', s2', p, row scale, column scale,
  beta's term) (see the module doc); `s1_old` is read by the plain form only. With
  `numerator`, (d without weight decay, the denominator, n)."""
  g, s1_new, s2_new, p, row_scale, col_scale, constant = inputs
  if form == "plain":
    read_g = g if first.input_gain is None else first.input_gain * g
    n = _plain_edge_numerator(
        jnp.stack([read_g, s1_old, s1_new, s1_new * first.inv_z], axis=-1), features.coeffs)
    if first.nesterov is not None:
      n = n + first.nesterov[0] * g + first.nesterov[1] * s1_new
  else:
    n = _edge_numerator(g, s1_new, *first.folded, features.coeffs.hidden_out)
  node_scale = row_scale * col_scale
  v = s2_new * features.inv_sqrt_z2
  if normalizer == "scaled":   # the node factor shapes only the constant term
    scale = jnp.abs(w[0]) * v + constant * node_scale
  else:
    scale = (jnp.abs(w[0]) * v + constant) * node_scale
  denominator = (scale + sign_gain(w[6], normalizer) * jnp.abs(n)
                 + jnp.exp(jnp.clip(w[7], -MAX_LOG, 0.0)) + TINY)
  d = n / denominator
  if numerator:
    return d, denominator, n
  d = d if p is None else d + features.weight_decay * p.astype(jnp.float32)
  return d, denominator


class TensorHop(NamedTuple):
  """One tensor's hop numbers (learned_opt.executor.hops): its plan, the round
  coefficients, mix, log gain and weight decay omega_t; `leaf` None: no rounds."""
  leaf: Any
  coeff_rows: jax.Array | None
  mix: jax.Array
  log_gain: jax.Array
  weight_decay: jax.Array


def _tensor_hops(encoded: Encoded, num_tensors: int) -> list[TensorHop | None]:
  """Per tensor its TensorHop (None without the multi-hop modules)."""
  hops, plan = encoded.hops, encoded.plan
  if hops is None:
    return [None] * num_tensors
  omega = jnp.maximum(encoded.graph.coeffs.weight_decay + hops.weight_decay, 0.0)
  return [TensorHop(plan.leaves[idx] if plan is not None and plan.runs_on(idx) else None,
                    hops.coeff_rows, hops.mix[idx], hops.log_gain[idx], omega[idx])
          for idx in range(num_tensors)]


def _hop_direction(inputs: tuple, run: Any, hop: TensorHop, form: str, s1_old: jax.Array
                   ) -> tuple[jax.Array, jax.Array, list[jax.Array]]:
  """(d, denominator, the rounds' iterates) of a tensor that runs the rounds:
  d = (1 - m) n / denominator + m e^l X_K + omega_t p."""
  plain, denominator, n = run(inputs, form=form, s1_old=s1_old, numerator=True)
  rounds, iterates = hops_lib.run_rounds(n, hop.leaf, hop.coeff_rows)
  gain = jnp.exp(jnp.clip(hop.log_gain, -MAX_LOG, MAX_LOG))
  d = (1.0 - hop.mix) * plain + hop.mix * gain * rounds
  p = inputs[3]
  return (d if p is None else d + hop.weight_decay * p.astype(jnp.float32)), denominator, iterates


def decode_tensor(edge: EdgeFeatures, factors: NodeFactors, w: jax.Array, rank: int,
                  features: GraphFeatures, config: ExecutorConfig, hand_set: HandSet,
                  form: str, hop: TensorHop | None = None) -> TensorOut:
  """One tensor's direction, its readouts and its integrator signal."""
  constant = normalizer_constant(w[5], config.normalizer, factors.log_rms)
  inputs = (edge.g, edge.s1_new, edge.s2_new, edge.p, factors.row_scale, factors.col_scale,
            constant)
  if hop is not None:   # per-tensor weight decay omega_t
    features = features._replace(weight_decay=hop.weight_decay)
  run = functools.partial(direction, w=w, first=edge.first, features=features,
                          normalizer=config.normalizer)
  iterates = None
  if hop is not None and hop.leaf is not None:
    d, denominator, iterates = _hop_direction(inputs, run, hop, form, edge.s1)
  else:
    d, denominator = run(inputs, form=form, s1_old=edge.s1)
  log_rms_d = log_rms_p = alignment = g_square = None
  if config.layer_readout:
    if form == "plain" or iterates is not None:   # the rounds' output is whole already
      read_d, read_p = d, edge.p
    else:
      sample = inputs
      if rank >= 2:
        old = (edge.g, edge.s1, edge.s2, edge.p, *inputs[4:])
        moments = functools.partial(edge_moments, a1=edge.first.decay, coeffs=features.coeffs,
                                    input_gain=edge.first.input_gain)
        sample = readout.readout_sample(old, inputs, moments, hand_set.readout_rows)
      read_p = sample[3]
      read_d = run(sample)[0] if config.direction_readout else None
    if config.direction_readout:
      log_rms_d = readout.log_rms(read_d)
    log_rms_p = readout.log_rms(read_p)
  if step_size.adapting(config, hand_set):
    pair = ((edge.g, edge.s1) if form == "plain" or rank < 2
            else readout.row_sample((edge.g, edge.s1), hand_set.readout_rows))
    alignment, g_square = readout.alignment(*pair)
  return TensorOut(d, denominator, log_rms_d, log_rms_p, alignment, g_square, iterates)


def layer_gains(outs: list[TensorOut], encoded: Encoded, integrator: step_size.IntegratorState,
                config: ExecutorConfig, hand_set: HandSet
                ) -> tuple[jax.Array, jax.Array, step_size.IntegratorState]:
  """(log mu per tensor, the clip excess, the integrator's new state)."""
  gain_coeffs = encoded.layers.gain_coeffs
  log_rms_d = None
  if config.layer_readout:
    if config.direction_readout:
      log_rms_d = jnp.stack([out.log_rms_d for out in outs])
    log_rms_p = jnp.stack([out.log_rms_p for out in outs])
    log_gain = readout.layer_log_gain(gain_coeffs, log_rms_p, log_rms_d)
  else:
    log_gain = jnp.zeros((len(outs),))
  # How far each tensor's direction sits above its clipping knot (log RMS(d) - tau_d),
  # for imitation's clip hint; with rule_clip_knots this is log RMS of Adafactor's u.
  clip_excess = (log_rms_d - gain_coeffs[:, network.DIRECTION_KNOT]
                 if log_rms_d is not None else jnp.zeros((len(outs),)))
  if step_size.adapting(config, hand_set):
    a, b, z = encoded.graph.coeffs.decays, encoded.graph.coeffs.gains, encoded.graph.z
    integrator = step_size.integrate(
        integrator, [out.alignment for out in outs], [out.g_square for out in outs],
        encoded.layers.step_rate, encoded.layers.step_target, (a[1], b[1], z[1]), hand_set)
    log_gain = log_gain + integrator.log_step
  if encoded.controls is not None:   # the learned controller's log step size
    log_gain = log_gain + encoded.controls.log_step
  return log_gain, clip_excess, integrator


def decode(encoded: Encoded, factors: list[NodeFactors], graph: ParamGraph,
           config: ExecutorConfig, hand_set: HandSet, integrator: step_size.IntegratorState,
           learning_rate: Any, count: jax.Array, form: str = "fused") -> Decoded:
  """The updates -lr mu d per tensor (float32), from the encoded features and the
  processor's node factors; `learning_rate` a number or a schedule of `count`."""
  tensor_hops = _tensor_hops(encoded, len(graph.tensors))
  outs = [decode_tensor(encoded.edges[idx], factors[idx], encoded.layers.normalizer[idx],
                        len(info.shape), encoded.graph, config, hand_set, form,
                        tensor_hops[idx])
          for idx, info in enumerate(graph.tensors)]
  log_gain, clip_excess, integrator = layer_gains(outs, encoded, integrator, config, hand_set)
  lr = learning_rate(count) if callable(learning_rate) else learning_rate
  gains = -lr * jnp.exp(jnp.clip(log_gain, -30.0, 30.0))
  updates = [gains[idx] * out.direction for idx, out in enumerate(outs)]
  log_rms_update = None
  if encoded.controls is not None:
    log_rms_update = jnp.log(jnp.abs(gains) + TINY) + jnp.stack(
        [jnp.zeros(()) if out.log_rms_d is None else out.log_rms_d for out in outs])
  return Decoded(updates, [out.denominator for out in outs], clip_excess, integrator,
                 [out.iterates for out in outs], log_rms_update)
