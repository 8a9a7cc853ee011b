"""One executor step over the parameter graph, with the per-edge work fused.

Per parameter entry (edge), in gradient units, with graph-level coefficients
(a_k, b_k) and per-edge weights emitted by the hypernet:

  s1' = a1 s1 + b1 g                  running average with a learned decay
  s2' = sqrt(a2 s2^2 + b2 g^2)        running RMS with a learned decay
  z_k' = a_k z_k + b_k                the same averages of 1 (graph state): debiasing
  f   = [g, s1, s1', s1'/z1']
  n   = sum_i l_i f_i + sum_h w2_h relu(sum_i W1_ih f_i)      (bias-free, degree 1)

Every f_i is linear in (g, s1'), so the hypernet's weights are folded onto that
basis once per step and the per-edge program reads only g and s1'.

Per node (row/column processor, one hop, O(nodes) state):
  r_i' = a3 r_i + b3 mean_j g_ij^2,   c_j' = a3 c_j + b3 mean_i g_ij^2
(both mean squares from one read of g on GPU: learned_opt.executor.reductions)

Normalizer (per tensor, from the tensor net: node exponents w, a bias w_0, edge
weights alpha = |w_a| and beta >= 0 (exp(w_b) or |w_b|, see
ExecutorConfig.normalizer_constant), a sign gain k >= 0, an epsilon e):
  N_ij = exp(w_r log sqrt(r_i) + w_c log sqrt(c_j) + w_m log sqrt(mean r) + w_0)
  d = n / ((alpha v + beta) N_ij + k |n| + e) + omega p,      v = s2'/sqrt(z2')
(normalizer_constant='scaled': d = n / (alpha v + beta RMS(g) N_ij + k |n| + e) + omega p.)
Adam is alpha = 1, beta = 0, N = 1, e = eps; Adafactor the factored row/column
RMS in N; Lion k |n| (a soft sign); SGD beta = 1. omega is a learned weight-decay
gain. The powers are taken per node (O(nodes) logs and exps); per parameter the
normalizer costs a few multiply-adds and one division, like Adam's. With the
edge term on, d has degree -(w_r + w_c + w_m) in the gradient: positive
exponents make updates grow as gradients shrink, which meta-training can
learn and which stalls late training;
ExecutorConfig.normalizer_degree fixes w_m = degree - w_r - w_c (the mean row
RMS is also the mean column RMS, so degree 0 is the relative row and column RMS).

Layer readout (coefficients from the tensor net, see network.layer_log_gain):
  log mu = sum_r alpha r + beta relu(r - tau) + gamma [r is zero] + bias,
  r in (log rms(p), log rms(d)) (log rms(p) only with
  ExecutorConfig.direction_readout=False), and
  update = -lr mu d.
With ExecutorConfig.rule_gain_slopes the coefficients a rule's algorithm fixes
(Adafactor's parameter scale and clipping, LAMB's trust ratio, none for Adam or
SGD) are set, not learned (network.pin_rule_gain); with ExecutorConfig.rule_clip_knots
so is Adafactor's clipping knot, from the bias. With ExecutorConfig.rule_node_decays
Adafactor's row/column states follow its own schedule, a3 = 1 - (t + 1)^-0.8,
b3 = (t + 1)^-0.8 (`pin_rule_decays`), so they are its factored second moments; with
ExecutorConfig.rule_moment_decays so does s2 (a2, b2), its unfactored second moment.
With ExecutorConfig.rule_b2_decays=('adam',) Adam's s2 decays at its own b2
(`pin_b2_decay`).
Both RMS are read on a row sample of tensors with more than ExecutorConfig.readout_rows
in-neurons (`_row_sample`), so neither costs a pass over the tensor; readout_rows=0
reads whole tensors, exactly.

Step-size adaptation (ExecutorConfig.step_size_adaptation = beta > 0; off for
imitation): per tensor, a log step size l (O(layers) state) integrates the
cosine between the new gradient and the old first moment, read on the same row
sample, and adds to log mu:
  l' = clip(l + beta (cos(g, s1) - c), log f, log F),
c = ExecutorConfig.step_size_target, f = ExecutorConfig.min_step_size_factor
(1/30 by default), F = ExecutorConfig.max_step_size_factor (30 by default).
With ExecutorConfig.step_size_deadband = w > 0, cos - c is replaced by 0 where
it lies in [-w, 0] and by cos - c + w below: a gradient only slightly against
the momentum, as minibatch noise makes it at any step size, holds the step
instead of shrinking it; a clear reversal still does.
With ExecutorConfig.step_size_leak = lambda > 0, l decays toward 0 first:
  l' = clip((1 - lambda) l + beta (cos(g, s1) - c), log f, log F).
With ExecutorConfig.step_size_deadband_fall = K > 0 the band's width is
w (1 - clip(|f| / K, 0, 1)), f = log RMS(g) - log RMS(v) on the same sample
(`gradient_fall`, which keeps mean(v^2) as one number per tensor instead of
reading s2): how far the gradient sits off what the second moment remembers.
Gradients that vanish with the loss (interpolation), or that have settled at a
noise floor far below where they started, close the band, and so do gradients
that jump above it (an instability); gradients that minibatch noise keeps at
their usual level leave it open.
Gradients that keep agreeing with the momentum say the steps are short;
gradients that turn against it say they overshoot (hypergradient descent on the
log step size, with a scale-free signal). With c = 0 it settles where the next
gradient is orthogonal to the momentum, the greedy one-step optimum, whose steps
are too short over a long run (the log step sizes can fall to the lower bound); a
slightly negative c accepts some overshoot.

Every input of n and of D is positively homogeneous of degree 1 in the gradient,
so the update is exactly invariant to gradient scale whenever the exponents sum
to 1, which is what scale-free rules (Adam, RMSProp, Adafactor, Lion...) need;
SGD-like rules learn exponents summing to 0. No per-parameter hidden vector is
ever materialized: each hidden unit is a scalar-weighted sum of the 4 features,
which XLA fuses into one elementwise loop.

`form="plain"` runs the same network the way it is usually written, as a
reference and for the speed comparison: the features stacked into a
[..., F] array, a [F, H] matmul to a [..., H] hidden array, and the
direction's and the parameters' RMS read out on the whole tensor. It equals the fused form up to
rounding, except that the fused readout reads a row sample of tensors with
more than config.readout_rows in-neurons and the fused fold floors a1 at A1_FLOOR.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.executor import conditioning, network, reductions
from learned_opt.graph import EDGES, ParamGraph

PyTree = Any
_TINY = 1e-30
A1_FLOOR = 0.05  # see _folded_edge_weights
READOUT_ROWS = network.READOUT_ROWS  # ExecutorConfig.readout_rows' default; see _row_sample
MAX_STEP_SIZE_FACTOR = network.MAX_STEP_SIZE_FACTOR  # the adapted step's default upper bound
_MAX_LOG = 60.0  # exp(60) ~ 1e26: finite in float32 whatever the learned exponents
FORMS = ("fused", "plain")


class ExecutorState(NamedTuple):
  """2 floats per parameter (s1, s2), O(nodes) row/column state, O(1) graph state."""
  count: jax.Array     # int32 scalar
  s1: PyTree           # per parameter, parameter dtype
  s2: PyTree           # per parameter, parameter dtype (>= 0)
  rows: PyTree         # per tensor: (*multiplicity, n_in) float32, or () for rank < 2
  cols: PyTree         # per tensor: (*multiplicity, n_out) float32, or () for rank < 2
  z: jax.Array         # (3,) float32: running averages of 1 (debiasing)
  log_step: jax.Array  # (num_tensors,) float32: adapted log step sizes (0 unless adapting)
  # (num_tensors,) float32: running mean square of g per tensor (on the integrator's row
  # sample) with the second moment's decay and gain, for the dead band's gate (0 unless
  # gated): mean(s2^2) follows the same recursion, so this is what s2 remembers.
  grad_mean_square: jax.Array
  # (num_tensors,) float32: per tensor, the running average of 1 under its own
  # first-moment decay where ExecutorConfig.matrix_momentum_shift or
  # vector_momentum_shift moves it (0 elsewhere): its debiasing.
  z_first: jax.Array


class FirstMoment(NamedTuple):
  """A tensor's first-moment decay, 1 / its debiasing z1', and the edge network's
  weights folded onto (g, s1') with them (`_folded_edge_weights`)."""
  decay: jax.Array
  inv_z: jax.Array
  folded: tuple[jax.Array, jax.Array]


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
      z=jnp.zeros((3,), jnp.float32),
      log_step=jnp.zeros((len(jax.tree.leaves(params)),), jnp.float32),
      grad_mean_square=jnp.zeros((len(jax.tree.leaves(params)),), jnp.float32),
      z_first=jnp.zeros((len(jax.tree.leaves(params)),), jnp.float32))


def tensor_features(graph: ParamGraph, min_dim_size_to_factor: float | None
                    ) -> jax.Array:
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


factored_by_rule = network.factored_by_rule   # kept here beside tensor_features


def split_hyper_outputs(out: jax.Array, config: network.ExecutorConfig,
                        clock: Any) -> Coefficients:
  """The hypernet's raw outputs as Coefficients at step `clock` (see hyper_coefficients)."""
  f, h = network.NUM_EDGE_FEATURES, config.edge_hidden
  raw_decay, raw_gain = out[0:3], out[3:6]
  i = 6
  linear = out[i:i + f]; i += f
  hidden_in = out[i:i + f * h].reshape(f, h); i += f * h
  hidden_out = out[i:i + h]; i += h
  weight_decay = out[i]
  clock_term = None
  if config.clock_slopes:   # only the named averages' slopes count (static mask)
    used = [float(name in config.clock_slopes) for name in network.RUNNING_AVERAGES] * 2
    slopes = out[config.num_hyper_outputs:config.num_hyper_outputs + network.NUM_CLOCK_SLOPES]
    scaled = slopes * jnp.asarray(used, jnp.float32) * jnp.log1p(jnp.asarray(clock, jnp.float32))
    clock_term, raw_gain = scaled[:3], raw_gain + scaled[3:]
  decays = decay(raw_decay, config.decay_form, clock_term)
  gains = jnp.exp(jnp.clip(raw_gain, -30.0, 10.0))
  return Coefficients(decays, gains, linear, hidden_in, hidden_out, weight_decay)


def hyper_coefficients(weights: Any, config: network.ExecutorConfig, rule_id: jax.Array,
                       hyper_features: jax.Array, clock: Any
                       ) -> tuple[jax.Array, Coefficients]:
  """(conditioning vector c, the hypernet's graph-level Coefficients) at step `clock`.

  The clock the networks see stops at config.max_time (the longest run the weights
  were trained on), so longer runs hold the learned late-training behavior instead
  of extrapolating the time features. With config.clock_slopes, per running
  average k:
    -log(1 - a_k) = L_k(c) + s_k(c) log(1 + t),   log b_k = G_k(c) + u_k(c) log(1 + t),
  so a decay can grow with the clock at a rate the rule sets (Adafactor:
  a = 1 - (t + 1)^-0.8, b = (t + 1)^-0.8: L = 0, s = 0.8, G = 0, u = -0.8).
  """
  step = clock
  clock = jnp.minimum(clock, config.max_time) if config.max_time else clock
  cond_fn, hyper_fn, _ = network.build(config).apply
  c = cond_fn(weights, rule_id, hyper_features, conditioning.time_features(clock))
  coeffs = split_hyper_outputs(hyper_fn(weights, c), config, clock)
  coeffs = pin_rule_decays(coeffs, config, rule_id, step)
  return c, pin_b2_decay(coeffs, config, rule_id, hyper_features)


def pin_b2_decay(coeffs: Coefficients, config: network.ExecutorConfig, rule_id: jax.Array,
                 hyper_features: jax.Array) -> Coefficients:
  """`coeffs` with the second moment's decay b2 and gain 1 - b2 for the rules
  ExecutorConfig.rule_b2_decays names: b2 is the rule's keyword as the
  hyperparameter features carry it, or the rule's optax default where they do not (a
  keyword the executor was not trained on, which it refuses unless left at its default).
  The debiasing average z2 is then 1 - b2^t, so v is Adam's bias-corrected second moment.
  `coeffs` as is when it names none."""
  if not config.rule_b2_decays:
    return coeffs
  table = {rule: network.RULE_B2_DEFAULTS[rule] for rule in config.rule_b2_decays}
  pinned, default = network.per_rule(table, config, rule_id)
  index = conditioning.DECAY_FEATURE_INDEX["b2"]
  given = hyper_features[index - 1] > 0.5    # the slot's "present" feature
  b2 = jnp.where(given, hyper_features[index], default)
  return coeffs._replace(
      decays=coeffs.decays.at[1].set(jnp.where(pinned, b2, coeffs.decays[1])),
      gains=coeffs.gains.at[1].set(jnp.where(pinned, 1.0 - b2, coeffs.gains[1])))


def pin_rule_decays(coeffs: Coefficients, config: network.ExecutorConfig, rule_id: jax.Array,
                    step: Any) -> Coefficients:
  """`coeffs` with decay 1 - k and gain k, k = (t + 1)^-rate, for the rules in
  network.RULE_DECAY_RATES: on the row/column average with ExecutorConfig.rule_node_decays,
  on the second moment s2 with ExecutorConfig.rule_moment_decays (else `coeffs` as is).
  The step t is the true one, not capped at config.max_time, as the rule's own schedule."""
  averages = [i for i, on in ((1, config.rule_moment_decays), (2, config.rule_node_decays))
              if on]
  if not averages:
    return coeffs
  pinned, rate = network.per_rule(network.RULE_DECAY_RATES, config, rule_id)
  keep = jnp.power(jnp.asarray(step, jnp.float32) + 1.0, -rate)
  index = jnp.asarray(averages)
  return coeffs._replace(
      decays=coeffs.decays.at[index].set(jnp.where(pinned, 1.0 - keep, coeffs.decays[index])),
      gains=coeffs.gains.at[index].set(jnp.where(pinned, keep, coeffs.gains[index])))


def decay(raw: jax.Array, form: str, clock_term: jax.Array | None = None) -> jax.Array:
  """A running average's decay in [0, 1) from its raw output (ExecutorConfig.decay_form).

  'softplus': 1 - exp(-softplus(-raw)), raw ~ log(1 - a) toward a = 1; 'abs':
  1 - exp(-|raw|), raw ~ -log(1 - a), with a live gradient at a = 0. `clock_term`
  (ExecutorConfig.clock_slopes) adds to -log(1 - a), floored at 0 (a >= 0); its
  gradient does not vanish at a = 0 under either form.
  """
  neg_log_keep = jnp.abs(raw) if form == "abs" else jax.nn.softplus(-raw)
  if clock_term is not None:
    neg_log_keep = jnp.maximum(neg_log_keep + clock_term, 0.0)
  return 1.0 - jnp.exp(-neg_log_keep)


def is_matrix(info) -> bool:
  """A plain weight matrix: rank 2, no multiplicity (not a kernel, bias or scalar);
  the tensors ExecutorConfig.matrix_momentum_shift applies to."""
  return len(info.shape) == 2 and info.role == EDGES


def momentum_shift(info, config: network.ExecutorConfig) -> float:
  """The tensor's first-moment memory shift: matrix_momentum_shift on plain weight
  matrices, vector_momentum_shift on vectors and scalars (biases, gains, a
  quadratic's point), 0 on kernels and other batched tensors."""
  if is_matrix(info):
    return config.matrix_momentum_shift
  return config.vector_momentum_shift if len(info.shape) <= 1 else 0.0


def shifted_first_decay(a1: jax.Array, shift: float) -> jax.Array:
  """A shifted first-moment decay: 1 - a1 (about 1 / its memory) times e^shift,
  so the memory is e^shift times shorter (floored at a decay of 0). The same as moving
  the hypernet's raw decay output by shift where the memory is long (softplus form:
  ship's --decay_shift=first:shift does it on every tensor)."""
  return jnp.maximum(1.0 - (1.0 - a1) * math.exp(shift), 0.0)


def _folded_edge_weights(coeffs: Coefficients, inv_z1: jax.Array
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


def _bounded_exp(x: jax.Array) -> jax.Array:
  """exp(x) with x clipped to +-_MAX_LOG / 2, so products of two stay finite in float32."""
  return jnp.exp(jnp.clip(x, -_MAX_LOG / 2, _MAX_LOG / 2))


def sign_gain(raw: jax.Array, kind: str) -> jax.Array:
  """The sign gain k >= 0 from its raw output (see network.ExecutorConfig.sign_gain)."""
  return jnp.abs(raw) if kind == "abs" else jax.nn.softplus(raw)


def normalizer_constant(raw: jax.Array, kind: str, log_rms_g: jax.Array | None) -> jax.Array:
  """beta's term >= 0 from its raw output (see network.ExecutorConfig.normalizer_constant).

  'scaled' multiplies |raw| by the tensor's running gradient RMS (`log_rms_g`, its log;
  0.0 gives beta's coefficient alone).
  """
  if kind == "exp":
    return _bounded_exp(raw)
  if kind == "abs":
    return jnp.abs(raw)
  return jnp.abs(raw) * _bounded_exp(log_rms_g)


def _node_degree(config: network.ExecutorConfig, rule_id: jax.Array) -> Any:
  """The node factor's fixed degree in the gradient, or None (free exponents).

  ExecutorConfig.normalizer_degree when set; else, with ExecutorConfig.rule_node_degree,
  per rule: -1 for SGD-like rules (network.SGD_LIKE_RULES: beta RMS(g) N is then the
  constant 1 the update divides by) and 0 for the others, so that what a scale-free
  rule's beta term holds is scale-free too.
  """
  if config.normalizer_degree is not None:
    return config.normalizer_degree
  if not config.rule_node_degree:
    return None
  table = jnp.asarray([-1.0 if rule in network.SGD_LIKE_RULES else 0.0
                       for rule in config.rules], jnp.float32)
  return table[rule_id]


def _row_sample(arrays: tuple, max_rows: int = READOUT_ROWS) -> tuple:
  """Every k-th in-neuron row (axis -2) of each array that has that axis, k = ceil(n / max_rows).

  max_rows = 0 (ExecutorConfig.readout_rows=0) returns the arrays whole.

  The direction's and the parameters' RMS are read out on this sample: the
  direction is then never written to memory (it is computed once for the
  update and once, on at most `max_rows` rows per tensor, for the readout; a
  full reduction would force XLA to materialize it), and the parameters' RMS
  costs no pass over the tensor. Tensors with at most `max_rows` in-neurons are
  read exactly. Scalars and size-1 axes broadcast and pass through. The sample's
  RMS is off by about 1 / sqrt(2 n) for n sampled entries. Reading whole tensors
  (max_rows = 0), the compiled CPU step writes the direction once (4 floats
  written per parameter instead of 3).
  """
  if max_rows <= 0:
    return arrays
  rows = max(x.shape[-2] for x in arrays if x is not None and x.ndim >= 2)
  stride = -(-rows // max_rows)
  if stride == 1:
    return arrays
  def take(x):
    if x is None or x.ndim < 2 or x.shape[-2] == 1:
      return x
    return x[..., ::stride, :]
  return tuple(take(x) for x in arrays)


def _sample_of_old(old: tuple, new_moments: Any, max_rows: int = READOUT_ROWS) -> tuple:
  """The same sample sliced from (g, s1, s2, p, ...), its new moments recomputed on it."""
  g, s1, s2, p, row_scale, col_scale, constant = _row_sample(old, max_rows)
  return (g, *new_moments(g, s1, s2), p, row_scale, col_scale, constant)


def _readout_sample(old: tuple, new: tuple, new_moments: Any,
                    max_rows: int = READOUT_ROWS) -> tuple:
  """The readout's row sample of (g, s1', s2', p, row scale, column scale, constant).

  `old` holds the old moments in place of the new ones. Both ways give the same
  numbers; they differ in what XLA can fuse. On a GPU the sample is sliced from
  the old state and its new moments recomputed on it: the full-size s1', s2'
  then have no reader but the update's own loop, and XLA emits s1', s2' and the
  update in one multi-output kernel from one read of (g, s1, s2, p). XLA:CPU does
  not fuse multiple outputs; there the sample is sliced from the written s1', s2'
  (the GPU form would cost copies of the donated moments).
  """
  return jax.lax.platform_dependent(
      old, new, cuda=lambda old, new: _sample_of_old(old, new_moments, max_rows),
      default=lambda old, new: _row_sample(new, max_rows))


def deadband(x: jax.Array, width: float | jax.Array) -> jax.Array:
  """x above 0, x + width below -width, 0 between: the integrator's signal with a band
  of cosines just under the target that hold the step size still
  (ExecutorConfig.step_size_deadband). `width` may be an array (per tensor)."""
  if isinstance(width, (int, float)) and not width:
    return x
  return jnp.where(x > 0, x, jnp.minimum(x + width, 0.0))


def gradient_fall(square: jax.Array, running: jax.Array, a2: jax.Array, b2: jax.Array,
                  z2: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(f, m') per tensor: f = log RMS(g) - log sqrt(m' / z2'), m' = a2 m + b2 mean(g^2).

  `square` is mean(g^2); m' / z2' is the debiased mean of v^2 = s2'^2 / z2', since
  s2'^2 = a2 s2^2 + b2 g^2 elementwise: f < 0 where the gradient has fallen below what
  the second moment remembers, f > 0 where it has jumped above it; s2 is never read.
  """
  running = a2 * running + b2 * square
  return 0.5 * (jnp.log(square + _TINY) - jnp.log(running / z2 + _TINY)), running


def gated_width(width: float, fall: jax.Array, scale: float) -> jax.Array:
  """The dead band's width where the gradient sits `fall` (log RMS, `gradient_fall`)
  off its long memory: w at 0, closing linearly to 0 at `scale` below or above (a
  gradient that vanishes with the loss, or one that jumps in an instability)."""
  return width * (1.0 - jnp.clip(jnp.abs(fall) / scale, 0.0, 1.0))


def _alignment(g: jax.Array, s1: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(cos(g, s1) over all entries, 0 where either is all zero; mean(g^2)), float32."""
  g, s1 = g.astype(jnp.float32), s1.astype(jnp.float32)
  g_squares = jnp.sum(g * g)
  cos = jnp.sum(g * s1) / jnp.sqrt(g_squares * jnp.sum(s1 * s1) + _TINY)
  return cos, g_squares / max(g.size, 1)


def _edge_numerator(g: jax.Array, s1: jax.Array, linear: jax.Array, hidden_in: jax.Array,
                    hidden_out: jax.Array) -> jax.Array:
  """l_g g + l_s s1' + sum_h w2_h relu(W_gh g + W_sh s1'), scalar-weighted array sums."""
  n = linear[0] * g + linear[1] * s1
  for h in range(hidden_out.shape[0]):
    n = n + hidden_out[h] * jax.nn.relu(hidden_in[0, h] * g + hidden_in[1, h] * s1)
  return n


def _plain_edge_numerator(features: jax.Array, coeffs: Coefficients) -> jax.Array:
  """The edge network on stacked features [..., F]: writes the [..., H] hidden array."""
  hidden = jax.nn.relu(features @ coeffs.hidden_in)
  return features @ coeffs.linear + hidden @ coeffs.hidden_out


class StepOutput(NamedTuple):
  updates: PyTree
  state: ExecutorState
  # Hint predictions for imitation: the debiased moments and the denominator the
  # direction divides by (pytrees), and per tensor (graph order) how far log RMS of the
  # direction sits above its clipping knot ('clip_excess').
  predictions: dict[str, PyTree]


def executor_step(weights: Any, config: network.ExecutorConfig, graph: ParamGraph,
                  rule_id: jax.Array, hyper_features: jax.Array, learning_rate: Any,
                  tensor_feats: jax.Array, grads: PyTree, state: ExecutorState,
                  params: PyTree | None, form: str = "fused") -> StepOutput:
  """Runs the executor once. All arguments but `config`/`graph`/`form` may be traced."""
  if form not in FORMS:
    raise ValueError(f"Unknown executor form {form!r}; use one of {FORMS}.")
  _, _, tensor_fn = network.build(config).apply
  c, coeffs = hyper_coefficients(weights, config, rule_id, hyper_features, state.count)
  per_tensor = tensor_fn(weights, c, tensor_feats)
  normalizer = per_tensor[:, :network.NUM_NORMALIZER_OUTPUTS]
  gain_coeffs = per_tensor[:, network.NUM_NORMALIZER_OUTPUTS:network.NUM_TENSOR_OUTPUTS]
  if config.rule_gain_slopes:
    gain_coeffs = network.pin_rule_gain(gain_coeffs, config, rule_id)
  adapting = bool(config.step_size_adaptation) or config.learned_step_size
  step_rate, step_target = config.step_size_adaptation, config.step_size_target
  if config.learned_step_size:
    head = per_tensor[:, network.NUM_TENSOR_OUTPUTS:]
    step_rate = jnp.maximum(step_rate + head[:, 0], 0.0)
    step_target = step_target + head[:, 1]
  a, b = coeffs.decays, coeffs.gains
  z = a * state.z + b
  inv_z1, inv_sqrt_z2, inv_z3 = 1.0 / z[0], jax.lax.rsqrt(z[1]), 1.0 / z[2]
  # Per tensor: its FirstMoment; the tensors of one momentum shift share it (and
  # their z1' recursion).
  shifts = [momentum_shift(info, config) for info in graph.tensors]
  by_shift = {0.0: FirstMoment(a[0], inv_z1, _folded_edge_weights(coeffs, inv_z1))}
  z_first = state.z_first
  for shift in sorted(set(shifts) - {0.0}):
    members = [i for i, value in enumerate(shifts) if value == shift]
    a1 = shifted_first_decay(a[0], shift)
    z1 = a1 * state.z_first[members[0]] + b[0]
    z_first = z_first.at[jnp.asarray(members)].set(z1)
    moved = coeffs._replace(decays=coeffs.decays.at[0].set(a1))
    by_shift[shift] = FirstMoment(a1, 1.0 / z1, _folded_edge_weights(moved, 1.0 / z1))
  first = [by_shift[shift] for shift in shifts]
  # Decoupled weight decay can only pull weights toward zero: meta-training on short
  # horizons otherwise learns a negative one (growing weights lowers the loss for a few
  # hundred steps, then diverges).
  weight_decay = jnp.maximum(coeffs.weight_decay, 0.0)

  g_leaves = graph.leaves(grads)
  p_leaves = graph.leaves(params) if params is not None else [None] * len(g_leaves)
  s1_leaves, s2_leaves = jax.tree.leaves(state.s1), jax.tree.leaves(state.s2)
  row_leaves, col_leaves = jax.tree.leaves(state.rows), jax.tree.leaves(state.cols)
  scaled_constant = config.normalizer_constant == "scaled"
  degree = _node_degree(config, rule_id)

  def direction(g, s1_new, s2_new, p, row_scale, col_scale, constant, w, first, s1_old=None,
                with_denominator=False):
    """d = n / ((alpha v + beta) N + k |n| + e) + omega p, elementwise (constant: beta).

    With normalizer_constant='scaled': d = n / (alpha v + beta N + k |n| + e) + omega p.
    `first`: the tensor's FirstMoment. `with_denominator`: (d, the denominator).
    """
    if form == "plain":
      n = _plain_edge_numerator(
          jnp.stack([g, s1_old, s1_new, s1_new * first.inv_z], axis=-1), coeffs)
    else:
      n = _edge_numerator(g, s1_new, *first.folded, coeffs.hidden_out)
    node_scale = row_scale * col_scale
    v = s2_new * inv_sqrt_z2
    if scaled_constant:   # the node factor shapes only the constant term
      scale = jnp.abs(w[0]) * v + constant * node_scale
    else:
      scale = (jnp.abs(w[0]) * v + constant) * node_scale
    denominator = (scale + sign_gain(w[6], config.sign_gain) * jnp.abs(n)
                   + jnp.exp(jnp.clip(w[7], -_MAX_LOG, 0.0)) + _TINY)
    d = n / denominator
    d = d if p is None else d + weight_decay * p.astype(jnp.float32)
    return (d, denominator) if with_denominator else d

  def new_moments(g, s1, s2, a1):
    """(s1', s2') from the gradient and the old moments, elementwise (a1: the first
    moment's decay for this tensor)."""
    scaled_g = jnp.sqrt(b[1]) * g   # (sqrt(b) g)^2: not CSE'd with the row squares
    return a1 * s1 + b[0] * g, jnp.sqrt(a[1] * jnp.square(s2) + scaled_g * scaled_g + _TINY)

  gated = adapting and config.step_size_deadband > 0 and config.step_size_deadband_fall > 0
  outs, log_rms_d, log_rms_p, alignments, g_squares = [], [], [], [], []
  for idx, info in enumerate(graph.tensors):
    g = g_leaves[idx].astype(jnp.float32)
    s1 = s1_leaves[idx].astype(jnp.float32)
    s2 = s2_leaves[idx].astype(jnp.float32)
    s1_new, s2_new = new_moments(g, s1, s2, first[idx].decay)
    w = normalizer[idx]
    p = p_leaves[idx]
    if info.role == EDGES and config.node_messages:
      row_squares, col_squares = reductions.mean_squares(g)
      rows = a[2] * row_leaves[idx] + b[2] * row_squares
      cols = a[2] * col_leaves[idx] + b[2] * col_squares
      log_r = 0.5 * jnp.log(rows * inv_z3 + _TINY)
      log_c = 0.5 * jnp.log(cols * inv_z3 + _TINY)
      log_mean_r = 0.5 * jnp.log(jnp.mean(rows, axis=-1) * inv_z3 + _TINY)
      w_mean = w[3] if degree is None else degree - w[1] - w[2]
      row_scale = _bounded_exp(w[1] * log_r + (w_mean * log_mean_r + w[4])[..., None])[..., None]
      col_scale = _bounded_exp(w[2] * log_c)[..., None, :]
      log_mean_r = log_mean_r[..., None, None]
    elif scaled_constant:
      # The tensor's running mean square (a scalar state), for the constant's scale and
      # the node factor's (mean row) exponent; matrices without node messages read it
      # on their row state.
      edges = info.role == EDGES
      squares = jnp.mean(jnp.square(g), axis=-1) if edges else jnp.mean(jnp.square(g))
      rows, cols = a[2] * row_leaves[idx] + b[2] * squares, col_leaves[idx]
      mean_r = jnp.mean(rows, axis=-1)[..., None, None] if edges else rows
      log_mean_r = 0.5 * jnp.log(mean_r * inv_z3 + _TINY)
      w_mean = w[3] if degree is None else degree
      row_scale, col_scale = _bounded_exp(w_mean * log_mean_r + w[4]), jnp.ones(())
    else:
      rows, cols = row_leaves[idx], col_leaves[idx]
      row_scale, col_scale = _bounded_exp(w[4]), jnp.ones(())
      log_mean_r = None
    constant = normalizer_constant(w[5], config.normalizer_constant, log_mean_r)
    inputs = (g, s1_new, s2_new, p, row_scale, col_scale, constant)
    d, denominator = direction(*inputs, w, first[idx], s1_old=s1, with_denominator=True)
    if config.layer_readout:
      if form == "plain":
        readout, p_read = d, p
      elif len(info.shape) >= 2:
        sample = _readout_sample((g, s1, s2, p, row_scale, col_scale, constant), inputs,
                                 functools.partial(new_moments, a1=first[idx].decay),
                                 config.readout_rows)
      else:
        sample = inputs
      if form != "plain":
        p_read = sample[3]
        readout = direction(*sample, w, first[idx]) if config.direction_readout else None
      if config.direction_readout:
        log_rms_d.append(0.5 * jnp.log(jnp.mean(jnp.square(readout)) + _TINY))
      log_rms_p.append(jnp.zeros(()) if p is None else
                       0.5 * jnp.log(jnp.mean(jnp.square(p_read.astype(jnp.float32))) + _TINY))
    if adapting:
      pair = ((g, s1) if form == "plain" or len(info.shape) < 2
              else _row_sample((g, s1), config.readout_rows))
      cos, g_square = _alignment(*pair)
      alignments.append(cos)
      g_squares.append(g_square)
    outs.append((d, s1_new, s2_new, rows, cols, s1_new * first[idx].inv_z, s2_new * inv_sqrt_z2,
                 denominator))

  if config.layer_readout:
    log_rms_d = jnp.stack(log_rms_d) if config.direction_readout else None
    log_rms_p = jnp.stack(log_rms_p)
    log_gain = network.layer_log_gain(gain_coeffs, log_rms_p, log_rms_d)
  else:
    log_gain = jnp.zeros((len(outs),))
  # How far each tensor's direction sits above its clipping knot (log RMS(d) - tau_d),
  # for imitation's clip hint; with rule_clip_knots this is log RMS of Adafactor's u.
  clip_excess = (log_rms_d - gain_coeffs[:, network.DIRECTION_KNOT]
                 if config.layer_readout and config.direction_readout
                 else jnp.zeros((len(outs),)))
  log_step, grad_mean_square = state.log_step, state.grad_mean_square
  if adapting:
    width = config.step_size_deadband
    if gated:
      fall, grad_mean_square = gradient_fall(jnp.stack(g_squares), grad_mean_square, a[1], b[1],
                                             z[1])
      width = gated_width(width, fall, config.step_size_deadband_fall)
    signal = deadband(jnp.stack(alignments) - step_target, width)
    if config.step_size_leak:
      log_step = (1.0 - config.step_size_leak) * log_step
    log_step = jnp.clip(log_step + step_rate * signal, math.log(config.min_step_size_factor),
                        math.log(config.max_step_size_factor))
    log_gain = log_gain + log_step
  lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
  gains = -lr * jnp.exp(jnp.clip(log_gain, -30.0, 30.0))

  updates, s1s, s2s, rows_out, cols_out, ms, vs, dens = ([] for _ in range(8))
  for idx, (d, s1_new, s2_new, rows, cols, m, v, denominator) in enumerate(outs):
    dtype = g_leaves[idx].dtype
    updates.append((gains[idx] * d).astype(dtype))
    s1s.append(s1_new.astype(s1_leaves[idx].dtype))
    s2s.append(s2_new.astype(s2_leaves[idx].dtype))
    rows_out.append(rows.astype(jnp.float32))
    cols_out.append(cols.astype(jnp.float32))
    ms.append(m)
    vs.append(v)
    dens.append(denominator)

  unflat = graph.unflatten
  new_state = ExecutorState(
      count=jnp.minimum(state.count, jnp.iinfo(jnp.int32).max - 1) + 1,
      s1=unflat(s1s), s2=unflat(s2s), rows=unflat(rows_out), cols=unflat(cols_out), z=z,
      log_step=log_step, grad_mean_square=grad_mean_square, z_first=z_first)
  return StepOutput(unflat(updates), new_state,
                    {"first_moment": unflat(ms), "second_moment_rms": unflat(vs),
                     "denominator": unflat(dens), "clip_excess": clip_excess})
