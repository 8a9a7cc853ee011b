"""The executor's learned pieces (haiku): encoders and processors above the edges.

Everything here is small and runs once per step (graph level) or once per tensor
(layer level); nothing here touches a per-parameter array. The per-edge work
(`learned_opt.executor.step`) uses the numbers these networks emit as the weights
of a fused elementwise program.

  hypernet  (graph level): conditioning c = [rule embedding, hyperparameter
            features, time features] -> decays and gains of the running averages,
            the weights of the per-edge update network, and a weight-decay gain.
  tensor_net (layer level): [c, tensor shape features] -> per tensor, the
            log-exponents that combine scale statistics into the update's
            normalizer, and the coefficients of the layer gain: a linear term and
            a learned hinge on each log-RMS readout (parameter, direction), their
            "all zero" flags and a bias. Trust ratios (LAMB, LARS), update
            clipping and parameter scaling (Adafactor) are all of this form, and
            the coefficients depend on the rule, so the readouts enter bilinearly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from learned_opt.executor import conditioning

NUM_EDGE_FEATURES = 4     # g, s1 (before), s1 (after), s1 debiased
# Per tensor normalizer outputs (see learned_opt.executor.step): alpha (weight of v),
# the exponents of row rms, column rms and mean row rms, the log-scale bias, log beta,
# the raw sign gain and log epsilon.
NUM_NORMALIZER_OUTPUTS = 8
# Per readout r in (log rms param, log rms direction): linear, hinge, hinge knot, zero flag.
NUM_GAIN_COEFFS = 2 * 4 + 1
NUM_TENSOR_OUTPUTS = NUM_NORMALIZER_OUTPUTS + NUM_GAIN_COEFFS
# Tensor-net output index of the first coefficient (linear, then hinge, knot, zero flag)
# on log RMS(direction); see layer_log_gain.
DIRECTION_GAIN_INDEX = NUM_NORMALIZER_OUTPUTS + 4
# Column of the direction's knot tau_d among the NUM_GAIN_COEFFS layer gain coefficients.
DIRECTION_KNOT = DIRECTION_GAIN_INDEX - NUM_NORMALIZER_OUTPUTS + 2
# Per rule, the layer gain's coefficients (layer_log_gain's order: alpha, beta, tau, gamma
# on log RMS(p), the same on log RMS(d), then the bias) that the rule's own algorithm has;
# None: learned (ExecutorConfig.rule_gain_slopes). Adafactor multiplies by max(1e-3,
# RMS(p)) (optax's parameter scale) and divides by max(1, RMS(u)) (update clipping at 1,
# where the executor's d = c u: its knot tau_d = log c is learned, or with
# ExecutorConfig.rule_clip_knots set from the bias, RULE_CLIP_KNOTS); LAMB's trust ratio is
# RMS(p) / RMS(u); Adam-like rules and SGD read neither. Rules not named are left free.
_LOG_MIN_PARAM_SCALE = math.log(1e-3)
_READS_NEITHER = (0.0, 0.0, None, 0.0, 0.0, 0.0, None, 0.0, None)
RULE_GAIN_COEFFS = {
    **{rule: _READS_NEITHER for rule in ("sgd", "rmsprop", "adam", "adamw", "nadam",
                                         "lion", "adabelief", "adagrad")},
    "adafactor": (0.0, 1.0, _LOG_MIN_PARAM_SCALE, _LOG_MIN_PARAM_SCALE,
                  0.0, -1.0, None, None, None),
    "lamb": (1.0, 0.0, None, None, -1.0, 0.0, None, None, None),
}
# Per rule that clips its update at RMS(u) = 1 (ExecutorConfig.rule_clip_knots): k in
# tau_d = k - bias. With Adafactor's pinned parameter term, which reads max(RMS(p), 1e-3)
# / 1e-3, the executor's update is lr max(RMS(p), 1e-3) u' clip with u' = e^(bias - log
# 1e-3) d, so u' reaches RMS 1 (optax's clipping_threshold) where log RMS(d) = log 1e-3 - bias.
RULE_CLIP_KNOTS = {"adafactor": _LOG_MIN_PARAM_SCALE}
# Per rule whose second moments follow a schedule in the step t: with
# ExecutorConfig.rule_node_decays the row/column states, r' = (1 - k) r + k mean_j g^2,
# with ExecutorConfig.rule_moment_decays the per-parameter one, s2'^2 = (1 - k) s2^2 + k g^2,
# k = (t + 1)^-rate; Adafactor's with optax's default decay_rate.
RULE_DECAY_RATES = {"adafactor": 0.8}
# The rules whose second moment can decay at their own b2 keyword, with Adam's bias
# correction (those ExecutorConfig.rule_b2_decays names), and their optax default b2.
RULE_B2_DEFAULTS = {"adam": 0.999, "adamw": 0.999, "nadam": 0.999, "lamb": 0.999}
# The layer readouts' row sample (ExecutorConfig.readout_rows): tensors with more
# in-neurons are read on every k-th row, k = ceil(rows / READOUT_ROWS).
READOUT_ROWS = 64
NUM_TENSOR_FEATURES = 8
# learned_opt.executor.step.tensor_features' columns: rank flags, then the sizes (log10 of
# in-neurons, out-neurons, entries and multiplicity, / 10), then where the second largest
# dimension sits against adafactor's min_dim_size_to_factor.
SIZE_COLUMNS = (3, 4, 5, 6)
FACTORING_COLUMN = 7
UNFACTORED = -2.0   # the factoring column of a tensor the rule does not factor
# The step-size integrator keeps its adapted step within [min_step_size_factor,
# max_step_size_factor] x the learned one, by default [1/30, 30] (ExecutorConfig;
# learned_opt.executor.step).
MAX_STEP_SIZE_FACTOR = 30.0

# With ExecutorConfig.learned_step_size, the tensor net's last columns: offsets to the
# step-size integrator's rate and target (learned_opt.executor.step).
NUM_STEP_SIZE_OUTPUTS = 2
# With ExecutorConfig.clock_slopes, the hypernet's last columns: per running average k,
# the slope of -log(1 - a_k) and of log b_k in log(1 + t) (three each).
NUM_CLOCK_SLOPES = 6
RUNNING_AVERAGES = ("first", "second", "node")   # a1 (s1), a2 (s2), a3 (rows, columns)
SIGN_GAINS = ("softplus", "abs")
DECAY_FORMS = ("softplus", "abs")
NORMALIZER_CONSTANTS = ("exp", "abs", "scaled")
# Rules whose update is not invariant to the gradient's scale before their layer gain:
# with normalizer_constant='scaled' their node factor has degree -1, the others' 0.
SGD_LIKE_RULES = ("sgd", "lars")
_LOG_ZERO = -25.0     # log-RMS at or below this counts as an all-zero tensor
_MAX_LOG_EPS = 60.0   # log epsilon of the SGD prior: -60, the lower clip in step.py (none)


@dataclasses.dataclass(frozen=True)
class ExecutorConfig:
  """Architecture of an executor; saved in every checkpoint beside the weights.

  Options that add a head say so; `complete_weights` adds it, at zero, to a
  checkpoint trained without it. The others keep the weights' shapes.

  Attributes:
    rules: rule names the embedding table has rows for (order matters).
    embed_dim: width of the rule embedding.
    hidden: width of the graph- and layer-level MLPs.
    edge_hidden: hidden units of the per-edge (fused elementwise) network.
    node_messages: use row/column mean-square aggregations (one-hop processor);
      False gives a purely per-edge (zero-hop) processor.
    layer_readout: use the layer gain from log-RMS readouts (graph pooling per tensor).
    direction_readout: the layer gain also reads the direction's RMS (trust ratios
      such as LAMB's need it). False reads only the parameters' RMS, so the gain
      cannot undo the direction's own shrinking late in training (`layer_log_gain`).
      Default True.
    normalizer_degree: None (default) leaves the normalizer's node exponents (row,
      column, mean row) free; a number d fixes the mean row's exponent to
      d - (row + column), so the node factor is homogeneous of degree d in the
      gradient. 0.0 keeps an Adam-like direction (edge term on) of degree 0, as
      Adam's: the node factor is the relative row and column RMS, and updates cannot
      grow as gradients shrink (learned_opt.executor.step).
    step_size_adaptation: rate beta of a per-tensor step-size integrator
      (hypergradient style, learned_opt.executor.step): each step the tensor's log
      step size l moves by beta (c - step_size_target), c the cosine between the new
      gradient and the old first moment on the readout's row sample, clipped to
      [log min_step_size_factor, log max_step_size_factor]. Aligned gradients
      (steps too short) raise it, oscillation (steps too long) lowers it. 0.0
      (default): l stays 0, as every imitated rule needs.
    step_size_target: the cosine at which l holds still (default 0.0).
    min_step_size_factor: lower bound of the adapted step, as a factor of the
      learned one; in (0, 1], default 1/MAX_STEP_SIZE_FACTOR (bounds symmetric in
      log space). Minibatch noise turns the gradient against the momentum at any
      step size, so the signal keeps shrinking the step; a floor nearer 1 stops that.
    max_step_size_factor: upper bound of the adapted step, as a factor of the
      learned one; finite and >= 1, default MAX_STEP_SIZE_FACTOR.
    step_size_deadband: width w >= 0 of a band of cosines just below
      step_size_target in which l holds still (learned_opt.executor.step.deadband);
      below the band it shrinks as if the target were w lower. 0.0 (default): no band.
    step_size_deadband_fall: K >= 0 gates the band by how far the tensor's gradient
      sits off the second moment's memory: its width is w (1 - clip(|f| / K, 0, 1)),
      f = log RMS(g) - log RMS(v) on the integrator's row sample
      (learned_opt.executor.step.gradient_fall; one float of state per tensor, no
      pass over s2). A gradient that falls with the loss (interpolation, a settled
      noise floor) or jumps (an instability) closes the band; one held at its usual
      level by minibatch noise keeps it. 0.0 (default): the band is always w wide.
    step_size_leak: rate lambda in [0, 1) at which l decays back to 0 each step
      before the signal is added: l' = (1 - lambda) l + beta signal. A step that fell
      to the floor returns over about 1/lambda quiet steps; a persistent signal holds
      l near beta signal / lambda. 0.0 (default): no leak.
    matrix_momentum_shift: s shortens the first moment's memory on plain weight
      matrices (rank 2; not kernels, biases or scalars) e^s times: their decay is
      1 - (1 - a1) e^s, with its own debiasing (one float of state). 0.0 (default):
      every tensor keeps the hypernet's a1.
    vector_momentum_shift: the same on vectors and scalars (biases, gains, a
      quadratic's point). 0.0 (default): unchanged.
    learned_step_size: the tensor net also emits per-tensor offsets to the
      integrator's rate and target (a zero-initialized linear head, `step_size_head`,
      on the tensor net's input), so meta-training can set them per rule, clock and
      tensor shape; the integrator then runs even at rate 0. Adds a head. Default False.
    sign_gain: how the tensor net's raw output w gives the sign gain k >= 0 (Lion's
      soft sign, k |n| in the normalizer). 'softplus' (default): k = softplus(w),
      prior w = -12; k = 0 (Adam-like rules) is reached only as w -> -inf, where the
      gradient vanishes. 'abs': k = |w|, prior w = 0, with a gradient on either side
      of k = 0.
    normalizer_constant: how the raw output w gives the normalizer's constant term
      beta >= 0 (denominator (alpha v + beta) N + ...: SGD is beta = 1, N = 1;
      Adafactor's factored RMS is beta = 1, alpha = 0). 'exp' (default): beta =
      exp(w), prior w = -30 (the clip bound, where no gradient reaches it). 'abs':
      beta = |w|, prior w = 0 (1 for the SGD prior), a gradient on either side of 0,
      but beta is in gradient units, so a nonzero beta breaks Adam's scale
      invariance. 'scaled': beta = |w| RMS(g), the tensor's running gradient RMS
      (from the row state; vectors keep one running mean square, to which the
      mean-row exponent applies too), so every term of the denominator has degree 1
      in the gradient and N shapes the constant term only: the denominator is
      alpha v + beta RMS(g) N + k |n| + e. Then SGD is beta = 1 with mean-row
      exponent -1, Adam (beta = 0) does not depend on N, and Adafactor's factored
      RMS is beta = 1, N = sqrt(r_i c_j) / RMS(g)^2 (exponents 1, 1, -2).
    decay_form: how the hypernet's raw output w gives a running average's decay
      a in [0, 1). 'softplus' (default): a = 1 - exp(-softplus(-w)), prior
      w = log((1 - beta) / beta); toward a = 0 its derivative vanishes like a itself,
      so a decay driven near 0 gets no gradient back. 'abs': a = 1 - exp(-|w|), prior
      w = -log(1 - beta): a ~ |w| near 0, with a gradient on either side; toward
      a = 1, log(1 - a) = -|w| as with 'softplus'.
    clock_slopes: the running averages (RUNNING_AVERAGES: 'first', s1; 'second', s2;
      'node', the row and column states) whose decay a_k and gain b_k follow the
      clock: the hypernet also emits slopes s_k, u_k (a zero-initialized linear head,
      `clock_slope_head`, on the conditioning) that add s_k log(1 + t) to
      -log(1 - a_k) and u_k log(1 + t) to log b_k
      (learned_opt.executor.step.hyper_coefficients). Adafactor's second moment
      decays as 1 - (t + 1)^-0.8 (optax counts t from 0): s = 0.8, u = -0.8, a
      rule-dependent multiple of log(1 + t) that the hypernet's time features (which
      enter additively, shared by all rules) cannot make. () (default): no head.
    rule_node_degree: with normalizer_constant='scaled' and normalizer_degree None,
      fix the node factor's degree per rule (the mean-row exponent follows from the
      row and column ones): 0, or -1 for SGD_LIKE_RULES, so beta's term is as
      scale-free as the rule. Default False: free exponents.
    trained_options: per rule, the optax keywords it was imitated with.
    decay_feature_stats: (rule, keyword, center, scale) rows: the conditioning reads
      that rule's decay keyword as (log(1 - beta) - center) / scale
      (learned_opt.executor.conditioning), the center and scale of log(1 - beta) over
      imitation's sampling range. Unstandardized, a feature such as Adam's b2 in
      0.99-0.9995 reads -4.6 to -7.6, so the gradient on its weight is dominated by
      the mean times the bias's gradient noise. () (default): unstandardized.
    prior: the algorithm fresh weights start as: 'adam' (default; Adam without eps)
      or 'sgd' (plain SGD, to measure transfer between rules fairly).
    max_time: if > 0, the step count the networks see is capped here (the longest run
      the weights were trained on); 0 (default) leaves the clock unbounded.
    size_features: whether the tensor net reads each tensor's sizes (SIZE_COLUMNS)
      and where its second largest dimension sits against min_dim_size_to_factor.
      False: it reads only the rank and whether the rule factors the tensor
      (`shape_blind`), so its outputs on a wider layer are those on the shapes
      imitation trained on; no imitated rule reads a size except through that test.
      Default True.
    rule_gain_slopes: fix the layer gain's slopes, knots and zero flags per rule to
      the ones its algorithm has (RULE_GAIN_COEFFS; `pin_rule_gain`), leaving the
      tensor net the bias and the clipping knot, so steps follow the rule's own
      dependence on tensor size. Default False: learned.
    rule_clip_knots: with rule_gain_slopes, also set the clipping knot of the rules in
      RULE_CLIP_KNOTS from the gain's bias, where the rule's own clipping acts (RMS 1
      of the update in the units the bias sets). A learned knot above every readout
      gets no gradient (the hinge is flat below it). Default False.
    rule_node_decays: set the row/column states' decay and gain of the rules in
      RULE_DECAY_RATES to the rule's own schedule, k = (t + 1)^-rate, instead of the
      hypernet's. Default False.
    rule_moment_decays: the same for the per-parameter second moment s2, which holds
      the rule's unfactored second moment (Adafactor's vectors and the matrices it
      does not factor). With the schedule the debiasing average z2 stays 1, so s2^2
      is Adafactor's v itself. Default False.
    rule_b2_decays: the rules (of RULE_B2_DEFAULTS) whose second moment decays at
      their own b2 keyword (gain 1 - b2, so the debiased s2 is their bias-corrected
      second moment). () (default): the hypernet's decay.
    readout_rows: the layer readouts (RMS of the direction and of the parameters,
      which Adafactor's parameter scale and clipping and LAMB's trust ratio read) and
      the step-size integrator read tensors with more in-neurons on every k-th row,
      k = ceil(rows / readout_rows), so neither costs a pass over the tensor
      (learned_opt.executor.step._row_sample); 0 reads whole tensors. The sample's
      RMS is off by about 1 / sqrt(2 n) for n sampled entries. Default READOUT_ROWS.
  """
  rules: tuple[str, ...] = ("sgd", "rmsprop", "adam", "adamw", "nadam", "adafactor", "lamb",
                            "lion", "adabelief", "adagrad", "lars")
  embed_dim: int = 8
  hidden: int = 32
  edge_hidden: int = 4
  node_messages: bool = True
  layer_readout: bool = True
  direction_readout: bool = True
  normalizer_degree: float | None = None
  step_size_adaptation: float = 0.0
  step_size_target: float = 0.0
  min_step_size_factor: float = 1.0 / MAX_STEP_SIZE_FACTOR
  max_step_size_factor: float = MAX_STEP_SIZE_FACTOR
  step_size_deadband: float = 0.0
  step_size_deadband_fall: float = 0.0
  step_size_leak: float = 0.0
  matrix_momentum_shift: float = 0.0
  vector_momentum_shift: float = 0.0
  learned_step_size: bool = False
  sign_gain: str = "softplus"
  normalizer_constant: str = "exp"
  decay_form: str = "softplus"
  rule_node_degree: bool = False
  clock_slopes: tuple[str, ...] = ()
  trained_options: tuple[tuple[str, tuple[str, ...]], ...] = ()
  decay_feature_stats: tuple[tuple[str, str, float, float], ...] = ()
  prior: str = "adam"
  max_time: int = 0
  size_features: bool = True
  rule_gain_slopes: bool = False
  rule_clip_knots: bool = False
  rule_node_decays: bool = False
  rule_moment_decays: bool = False
  rule_b2_decays: tuple[str, ...] = ()
  readout_rows: int = READOUT_ROWS

  def __post_init__(self):
    if self.rule_clip_knots and not self.rule_gain_slopes:
      raise ValueError("rule_clip_knots sets the clipping knot beside the rules' pinned "
                       "slopes; it needs rule_gain_slopes=True.")
    unknown = sorted(set(self.rule_b2_decays) - set(RULE_B2_DEFAULTS))
    if unknown:
      raise ValueError(f"rule_b2_decays names {unknown}, whose second moment does not decay "
                       f"at a b2 keyword; use rules of {sorted(RULE_B2_DEFAULTS)}.")
    if self.readout_rows < 0:
      raise ValueError(f"readout_rows must be >= 0 (0 reads whole tensors), got "
                       f"{self.readout_rows}.")
    if not 0.0 < self.min_step_size_factor <= 1.0:
      raise ValueError(f"min_step_size_factor must be in (0, 1] (a floor under the learned "
                       f"step size), got {self.min_step_size_factor}.")
    if not 1.0 <= self.max_step_size_factor < math.inf:
      raise ValueError(f"max_step_size_factor must be finite and >= 1 (a ceiling over the "
                       f"learned step size), got {self.max_step_size_factor}.")
    if self.step_size_deadband < 0:
      raise ValueError(f"step_size_deadband must be >= 0, got {self.step_size_deadband}.")
    if not 0.0 <= self.step_size_leak < 1.0:
      raise ValueError(f"step_size_leak must be in [0, 1) (the fraction of the log step size "
                       f"that decays back to the learned step each step), got "
                       f"{self.step_size_leak}.")
    if self.step_size_deadband_fall < 0:
      raise ValueError(f"step_size_deadband_fall must be >= 0 (a fall of log RMS(g) below "
                       f"the second moment's), got {self.step_size_deadband_fall}.")

  @property
  def num_hyper_outputs(self) -> int:
    h = self.edge_hidden
    return 6 + NUM_EDGE_FEATURES + NUM_EDGE_FEATURES * h + h + 1

  def decay_stats(self, rule: str) -> dict[str, tuple[float, float]]:
    """{keyword: (center, scale)} of `rule`'s standardized decay features."""
    return {key: (center, scale)
            for name, key, center, scale in self.decay_feature_stats if name == rule}

  def to_json(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out["rules"] = list(self.rules)
    out["clock_slopes"] = list(self.clock_slopes)
    out["rule_b2_decays"] = list(self.rule_b2_decays)
    out["trained_options"] = {k: list(v) for k, v in self.trained_options}
    out["decay_feature_stats"] = [list(row) for row in self.decay_feature_stats]
    return out

  @classmethod
  def from_json(cls, data: dict[str, Any]) -> "ExecutorConfig":
    data = dict(data)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
      raise ValueError(f"executor config has unknown keys {sorted(unknown)}; it was written "
                       "by a newer learned_opt. Upgrade learned_opt to load it.")
    data["rules"] = tuple(data.get("rules", cls.rules))
    slopes = data.get("clock_slopes", ())
    # A bool: written while the option was all-or-nothing (True: every average).
    data["clock_slopes"] = (RUNNING_AVERAGES if slopes is True else
                            () if slopes is False else tuple(slopes))
    data["rule_b2_decays"] = tuple(data.get("rule_b2_decays", ()))
    data["trained_options"] = tuple(
        (k, tuple(v)) for k, v in dict(data.get("trained_options", {})).items())
    data["decay_feature_stats"] = tuple(
        (str(rule), str(key), float(center), float(scale))
        for rule, key, center, scale in data.get("decay_feature_stats", ()))
    return cls(**data)


def _mlp_with_skip(x: jax.Array, hidden: int, out: int, name: str,
                   bias_init: Any = None) -> jax.Array:
  """Linear(x) + MLP(x): exact linear maps are easy to reach, nonlinear ones possible.

  The linear part starts at zero weights and `bias_init` biases and the MLP's
  output layer at zero, so a fresh executor is exactly one known algorithm (see
  `prior_hyper`) for every rule; the MLP's hidden layers get gradients as soon as
  its output weights move.
  """
  b_init = None if bias_init is None else (lambda shape, dtype: jnp.asarray(bias_init, dtype))
  linear = hk.Linear(out, w_init=hk.initializers.Constant(0.0), b_init=b_init,
                     name=f"{name}_linear")(x)
  h = jax.nn.relu(hk.Linear(hidden, name=f"{name}_hidden_0")(x))
  h = jax.nn.relu(hk.Linear(hidden, name=f"{name}_hidden_1")(h))
  return linear + hk.Linear(out, w_init=hk.initializers.Constant(0.0),
                            name=f"{name}_out")(h)


def factored_by_rule(tensor_features: jax.Array) -> jax.Array:
  """(num_tensors,) bool: which tensors the rule factors (adafactor's test: a matrix
  whose second largest dimension is at least min_dim_size_to_factor), read from
  learned_opt.executor.step.tensor_features' rows, so it may be traced."""
  return tensor_features[:, FACTORING_COLUMN] >= 0.5 - 1e-6


def shape_blind(tensor_features: jax.Array) -> jax.Array:
  """Tensor features without the sizes: SIZE_COLUMNS zeroed, and the factoring column
  reduced to factored (1/2, the test's threshold) or not (-2, as for every other rule)."""
  keep = np.ones(NUM_TENSOR_FEATURES, np.float32)
  keep[list(SIZE_COLUMNS)] = 0.0
  blind = tensor_features * keep
  return blind.at[:, FACTORING_COLUMN].set(
      jnp.where(factored_by_rule(tensor_features), 0.5, UNFACTORED))


def _networks(config: ExecutorConfig):

  def conditioning_vector(rule_id, hyper_features, time_features):
    embed = hk.Embed(len(config.rules), config.embed_dim, name="rule_embedding")(rule_id)
    return jnp.concatenate([embed, hyper_features, time_features])

  def hypernet(c):
    out = _mlp_with_skip(c, config.hidden, config.num_hyper_outputs, "hypernet",
                         prior_hyper(config))
    if config.clock_slopes:   # NUM_CLOCK_SLOPES columns: decay slopes, then gain slopes
      head = hk.Linear(NUM_CLOCK_SLOPES, w_init=hk.initializers.Constant(0.0),
                       name="clock_slope_head")(c)
      out = jnp.concatenate([out, head], axis=-1)
    return out

  def tensor_net(c, tensor_features):
    if not config.size_features:
      tensor_features = shape_blind(tensor_features)
    x = jnp.concatenate([jnp.broadcast_to(c, tensor_features.shape[:1] + c.shape),
                         tensor_features], axis=-1)
    out = _mlp_with_skip(x, config.hidden, NUM_TENSOR_OUTPUTS, "tensor_net",
                         prior_tensor(config))
    if config.learned_step_size:   # (rate, target) offsets, NUM_STEP_SIZE_OUTPUTS columns
      head = hk.Linear(NUM_STEP_SIZE_OUTPUTS, w_init=hk.initializers.Constant(0.0),
                       name="step_size_head")(x)
      out = jnp.concatenate([out, head], axis=-1)
    return out

  def init_all(rule_id, hyper_features, time_features, tensor_features):
    c = conditioning_vector(rule_id, hyper_features, time_features)
    return hypernet(c), tensor_net(c, tensor_features)

  return init_all, (conditioning_vector, hypernet, tensor_net)


def raw_decay(beta: float, form: str = "softplus") -> float:
  """The raw output that step.split_hyper_outputs maps to decay `beta` (see
  ExecutorConfig.decay_form)."""
  if form == "abs":
    return -math.log(1.0 - beta)
  return math.log((1.0 - beta) / beta)


def prior_hyper(config: ExecutorConfig) -> np.ndarray:
  """Hypernet biases of the prior: Adam(b1=0.9, b2=0.999) without eps, or SGD."""
  f, h = NUM_EDGE_FEATURES, config.edge_hidden
  decays = [raw_decay(b, config.decay_form) for b in (0.9, 0.999, 0.999)]
  gains = [math.log(0.1), math.log(0.001), math.log(0.001)]
  # Adam reads the debiased first moment; SGD the gradient itself.
  linear = [0.0, 0.0, 0.0, 1.0] if config.prior == "adam" else [1.0, 0.0, 0.0, 0.0]
  return np.asarray(decays + gains + linear + [0.0] * (f * h + h) + [0.0], np.float32)


def prior_tensor(config: ExecutorConfig) -> np.ndarray:
  """Tensor-net biases: normalize by the RMS state (Adam, eps 1e-8) or not at all (SGD)."""
  adam = config.prior == "adam"
  # Adam: alpha 1, beta 0, epsilon 1e-8; SGD: alpha 0, beta 1, no epsilon. Node exponents
  # and log-scale bias 0, beta's raw output -30 or 0 (exp: Adam, SGD) or 0 or 1 (abs; see
  # ExecutorConfig.normalizer_constant), sign gain off (softplus(-12) ~ 6e-6, or |0|; see
  # ExecutorConfig.sign_gain).
  eps = math.log(1e-8) if adam else -_MAX_LOG_EPS
  sign_gain_raw = -12.0 if config.sign_gain == "softplus" else 0.0
  if config.normalizer_constant == "exp":
    constant_raw = -30.0 if adam else 0.0
  else:
    constant_raw = 0.0 if adam else 1.0
  # 'scaled': SGD's beta term is the gradient RMS, which the mean row exponent -1 cancels.
  mean_row_exponent = -1.0 if config.normalizer_constant == "scaled" and not adam else 0.0
  normalizer = [1.0 if adam else 0.0, 0.0, 0.0, mean_row_exponent, 0.0, constant_raw,
                sign_gain_raw, eps]
  return np.asarray(normalizer + [0.0] * NUM_GAIN_COEFFS, np.float32)


def layer_log_gain(coeffs: jax.Array, log_rms_param: jax.Array,
                   log_rms_direction: jax.Array | None) -> jax.Array:
  """log mu per tensor from its readouts and its NUM_GAIN_COEFFS coefficients.

  For each readout r (an all-zero tensor reads r = 0 with flag z = 1):
    alpha r + beta relu(r - tau) + gamma z,   summed, plus a bias.

  With the direction's readout, alpha < 0 on it makes the update grow as
  RMS(d)^(1 + alpha) instead of RMS(d): LAMB's trust ratio is alpha = -1. On an
  Adam-like rule a small learned alpha < 0 holds the update up late in training,
  where Adam's direction shrinks (its second moment remembers larger gradients),
  and the run stalls; `log_rms_direction=None`
  (ExecutorConfig.direction_readout=False) leaves the term out.
  """
  total = coeffs[:, -1]
  readouts = (log_rms_param,) if log_rms_direction is None else (
      log_rms_param, log_rms_direction)
  for i, log_rms in enumerate(readouts):
    zero = log_rms <= _LOG_ZERO
    r = jnp.where(zero, 0.0, log_rms)
    alpha, beta, tau, gamma = (coeffs[:, 4 * i + k] for k in range(4))
    total = total + alpha * r + beta * jax.nn.relu(r - tau) + gamma * zero
  return total


def per_rule(table: dict[str, float], config: ExecutorConfig,
             rule_id: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(whether `table` names rule `rule_id`, its value there or 0), `rule_id` maybe traced."""
  named = np.asarray([rule in table for rule in config.rules])
  values = np.asarray([table.get(rule, 0.0) for rule in config.rules], np.float32)
  return jnp.asarray(named)[rule_id], jnp.asarray(values)[rule_id]


def pin_rule_gain(gain_coeffs: jax.Array, config: ExecutorConfig,
                  rule_id: jax.Array) -> jax.Array:
  """(num_tensors, NUM_GAIN_COEFFS) layer gain coefficients with RULE_GAIN_COEFFS' values
  for rule `rule_id` (which may be traced) in place of the tensor net's; with
  config.rule_clip_knots, the direction's knot of the rules in RULE_CLIP_KNOTS set to
  k - bias."""
  values = np.zeros((len(config.rules), NUM_GAIN_COEFFS), np.float32)
  pinned = np.zeros((len(config.rules), NUM_GAIN_COEFFS), bool)
  for i, rule in enumerate(config.rules):
    for k, value in enumerate(RULE_GAIN_COEFFS.get(rule, (None,) * NUM_GAIN_COEFFS)):
      if value is not None:
        values[i, k], pinned[i, k] = value, True
  coeffs = jnp.where(jnp.asarray(pinned)[rule_id], jnp.asarray(values)[rule_id], gain_coeffs)
  if not config.rule_clip_knots:
    return coeffs
  clips, offset = per_rule(RULE_CLIP_KNOTS, config, rule_id)
  return coeffs.at[:, DIRECTION_KNOT].set(
      jnp.where(clips, offset - coeffs[:, -1], coeffs[:, DIRECTION_KNOT]))


def complete_weights(weights: hk.Params, config: ExecutorConfig) -> hk.Params:
  """`weights` plus, at their initial values, the modules `config` has and they lack.

  For a checkpoint trained without an optional module (`step_size_head`,
  `clock_slope_head`) and run
  with it: the new module starts where a fresh executor's does (at zero, so the
  checkpoint's behavior is unchanged). Existing modules must match in shape.
  """
  fresh = init_weights(config, jax.random.PRNGKey(0))
  merged = dict(weights)
  for name, module in fresh.items():
    if name not in merged:
      merged[name] = module
    elif jax.tree.map(jnp.shape, merged[name]) != jax.tree.map(jnp.shape, module):
      raise ValueError(f"executor weights for {name!r} have shapes "
                       f"{jax.tree.map(jnp.shape, merged[name])}, but this architecture "
                       f"needs {jax.tree.map(jnp.shape, module)}.")
  return merged


def build(config: ExecutorConfig) -> hk.MultiTransformed:
  """The haiku networks of an executor: apply_fns = (conditioning, hypernet, tensor_net)."""
  return hk.without_apply_rng(hk.multi_transform(lambda: _networks(config)))


def init_weights(config: ExecutorConfig, key: jax.Array) -> hk.Params:
  """Fresh executor weights."""
  if config.sign_gain not in SIGN_GAINS:
    raise ValueError(f"Unknown sign_gain {config.sign_gain!r}; use one of {SIGN_GAINS}.")
  if config.decay_form not in DECAY_FORMS:
    raise ValueError(f"Unknown decay_form {config.decay_form!r}; use one of {DECAY_FORMS}.")
  if config.normalizer_constant not in NORMALIZER_CONSTANTS:
    raise ValueError(f"Unknown normalizer_constant {config.normalizer_constant!r}; use one "
                     f"of {NORMALIZER_CONSTANTS}.")
  unknown = set(config.clock_slopes) - set(RUNNING_AVERAGES)
  if unknown:
    raise ValueError(f"Unknown running averages {sorted(unknown)} in clock_slopes; use names "
                     f"from {RUNNING_AVERAGES}.")
  if config.rule_node_degree and config.normalizer_constant != "scaled":
    raise ValueError("rule_node_degree=True needs normalizer_constant='scaled' (the degree "
                     "-1 of SGD-like rules assumes beta's term carries RMS(g)).")
  if config.prior not in ("adam", "sgd"):
    raise ValueError(f"Unknown executor prior {config.prior!r}; use 'adam' or 'sgd'.")
  nets = build(config)
  return nets.init(key, jnp.zeros((), jnp.int32),
                   jnp.zeros(conditioning.NUM_HYPER_FEATURES),
                   jnp.zeros(conditioning.NUM_TIME_FEATURES),
                   jnp.zeros((1, NUM_TENSOR_FEATURES)))
