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
# Keywords an executor may add after the schema's slots (ExecutorConfig.extra_keywords),
# each a decay slot (3 features) or a log slot (2): the AdamW half of Muon, and the
# hypergradient rule's rate.
EXTRA_DECAY_KEYS = ("adam_b1", "adam_b2")
EXTRA_LOG_KEYS = ("adam_eps_root", "adam_weight_decay", "hypergradient_lr")
EXTRA_KEYS = EXTRA_DECAY_KEYS + EXTRA_LOG_KEYS


def num_hyper_features(extra_keys: tuple[str, ...] = ()) -> int:
  """Length of the hyperparameter features with the extra keyword slots `extra_keys`."""
  return NUM_HYPER_FEATURES + sum(3 if k in EXTRA_DECAY_KEYS else 2 for k in extra_keys)


def check_extra_keys(extra_keys: tuple[str, ...]) -> None:
  unknown = sorted(set(extra_keys) - set(EXTRA_KEYS))
  if unknown:
    raise ValueError(f"Unknown extra conditioning keywords {unknown}; use names from "
                     f"{EXTRA_KEYS}.")


def _log10_feature(value: Any) -> Any:
  return jnp.log10(jnp.maximum(jnp.asarray(value, jnp.float32), 1e-30)) / 10.0


def _is_number(value: Any) -> bool:
  return value is not None and not isinstance(value, (bool, str)) and not callable(value)


def _decay_slot(value: Any, stats: tuple[float, float]) -> list[Any]:
  """(present, beta, standardized log(1 - beta)), or zeros for a missing value."""
  if not _is_number(value):
    return [jnp.zeros((), jnp.float32)] * 3
  beta = jnp.asarray(value, jnp.float32)
  center, scale = stats
  log_decay = jnp.log(jnp.maximum(1.0 - beta, 1e-12))
  return [jnp.ones((), jnp.float32), beta, (log_decay - center) / scale]


def _log_slot(value: Any) -> list[Any]:
  """(present, log10(value) / 10), or zeros for a missing value."""
  if not _is_number(value):
    return [jnp.zeros((), jnp.float32)] * 2
  return [jnp.ones((), jnp.float32), _log10_feature(value)]


def hyperparameter_features(kwargs: Mapping[str, Any],
                            decay_stats: Mapping[str, tuple[float, float]] | None = None,
                            extra_keys: tuple[str, ...] = ()) -> jax.Array:
  """The hyperparameter part of the conditioning vector (float32, fixed size).

  Args:
    kwargs: optax keyword arguments of the rule (learning_rate is read here as
      its log10 value for a float, or ignored for a schedule).
      Values may be Python numbers or (traced) jax scalars, so the features work
      under `optax.inject_hyperparams`.
    decay_stats: {decay keyword: (center, scale)}: that keyword's third feature
      is (log(1 - beta) - center) / scale instead of log(1 - beta) (see
      meta_train.imitation.log_decay_stats). None or a missing keyword: unstandardized.
    extra_keys: keywords of EXTRA_KEYS read after the schema's slots, in this order.

  Returns:
    A vector of num_hyper_features(extra_keys) float32 values.
  """
  zero = jnp.zeros((), jnp.float32)
  one = jnp.ones((), jnp.float32)
  feats = []
  for key in DECAY_KEYS:
    feats += _decay_slot(kwargs.get(key), (decay_stats or {}).get(key, (0.0, 1.0)))
  for key in LOG_KEYS:
    feats += _log_slot(kwargs.get(key))
  for key in FLAG_KEYS:
    feats.append(one if kwargs.get(key) is True else zero)
  lr = kwargs.get("learning_rate")
  feats.append(_log10_feature(lr) if _is_number(lr) else zero)
  for key in extra_keys:   # after the schema, so that executors without them are unchanged
    feats += (_decay_slot(kwargs.get(key), (decay_stats or {}).get(key, (0.0, 1.0)))
              if key in EXTRA_DECAY_KEYS else _log_slot(kwargs.get(key)))
  return jnp.stack(feats)


def time_features(count) -> Any:
  """Features of the step count (works on jax arrays): log(t+1) at a few scales."""
  t = jnp.asarray(count, jnp.float32)
  log_t = jnp.log1p(t)
  return jnp.stack([log_t, jnp.tanh(t / 10.0), jnp.tanh(t / 100.0), jnp.tanh(t / 1000.0)])


NUM_TIME_FEATURES = 4
