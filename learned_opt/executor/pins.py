"""Per-rule priors and pins: what each rule's own algorithm fixes, in one table.

`RULE_PINS` says, per rule, what a HandSet option sets in place of the networks'
outputs when it is on:

  gain         HandSet.rule_gain_slopes: the layer gain's coefficients (alpha, beta,
               tau, gamma on log RMS(p), the same on log RMS(d), then the bias; see
               readout.layer_log_gain) that the rule's algorithm has; None entries
               stay learned. Adam-like rules and SGD read neither RMS; Adafactor
               multiplies by max(1e-3, RMS(p)) (optax's parameter scale) and divides
               by max(1, RMS(u)) (update clipping at 1); LAMB's trust ratio is
               RMS(p) / RMS(d).
  clip_knot    HandSet.rule_clip_knots: k in the clipping knot tau_d = k - bias. With
               Adafactor's pinned parameter term (max(RMS(p), 1e-3) / 1e-3) the update
               is lr max(RMS(p), 1e-3) u' clip with u' = e^(bias - log 1e-3) d, so u'
               reaches RMS 1 (optax's clipping_threshold) where log RMS(d) =
               log 1e-3 - bias.
  decay_rate   HandSet.rule_node_decays (row/column states) and rule_moment_decays
               (s2): decay 1 - k and gain k, k = (t + 1)^-rate (Adafactor's schedule
               with optax's default decay_rate).
  b2           HandSet.rule_b2_decays: the rule's optax default b2, used where its
               features carry no b2 keyword; s2 then decays at b2 with gain 1 - b2.
  node_degree  HandSet.rule_node_degree: the node factor's degree in the gradient
               (-1 for SGD-like rules, whose update is not invariant to the gradient's
               scale before their layer gain; 0 for the others).

Rules not in the table are left free (node degree 0).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from learned_opt.executor import conditioning, network
from learned_opt.executor.config import HandSet

_LOG_MIN_PARAM_SCALE = math.log(1e-3)


class RulePins(NamedTuple):
  """What one rule's algorithm fixes (see the module doc); None: nothing."""
  gain: tuple[float | None, ...] | None = None
  clip_knot: float | None = None
  decay_rate: float | None = None
  b2: float | None = None
  node_degree: float = 0.0


_READS_NEITHER = (0.0, 0.0, None, 0.0, 0.0, 0.0, None, 0.0, None)
_ADAFACTOR_GAIN = (0.0, 1.0, _LOG_MIN_PARAM_SCALE, _LOG_MIN_PARAM_SCALE,
                   0.0, -1.0, None, None, None)
_LAMB_GAIN = (1.0, 0.0, None, None, -1.0, 0.0, None, None, None)

RULE_PINS = {
    "sgd":       RulePins(gain=_READS_NEITHER, node_degree=-1.0),
    "rmsprop":   RulePins(gain=_READS_NEITHER),
    "adam":      RulePins(gain=_READS_NEITHER, b2=0.999),
    "adamw":     RulePins(gain=_READS_NEITHER, b2=0.999),
    "nadam":     RulePins(gain=_READS_NEITHER, b2=0.999),
    "adafactor": RulePins(gain=_ADAFACTOR_GAIN, clip_knot=_LOG_MIN_PARAM_SCALE,
                          decay_rate=0.8),
    "lamb":      RulePins(gain=_LAMB_GAIN, b2=0.999),
    "lion":      RulePins(gain=_READS_NEITHER),
    "adabelief": RulePins(gain=_READS_NEITHER),
    "adagrad":   RulePins(gain=_READS_NEITHER),
    "lars":      RulePins(node_degree=-1.0),
}
_FREE = RulePins()


def column(name: str) -> dict[str, Any]:
  """{rule: value} of one RulePins field, for the rules where it is set."""
  return {rule: getattr(pins, name) for rule, pins in RULE_PINS.items()
          if getattr(pins, name) is not None}


def per_rule(table: dict[str, float], rules: tuple[str, ...],
             rule_id: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(whether `table` names rule `rule_id`, its value there or 0), `rule_id` maybe traced."""
  named = np.asarray([rule in table for rule in rules])
  values = np.asarray([table.get(rule, 0.0) for rule in rules], np.float32)
  return jnp.asarray(named)[rule_id], jnp.asarray(values)[rule_id]


def pin_rule_gain(gain_coeffs: jax.Array, rules: tuple[str, ...], hand_set: HandSet,
                  rule_id: jax.Array) -> jax.Array:
  """(num_tensors, NUM_GAIN_COEFFS) layer gain coefficients with RULE_PINS' gain for rule
  `rule_id` (which may be traced) in place of the tensor net's; with
  hand_set.rule_clip_knots, the direction's knot of the rules with a clip_knot k set to
  k - bias. `gain_coeffs` as is without hand_set.rule_gain_slopes."""
  if not hand_set.rule_gain_slopes:
    return gain_coeffs
  values = np.zeros((len(rules), network.NUM_GAIN_COEFFS), np.float32)
  pinned = np.zeros((len(rules), network.NUM_GAIN_COEFFS), bool)
  for i, rule in enumerate(rules):
    for k, value in enumerate(RULE_PINS.get(rule, _FREE).gain or ()):
      if value is not None:
        values[i, k], pinned[i, k] = value, True
  coeffs = jnp.where(jnp.asarray(pinned)[rule_id], jnp.asarray(values)[rule_id], gain_coeffs)
  if not hand_set.rule_clip_knots:
    return coeffs
  clips, offset = per_rule(column("clip_knot"), rules, rule_id)
  knot = network.DIRECTION_KNOT
  return coeffs.at[:, knot].set(jnp.where(clips, offset - coeffs[:, -1], coeffs[:, knot]))


def pin_rule_decays(coeffs: network.Coefficients, rules: tuple[str, ...], hand_set: HandSet,
                    rule_id: jax.Array, step: Any) -> network.Coefficients:
  """`coeffs` with decay 1 - k and gain k, k = (t + 1)^-rate, for the rules with a
  decay_rate: on the row/column average with hand_set.rule_node_decays, on the second
  moment s2 with hand_set.rule_moment_decays (else `coeffs` as is). The step t is the
  true one, not capped at hand_set.max_time, as the rule's own schedule."""
  averages = [i for i, on in ((1, hand_set.rule_moment_decays), (2, hand_set.rule_node_decays))
              if on]
  if not averages:
    return coeffs
  pinned, rate = per_rule(column("decay_rate"), rules, rule_id)
  keep = jnp.power(jnp.asarray(step, jnp.float32) + 1.0, -rate)
  index = jnp.asarray(averages)
  return coeffs._replace(
      decays=coeffs.decays.at[index].set(jnp.where(pinned, 1.0 - keep, coeffs.decays[index])),
      gains=coeffs.gains.at[index].set(jnp.where(pinned, keep, coeffs.gains[index])))


def pin_b2_decay(coeffs: network.Coefficients, rules: tuple[str, ...], hand_set: HandSet,
                 rule_id: jax.Array, hyper_features: jax.Array) -> network.Coefficients:
  """`coeffs` with the second moment's decay b2 and gain 1 - b2 for the rules
  hand_set.rule_b2_decays names: b2 is the rule's keyword as the hyperparameter
  features carry it, or the rule's optax default where they do not. The debiasing
  average z2 is then 1 - b2^t, so v is Adam's bias-corrected second moment. `coeffs`
  as is when it names none."""
  if not hand_set.rule_b2_decays:
    return coeffs
  defaults = column("b2")
  table = {rule: defaults[rule] for rule in hand_set.rule_b2_decays}
  pinned, default = per_rule(table, rules, rule_id)
  index = conditioning.DECAY_FEATURE_INDEX["b2"]
  given = hyper_features[index - 1] > 0.5    # the slot's "present" feature
  b2 = jnp.where(given, hyper_features[index], default)
  return coeffs._replace(
      decays=coeffs.decays.at[1].set(jnp.where(pinned, b2, coeffs.decays[1])),
      gains=coeffs.gains.at[1].set(jnp.where(pinned, 1.0 - b2, coeffs.gains[1])))


def node_degree(rules: tuple[str, ...], hand_set: HandSet, rule_id: jax.Array) -> Any:
  """The node factor's fixed degree in the gradient, or None (free exponents).

  hand_set.normalizer_degree when set; else, with hand_set.rule_node_degree, the
  rule's node_degree (SGD-like rules -1: beta RMS(g) N is then the constant 1 the
  update divides by; the others 0, so what a scale-free rule's beta term holds is
  scale-free too).
  """
  if hand_set.normalizer_degree is not None:
    return hand_set.normalizer_degree
  if not hand_set.rule_node_degree:
    return None
  table = jnp.asarray([RULE_PINS.get(rule, _FREE).node_degree for rule in rules], jnp.float32)
  return table[rule_id]
