"""What the executor is told about the rule it imitates: a fixed-size feature vector.

The rule is a learned embedding (one row per rule name in the checkpoint's rule
list) plus its hyperparameters, read from optax's keyword arguments through one
generic schema: every decay-like keyword fills a slot with (present, beta,
log(1 - beta)) (unscaled, so a decay's log(1 - beta) is one unit weight away from
a learned decay); scale-like keywords give log10 values; flags give 0/1. The schema
never says what a keyword *means* for a rule; the network learns that.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp

# Slots are keyword names as optax spells them.
DECAY_KEYS = ("b1", "b2", "decay", "momentum", "beta", "decay_rate")
LOG_KEYS = ("eps", "eps_root", "weight_decay", "weight_decay_rate", "trust_coefficient",
            "clipping_threshold", "min_dim_size_to_factor", "initial_accumulator_value",
            "initial_scale")
FLAG_KEYS = ("nesterov", "centered", "multiply_by_parameter_scale", "bias_correction",
             "eps_in_sqrt")
# Where each decay keyword's raw value (its slot's second feature, never standardized) sits.
DECAY_FEATURE_INDEX = {key: 3 * i + 1 for i, key in enumerate(DECAY_KEYS)}
NUM_HYPER_FEATURES = 3 * len(DECAY_KEYS) + 2 * len(LOG_KEYS) + len(FLAG_KEYS) + 1


def _log10_feature(value: Any) -> Any:
  return jnp.log10(jnp.maximum(jnp.asarray(value, jnp.float32), 1e-30)) / 10.0


def _is_number(value: Any) -> bool:
  return value is not None and not isinstance(value, (bool, str)) and not callable(value)


def hyperparameter_features(kwargs: Mapping[str, Any],
                            decay_stats: Mapping[str, tuple[float, float]] | None = None
                            ) -> jax.Array:
  """The hyperparameter part of the conditioning vector (float32, fixed size).

  Args:
    kwargs: optax keyword arguments of the rule (learning_rate is read here as
      its log10 value for a float, or ignored for a schedule).
      Values may be Python numbers or (traced) jax scalars, so the features work
      under `optax.inject_hyperparams`.
    decay_stats: {decay keyword: (center, scale)}: that keyword's third feature
      is (log(1 - beta) - center) / scale instead of log(1 - beta) (see
      meta_train.imitation.log_decay_stats). None or a missing keyword: unstandardized.

  Returns:
    A vector of NUM_HYPER_FEATURES float32 values.
  """
  zero = jnp.zeros((), jnp.float32)
  one = jnp.ones((), jnp.float32)
  feats = []
  for key in DECAY_KEYS:
    value = kwargs.get(key)
    if not _is_number(value):
      feats += [zero, zero, zero]
    else:
      beta = jnp.asarray(value, jnp.float32)
      center, scale = (decay_stats or {}).get(key, (0.0, 1.0))
      log_decay = jnp.log(jnp.maximum(1.0 - beta, 1e-12))
      feats += [one, beta, (log_decay - center) / scale]
  for key in LOG_KEYS:
    value = kwargs.get(key)
    feats += [one, _log10_feature(value)] if _is_number(value) else [zero, zero]
  for key in FLAG_KEYS:
    feats.append(one if kwargs.get(key) is True else zero)
  lr = kwargs.get("learning_rate")
  feats.append(_log10_feature(lr) if _is_number(lr) else zero)
  return jnp.stack(feats)


def time_features(count) -> Any:
  """Features of the step count (works on jax arrays): log(t+1) at a few scales."""
  t = jnp.asarray(count, jnp.float32)
  log_t = jnp.log1p(t)
  return jnp.stack([log_t, jnp.tanh(t / 10.0), jnp.tanh(t / 100.0), jnp.tanh(t / 1000.0)])


NUM_TIME_FEATURES = 4
