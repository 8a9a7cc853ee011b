"""What the executor is told about the rule it imitates: a fixed-size feature vector.

The rule is a learned embedding (one row per rule name in the checkpoint's rule
list) plus its hyperparameters, read from optax's keyword arguments through one
generic schema: every decay-like keyword fills a slot with (present, beta,
log(1 - beta)); scale-like keywords give log10 values; flags give 0/1. The schema
never says what a keyword *means* for a rule; the network learns that.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

# Slots are keyword names as optax spells them.
DECAY_KEYS = ("b1", "b2", "decay", "momentum", "beta", "decay_rate")
LOG_KEYS = ("eps", "eps_root", "weight_decay", "weight_decay_rate", "trust_coefficient",
            "clipping_threshold", "min_dim_size_to_factor", "initial_accumulator_value",
            "initial_scale")
FLAG_KEYS = ("nesterov", "centered", "multiply_by_parameter_scale", "bias_correction",
             "eps_in_sqrt")
NUM_HYPER_FEATURES = 3 * len(DECAY_KEYS) + 2 * len(LOG_KEYS) + len(FLAG_KEYS) + 1


def _log10_feature(value: float) -> float:
  return math.log10(max(float(value), 1e-30)) / 10.0


def hyperparameter_features(kwargs: Mapping[str, Any], known: Sequence[str] | None = None
                            ) -> np.ndarray:
  """The hyperparameter part of the conditioning vector (float32, fixed size).

  Args:
    kwargs: optax keyword arguments of the rule (learning_rate is read here as
      its log10 value for a float, or ignored for a schedule).
    known: keywords the executor was trained with for this rule; a keyword
      outside it (with a non-default value) is refused by the caller, not here.

  Returns:
    A vector of NUM_HYPER_FEATURES float32 values.
  """
  del known
  feats: list[float] = []
  for key in DECAY_KEYS:
    value = kwargs.get(key)
    if value is None or isinstance(value, (bool,)) or callable(value):
      feats += [0.0, 0.0, 0.0]
    else:
      beta = float(value)
      feats += [1.0, beta, math.log(max(1.0 - beta, 1e-12)) / 10.0]
  for key in LOG_KEYS:
    value = kwargs.get(key)
    if value is None or callable(value):
      feats += [0.0, 0.0]
    else:
      feats += [1.0, _log10_feature(value)]
  for key in FLAG_KEYS:
    feats.append(1.0 if kwargs.get(key) else 0.0)
  lr = kwargs.get("learning_rate")
  feats.append(_log10_feature(lr) if isinstance(lr, (int, float)) and lr > 0 else 0.0)
  return np.asarray(feats, np.float32)


def time_features(count) -> Any:
  """Features of the step count (works on jax arrays): log(t+1) at a few scales."""
  import jax.numpy as jnp
  t = jnp.asarray(count, jnp.float32)
  log_t = jnp.log1p(t)
  return jnp.stack([log_t / 10.0, jnp.tanh(t / 10.0), jnp.tanh(t / 100.0),
                    jnp.tanh(t / 1000.0)])


NUM_TIME_FEATURES = 4
