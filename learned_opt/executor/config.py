"""What an executor is, in two records saved side by side in every checkpoint.

`ExecutorConfig` is the architecture: what the networks are, what they read and
how their outputs are read (the weights' shapes and meaning follow from it).
`HandSet` is everything set by hand on top of the learned weights: the step-size
integrator, the momentum shifts, the per-rule pins (learned_opt.executor.pins),
the node factor's degree, the readout's row sample and the clock cap. A checkpoint
keeps them apart (learned_opt.checkpoint), so a reader sees at a glance which of
an executor's behaviours were learned and which were set.

Checkpoints of format version 2 kept one flat record; `split_flat` reads it as
the two. Two options of that record are frozen here: the decay form is
'softplus' (every shipped executor's), and the normalizer's two output forms
(sign gain, constant) are the two pairs the shipped executors use, one field
(`ExecutorConfig.normalizer`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

MAX_STEP_SIZE_FACTOR = 30.0   # the adapted step's default bound, x or / the learned one
READOUT_ROWS = 64             # HandSet.readout_rows' default
RUNNING_AVERAGES = ("first", "second", "node")   # a1 (s1), a2 (s2), a3 (rows, columns)
# The normalizer's output forms (ExecutorConfig.normalizer): the sign gain k and beta's
# term from their raw outputs w.
NORMALIZERS = ("exp", "scaled")
PRIORS = ("adam", "sgd")


@dataclasses.dataclass(frozen=True)
class ExecutorConfig:
  """The architecture of an executor (the weights' shapes and what their outputs mean).

  Options that add a head say so; `network.complete_weights` adds it, at zero, to
  a checkpoint trained without it.

  Attributes:
    rules: rule names the embedding table has rows for (order matters).
    embed_dim: width of the rule embedding.
    hidden: width of the graph- and layer-level MLPs.
    edge_hidden: hidden units of the per-edge (fused elementwise) network.
    processor: the message passing between the encoder and the decoder, a name in
      `learned_opt.executor.processors.names()`: 'row_column' (one hop: running row
      and column mean squares of every weight matrix), 'per_edge' (zero hops) or
      'multi_hop' (row_column's, then K rounds of two-hop passes on the weight
      matrices of a rule with rounds, such as Muon's Newton-Schulz; adds the
      `hop_tensor`, `hop_round`, `nesterov_head` and `belief_head` modules, see
      learned_opt.executor.hops).
    normalizer: how the tensor net's raw outputs w give the normalizer's sign gain
      k >= 0 (Lion's soft sign, k |n|) and constant term (SGD's 1, Adafactor's
      factored RMS through the node factor N). 'exp': k = softplus(w_k), beta =
      exp(w_b), denominator (alpha v + beta) N + k |n| + e; the prior is w_k = -12
      and w_b = -30 (Adam) or 0 (SGD). 'scaled': k = |w_k|, beta = |w_b| RMS(g), the
      tensor's running gradient RMS, denominator alpha v + beta RMS(g) N + k |n| + e,
      so every term has degree 1 in the gradient and N shapes the constant term
      only; both raw outputs get a gradient on either side of 0 (prior w_k = 0,
      w_b = 0 or 1 with mean-row exponent -1 for SGD).
    layer_readout: the layer gain reads log-RMS readouts (graph pooling per tensor).
    direction_readout: the layer gain also reads the direction's RMS (trust ratios
      such as LAMB's need it). False reads only the parameters' RMS.
    learned_step_size: the tensor net also emits per-tensor offsets to the step-size
      integrator's rate and target (a zero-initialized head, `step_size_head`); the
      integrator then runs even at rate 0. Adds a head.
    clock_slopes: the running averages (RUNNING_AVERAGES) whose decay a_k and gain b_k
      follow the clock: the hypernet also emits slopes s_k, u_k (a zero-initialized
      head, `clock_slope_head`) that add s_k log(1 + t) to -log(1 - a_k) and
      u_k log(1 + t) to log b_k. () : no head.
    size_features: whether the tensor net reads each tensor's sizes. False: only its
      rank and whether the rule factors it (`network.shape_blind`).
    prior: the algorithm fresh weights start as: 'adam' (Adam without eps) or 'sgd'.
    trained_options: per rule, the optax keywords it was imitated with.
    decay_feature_stats: (rule, keyword, center, scale) rows: the conditioning reads
      that rule's decay keyword as (log(1 - beta) - center) / scale
      (learned_opt.executor.conditioning). () : unstandardized.
    extra_keywords: keywords the conditioning reads after its schema's slots
      (conditioning.EXTRA_KEYS: Muon's AdamW keywords). () : the schema alone.
    controller_hidden: width H of the learned controller's GRU
      (learned_opt.executor.controller: per tensor it reads the gradient, moment,
      parameter, update and loss signals and emits a log step size, a momentum shift
      and a mix offset; H + 4 floats of state per tensor). 0: no controller. Adds
      the `controller_gru` and `controller_head` modules (the head at zero).
    controller_messages: the controller's GRU also reads cross-layer messages: the
      mean hidden state of the tensors upstream and downstream of each tensor along
      the ParamGraph's wiring (learned_opt.executor.controller.wiring_matrices).
  """
  rules: tuple[str, ...] = ("sgd", "rmsprop", "adam", "adamw", "nadam", "adafactor", "lamb",
                            "lion", "adabelief", "adagrad", "lars", "muon")
  embed_dim: int = 8
  hidden: int = 32
  edge_hidden: int = 4
  processor: str = "row_column"
  normalizer: str = "exp"
  layer_readout: bool = True
  direction_readout: bool = True
  learned_step_size: bool = False
  clock_slopes: tuple[str, ...] = ()
  size_features: bool = True
  prior: str = "adam"
  trained_options: tuple[tuple[str, tuple[str, ...]], ...] = ()
  decay_feature_stats: tuple[tuple[str, str, float, float], ...] = ()
  extra_keywords: tuple[str, ...] = ()
  controller_hidden: int = 0
  controller_messages: bool = False

  def __post_init__(self):
    # pylint: disable-next=import-outside-toplevel
    from learned_opt.executor import conditioning, processors
    conditioning.check_extra_keys(self.extra_keywords)
    if self.processor not in processors.names():
      raise ValueError(f"Unknown processor {self.processor!r}; use one of "
                       f"{processors.names()}.")
    if self.normalizer not in NORMALIZERS:
      raise ValueError(f"Unknown normalizer {self.normalizer!r}; use one of {NORMALIZERS}.")
    unknown = set(self.clock_slopes) - set(RUNNING_AVERAGES)
    if unknown:
      raise ValueError(f"Unknown running averages {sorted(unknown)} in clock_slopes; use "
                       f"names from {RUNNING_AVERAGES}.")
    if self.prior not in PRIORS:
      raise ValueError(f"Unknown executor prior {self.prior!r}; use one of {PRIORS}.")
    if self.controller_hidden < 0:
      raise ValueError(f"controller_hidden must be >= 0 (0: no controller), got "
                       f"{self.controller_hidden}.")
    if self.controller_messages and not self.controller_hidden:
      raise ValueError("controller_messages=True passes the controller's hidden states "
                       "between layers; it needs controller_hidden > 0.")

  def decay_stats(self, rule: str) -> dict[str, tuple[float, float]]:
    """{keyword: (center, scale)} of `rule`'s standardized decay features."""
    return {key: (center, scale)
            for name, key, center, scale in self.decay_feature_stats if name == rule}

  def to_json(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out.update(rules=list(self.rules), clock_slopes=list(self.clock_slopes),
               extra_keywords=list(self.extra_keywords),
               trained_options={k: list(v) for k, v in self.trained_options},
               decay_feature_stats=[list(row) for row in self.decay_feature_stats])
    return out

  @classmethod
  def from_json(cls, data: dict[str, Any]) -> "ExecutorConfig":
    data = dict(data)
    _check_keys(cls, data, "executor config")
    data["rules"] = tuple(data.get("rules", cls.rules))
    data["extra_keywords"] = tuple(data.get("extra_keywords", ()))
    slopes = data.get("clock_slopes", ())
    # A bool: written while the option was all-or-nothing (True: every average).
    data["clock_slopes"] = (RUNNING_AVERAGES if slopes is True else
                            () if slopes is False else tuple(slopes))
    data["trained_options"] = tuple(
        (k, tuple(v)) for k, v in dict(data.get("trained_options", {})).items())
    data["decay_feature_stats"] = tuple(
        (str(rule), str(key), float(center), float(scale))
        for rule, key, center, scale in data.get("decay_feature_stats", ()))
    return cls(**data)


@dataclasses.dataclass(frozen=True)
class HandSet:
  """What was set by hand on an executor, not learned; saved beside its ExecutorConfig.

  The defaults set nothing: the executor is then its weights alone.

  Attributes:
    step_size_adaptation: rate beta of a per-tensor step-size integrator
      (learned_opt.executor.step_size): each step the tensor's log step size l moves
      by beta (c - step_size_target), c the cosine between the new gradient and the
      old first moment on the readout's row sample, clipped to
      [log min_step_size_factor, log max_step_size_factor]. 0.0: l stays 0.
    step_size_target: the cosine at which l holds still.
    min_step_size_factor: lower bound of the adapted step, as a factor of the learned
      one; in (0, 1].
    max_step_size_factor: upper bound of the adapted step; finite and >= 1.
    step_size_deadband: width w >= 0 of a band of cosines just below the target in
      which l holds still; below it l shrinks as if the target were w lower.
    step_size_deadband_fall: K >= 0 gates the band by how far the tensor's gradient
      sits off the second moment's memory: width w (1 - clip(|f| / K, 0, 1)), f =
      log RMS(g) - log RMS(v). 0.0: the band is always w wide.
    step_size_leak: rate lambda in [0, 1) at which l decays back to 0 each step.
    matrix_momentum_shift: s shortens the first moment's memory on plain weight
      matrices (rank 2) e^s times: decay 1 - (1 - a1) e^s, with its own debiasing.
    vector_momentum_shift: the same on vectors and scalars.
    normalizer_degree: None leaves the normalizer's node exponents free; a number d
      fixes the mean row's exponent to d - (row + column), so the node factor is
      homogeneous of degree d in the gradient (0.0: Adam's degree).
    rule_node_degree: with normalizer 'scaled' and normalizer_degree None, fix the node
      factor's degree per rule (pins.RULE_PINS' node_degree).
    rule_gain_slopes: fix the layer gain's slopes, knots and zero flags per rule to the
      ones its algorithm has (pins.RULE_PINS' gain).
    rule_clip_knots: with rule_gain_slopes, also set the clipping knot of the rules that
      clip (pins.RULE_PINS' clip_knot) from the gain's bias.
    rule_node_decays: the row/column states of the rules with a decay schedule
      (pins.RULE_PINS' decay_rate) follow it, k = (t + 1)^-rate.
    rule_moment_decays: the same for the per-parameter second moment s2.
    rule_b2_decays: the rules (those with a b2 in pins.RULE_PINS) whose second moment
      decays at their own b2 keyword, with Adam's bias correction.
    readout_rows: the layer readouts and the integrator read tensors with more
      in-neurons on every k-th row, k = ceil(rows / readout_rows); 0 reads whole
      tensors.
    max_time: if > 0, the step count the networks see is capped here; 0: unbounded.
  """
  step_size_adaptation: float = 0.0
  step_size_target: float = 0.0
  min_step_size_factor: float = 1.0 / MAX_STEP_SIZE_FACTOR
  max_step_size_factor: float = MAX_STEP_SIZE_FACTOR
  step_size_deadband: float = 0.0
  step_size_deadband_fall: float = 0.0
  step_size_leak: float = 0.0
  matrix_momentum_shift: float = 0.0
  vector_momentum_shift: float = 0.0
  normalizer_degree: float | None = None
  rule_node_degree: bool = False
  rule_gain_slopes: bool = False
  rule_clip_knots: bool = False
  rule_node_decays: bool = False
  rule_moment_decays: bool = False
  rule_b2_decays: tuple[str, ...] = ()
  readout_rows: int = READOUT_ROWS
  max_time: int = 0

  def __post_init__(self):
    for message in _hand_set_problems(self):
      raise ValueError(message)

  def to_json(self) -> dict[str, Any]:
    return dict(dataclasses.asdict(self), rule_b2_decays=list(self.rule_b2_decays))

  @classmethod
  def from_json(cls, data: dict[str, Any]) -> "HandSet":
    data = dict(data)
    _check_keys(cls, data, "hand-set record")
    data["rule_b2_decays"] = tuple(data.get("rule_b2_decays", ()))
    return cls(**data)


def _hand_set_problems(hand_set: HandSet) -> list[str]:
  """What is wrong with `hand_set`, one sentence each (empty if nothing)."""
  from learned_opt.executor import pins  # pylint: disable=import-outside-toplevel
  problems = []
  if hand_set.rule_clip_knots and not hand_set.rule_gain_slopes:
    problems.append("rule_clip_knots sets the clipping knot beside the rules' pinned slopes; "
                    "it needs rule_gain_slopes=True.")
  b2_rules = pins.column("b2")
  unknown = sorted(set(hand_set.rule_b2_decays) - set(b2_rules))
  if unknown:
    problems.append(f"rule_b2_decays names {unknown}, whose second moment does not decay at "
                    f"a b2 keyword; use rules of {sorted(b2_rules)}.")
  if hand_set.readout_rows < 0:
    problems.append(f"readout_rows must be >= 0 (0 reads whole tensors), got "
                    f"{hand_set.readout_rows}.")
  if not 0.0 < hand_set.min_step_size_factor <= 1.0:
    problems.append(f"min_step_size_factor must be in (0, 1] (a floor under the learned step "
                    f"size), got {hand_set.min_step_size_factor}.")
  if not 1.0 <= hand_set.max_step_size_factor < math.inf:
    problems.append(f"max_step_size_factor must be finite and >= 1 (a ceiling over the "
                    f"learned step size), got {hand_set.max_step_size_factor}.")
  if hand_set.step_size_deadband < 0:
    problems.append(f"step_size_deadband must be >= 0, got {hand_set.step_size_deadband}.")
  if not 0.0 <= hand_set.step_size_leak < 1.0:
    problems.append(f"step_size_leak must be in [0, 1) (the fraction of the log step size "
                    f"that decays back to the learned step each step), got "
                    f"{hand_set.step_size_leak}.")
  if hand_set.step_size_deadband_fall < 0:
    problems.append(f"step_size_deadband_fall must be >= 0 (a fall of log RMS(g) below the "
                    f"second moment's), got {hand_set.step_size_deadband_fall}.")
  return problems


def check_pair(config: ExecutorConfig, hand_set: HandSet) -> None:
  """Refuses a hand-set record that the architecture cannot carry out."""
  if hand_set.rule_node_degree and config.normalizer != "scaled":
    raise ValueError("HandSet.rule_node_degree=True needs ExecutorConfig.normalizer='scaled' "
                     "(the degree -1 of SGD-like rules assumes beta's term carries RMS(g)).")
  unknown = sorted(set(hand_set.rule_b2_decays) - set(config.rules))
  if unknown:
    raise ValueError(f"HandSet.rule_b2_decays names {unknown}, which this executor has no "
                     f"embedding for (it knows {', '.join(config.rules)}).")


def _check_keys(cls: type, data: dict[str, Any], what: str) -> None:
  fields = {f.name for f in dataclasses.fields(cls)}
  unknown = set(data) - fields
  if unknown:
    raise ValueError(f"The {what} has unknown keys {sorted(unknown)}; it was written by "
                     "another learned_opt. Upgrade learned_opt to load it.")


# Format 2's flat record: the fields that are not ExecutorConfig's or HandSet's, and
# the values each must have (they were frozen; `split_flat` reads the others).
_FROZEN_FORMS = {
    # (sign_gain, normalizer_constant) -> ExecutorConfig.normalizer
    ("softplus", "exp"): "exp",
    ("abs", "scaled"): "scaled",
}


def split_flat(data: dict[str, Any]) -> tuple[ExecutorConfig, HandSet]:
  """(architecture, hand-set record) of a format-2 flat executor record.

  Raises:
    ValueError: the record used an option that was frozen away (a decay form other
      than 'softplus', or a sign gain and normalizer constant other than the shipped
      pairs), naming it and the learned_opt that still reads it.
  """
  data = dict(data)
  decay_form = data.pop("decay_form", "softplus")
  if decay_form != "softplus":
    raise ValueError(f"This executor was trained with decay_form={decay_form!r}, an "
                     "experiment variant this learned_opt no longer runs (the decay form is "
                     "'softplus'). Load it with learned_opt 0.2 (checkpoint format 2).")
  form = (data.pop("sign_gain", "softplus"), data.pop("normalizer_constant", "exp"))
  if form not in _FROZEN_FORMS:
    raise ValueError(f"This executor was trained with sign_gain={form[0]!r} and "
                     f"normalizer_constant={form[1]!r}, an experiment variant this "
                     "learned_opt no longer runs (it runs the pairs "
                     f"{sorted(_FROZEN_FORMS)} as ExecutorConfig.normalizer "
                     f"{sorted(_FROZEN_FORMS.values())}). Load it with learned_opt 0.2 "
                     "(checkpoint format 2).")
  data["normalizer"] = _FROZEN_FORMS[form]
  if "node_messages" in data:
    data["processor"] = "row_column" if data.pop("node_messages") else "per_edge"
  hand_fields = {f.name for f in dataclasses.fields(HandSet)}
  hand = {k: data.pop(k) for k in list(data) if k in hand_fields}
  return ExecutorConfig.from_json(data), HandSet.from_json(hand)
