"""One executor step over the parameter graph, with the per-edge work fused.

Per parameter entry (edge), in gradient units, with graph-level coefficients
(a_k, b_k) and per-edge weights emitted by the hypernet:

  s1' = a1 s1 + b1 g                  running average with a learned decay
  s2' = sqrt(a2 s2^2 + b2 g^2)        running RMS with a learned decay
  z_k' = a_k z_k + b_k                the same averages of 1 (graph state): debiasing
  f   = [g, s1, s1', s1'/z1']
  n   = sum_i l_i f_i + sum_h w2_h relu(sum_i W1_ih f_i)      (bias-free, degree 1)

Per node (row/column processor, one hop, O(nodes) state):
  r_i' = a3 r_i + b3 mean_j g_ij^2,   c_j' = a3 c_j + b3 mean_i g_ij^2

Normalizer (a learned product of powers of scale statistics, per tensor exponents
w from the scale net):
  log D = w_v log v + w_r log sqrt(r_i) + w_c log sqrt(c_j) + w_m log sqrt(mean r)
          + w_n log |n| + w_0,            v = s2'/sqrt(z2')
  d = n / D + omega p                 (omega: learned weight-decay gain)

Layer readout (coefficients from the tensor net, see network.layer_log_gain):
  log mu = sum_r alpha r + beta relu(r - tau) + gamma [r is zero] + bias,
  r in (log rms(p), log rms(d)), and
  update = -lr mu d.

Every input of n and of D is positively homogeneous of degree 1 in the gradient,
so the update is exactly invariant to gradient scale whenever the exponents sum
to 1, which is what scale-free rules (Adam, RMSProp, Adafactor, Lion...) need;
SGD-like rules learn exponents summing to 0. No per-parameter hidden vector is
ever materialized: each hidden unit is a scalar-weighted sum of the 4 features,
which XLA fuses into one elementwise loop.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.executor import conditioning, network
from learned_opt.graph import EDGES, ParamGraph

PyTree = Any
_TINY = 1e-30
_MAX_LOG = 60.0  # exp(60) ~ 1e26: finite in float32 whatever the learned exponents


class ExecutorState(NamedTuple):
  """2 floats per parameter (s1, s2), O(nodes) row/column state, O(1) graph state."""
  count: jax.Array     # int32 scalar
  s1: PyTree           # per parameter, parameter dtype
  s2: PyTree           # per parameter, parameter dtype (>= 0)
  rows: PyTree         # per tensor: (*multiplicity, n_in) float32, or () for rank < 2
  cols: PyTree         # per tensor: (*multiplicity, n_out) float32, or () for rank < 2
  z: jax.Array         # (3,) float32: running averages of 1 (debiasing)


class Coefficients(NamedTuple):
  """Graph-level numbers the hypernet emits for one step."""
  decays: jax.Array    # (3,) a_k
  gains: jax.Array     # (3,) b_k
  linear: jax.Array    # (F,)
  hidden_in: jax.Array   # (F, H)
  hidden_out: jax.Array  # (H,)
  weight_decay: jax.Array  # ()


def init_state(params: PyTree) -> ExecutorState:
  """Zero state; accepts arrays or jax.ShapeDtypeStruct leaves."""
  def zeros(x):
    return jnp.zeros(x.shape, x.dtype)

  def node_zeros(x, axis):
    if len(x.shape) < 2:
      return jnp.zeros((), jnp.float32)
    shape = list(x.shape)
    del shape[axis]
    return jnp.zeros(tuple(shape), jnp.float32)

  return ExecutorState(
      count=jnp.zeros([], jnp.int32),
      s1=jax.tree.map(zeros, params), s2=jax.tree.map(zeros, params),
      rows=jax.tree.map(lambda x: node_zeros(x, -1), params),
      cols=jax.tree.map(lambda x: node_zeros(x, -2), params),
      z=jnp.zeros((3,), jnp.float32))


def tensor_features(graph: ParamGraph, min_dim_size_to_factor: float | None
                    ) -> jax.Array:
  """(num_tensors, NUM_TENSOR_FEATURES) static shape features of every tensor."""
  rows = []
  for info in graph.tensors:
    rank = len(info.shape)
    dims = sorted(info.shape)
    second = dims[-2] if rank >= 2 else 0
    if min_dim_size_to_factor and rank >= 2:
      relative = max(-2.0, min(2.0, math.log2(second / min_dim_size_to_factor) + 0.5))
    else:
      relative = -2.0
    rows.append([
        float(rank == 0), float(rank == 1), float(rank >= 2),
        math.log10(info.n_in) / 10 if rank >= 2 else 0.0,
        math.log10(info.shape[-1]) / 10 if rank >= 1 else 0.0,
        math.log10(max(info.size, 1)) / 10,
        math.log10(max(1, math.prod(info.multiplicity))) / 10,
        relative,
    ])
  return jnp.asarray(rows, jnp.float32).reshape(len(rows), network.NUM_TENSOR_FEATURES)


def split_hyper_outputs(out: jax.Array, config: network.ExecutorConfig) -> Coefficients:
  f, h = network.NUM_EDGE_FEATURES, config.edge_hidden
  raw_decay, raw_gain = out[0:3], out[3:6]
  i = 6
  linear = out[i:i + f]; i += f
  hidden_in = out[i:i + f * h].reshape(f, h); i += f * h
  hidden_out = out[i:i + h]; i += h
  weight_decay = out[i]
  # a = 1 - exp(q), q <= 0: a raw value near log(1 - beta) gives decay beta exactly.
  decays = 1.0 - jnp.exp(-jax.nn.softplus(-raw_decay))
  gains = jnp.exp(jnp.clip(raw_gain, -30.0, 10.0))
  return Coefficients(decays, gains, linear, hidden_in, hidden_out, weight_decay)


def _edge_numerator(features: list[jax.Array], coeffs: Coefficients) -> jax.Array:
  """sum_i l_i f_i + sum_h w2_h relu(sum_i W1_ih f_i), as scalar-weighted array sums."""
  n = sum(coeffs.linear[i] * f for i, f in enumerate(features))
  for h in range(coeffs.hidden_out.shape[0]):
    pre = sum(coeffs.hidden_in[i, h] * f for i, f in enumerate(features))
    n = n + coeffs.hidden_out[h] * jax.nn.relu(pre)
  return n


class StepOutput(NamedTuple):
  updates: PyTree
  state: ExecutorState
  predictions: dict[str, PyTree]   # hint predictions (debiased moments) for imitation


def executor_step(weights: Any, config: network.ExecutorConfig, graph: ParamGraph,
                  rule_id: jax.Array, hyper_features: jax.Array, learning_rate: Any,
                  tensor_feats: jax.Array, grads: PyTree, state: ExecutorState,
                  params: PyTree | None) -> StepOutput:
  """Runs the executor once. All arguments but `config`/`graph` may be traced."""
  nets = network.build(config)
  cond_fn, hyper_fn, tensor_fn = nets.apply
  c = cond_fn(weights, rule_id, hyper_features, conditioning.time_features(state.count))
  coeffs = split_hyper_outputs(hyper_fn(weights, c), config)
  per_tensor = tensor_fn(weights, c, tensor_feats)
  exponents = per_tensor[:, :network.NUM_SCALE_STATS + 1]
  gain_coeffs = per_tensor[:, network.NUM_SCALE_STATS + 1:]
  a, b = coeffs.decays, coeffs.gains
  z = a * state.z + b
  inv_z1, inv_sqrt_z2, inv_z3 = 1.0 / z[0], jax.lax.rsqrt(z[1]), 1.0 / z[2]

  g_leaves = graph.leaves(grads)
  p_leaves = graph.leaves(params) if params is not None else [None] * len(g_leaves)
  s1_leaves, s2_leaves = jax.tree.leaves(state.s1), jax.tree.leaves(state.s2)
  row_leaves, col_leaves = jax.tree.leaves(state.rows), jax.tree.leaves(state.cols)

  outs = []
  for idx, info in enumerate(graph.tensors):
    g = g_leaves[idx].astype(jnp.float32)
    s1 = s1_leaves[idx].astype(jnp.float32)
    s2 = s2_leaves[idx].astype(jnp.float32)
    s1_new = a[0] * s1 + b[0] * g
    s2_new = jnp.sqrt(a[1] * jnp.square(s2) + b[1] * jnp.square(g) + _TINY)
    m = s1_new * inv_z1
    v = s2_new * inv_sqrt_z2
    n = _edge_numerator([g, s1, s1_new, m], coeffs)
    w = exponents[idx]
    log_v = jnp.log(v + _TINY)
    if info.role == EDGES and config.node_messages:
      g2 = jnp.square(g)
      rows = a[2] * row_leaves[idx] + b[2] * jnp.mean(g2, axis=-1)
      cols = a[2] * col_leaves[idx] + b[2] * jnp.mean(g2, axis=-2)
      log_r = 0.5 * jnp.log(rows * inv_z3 + _TINY)
      log_c = 0.5 * jnp.log(cols * inv_z3 + _TINY)
      log_mean_r = 0.5 * jnp.log(jnp.mean(rows, axis=-1) * inv_z3 + _TINY)
      node_term = (w[1] * log_r[..., :, None] + w[2] * log_c[..., None, :]
                   + w[3] * log_mean_r[..., None, None])
      log_d = w[0] * log_v + node_term
    else:
      rows, cols = row_leaves[idx], col_leaves[idx]
      log_d = (w[0] + w[1] + w[2] + w[3]) * log_v
    log_d = log_d + w[4] * jnp.log(jnp.abs(n) + _TINY) + w[5]
    d = n * jnp.exp(-jnp.clip(log_d, -_MAX_LOG, _MAX_LOG))
    p = p_leaves[idx]
    if p is not None:
      d = d + coeffs.weight_decay * p.astype(jnp.float32)
    outs.append((d, s1_new, s2_new, rows, cols, m, v, p))

  if config.layer_readout:
    log_rms_d = jnp.stack([0.5 * jnp.log(jnp.mean(jnp.square(o[0])) + _TINY) for o in outs])
    log_rms_p = jnp.stack([0.5 * jnp.log(jnp.mean(jnp.square(o[7].astype(jnp.float32)))
                                         + _TINY) if o[7] is not None else jnp.zeros(())
                           for o in outs])
    log_gain = network.layer_log_gain(gain_coeffs, log_rms_p, log_rms_d)
  else:
    log_gain = jnp.zeros((len(outs),))
  lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
  gains = -lr * jnp.exp(jnp.clip(log_gain, -30.0, 30.0))

  updates, s1s, s2s, rows_out, cols_out, ms, vs = [], [], [], [], [], [], []
  for idx, (d, s1_new, s2_new, rows, cols, m, v, _) in enumerate(outs):
    dtype = g_leaves[idx].dtype
    updates.append((gains[idx] * d).astype(dtype))
    s1s.append(s1_new.astype(s1_leaves[idx].dtype))
    s2s.append(s2_new.astype(s2_leaves[idx].dtype))
    rows_out.append(rows.astype(jnp.float32))
    cols_out.append(cols.astype(jnp.float32))
    ms.append(m)
    vs.append(v)

  unflat = graph.unflatten
  new_state = ExecutorState(
      count=jnp.minimum(state.count, jnp.iinfo(jnp.int32).max - 1) + 1,
      s1=unflat(s1s), s2=unflat(s2s), rows=unflat(rows_out), cols=unflat(cols_out), z=z)
  return StepOutput(unflat(updates), new_state,
                    {"first_moment": unflat(ms), "second_moment_rms": unflat(vs)})
