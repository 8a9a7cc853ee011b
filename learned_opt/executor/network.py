"""The executor's learned pieces (haiku): encoders and processors above the edges.

Everything here is small and runs once per step (graph level) or once per tensor
(layer level); nothing here touches a per-parameter array. The per-edge work
(`learned_opt.executor.step`) uses the numbers these networks emit as the weights
of a fused elementwise program.

  hypernet  (graph level): conditioning c = [rule embedding, hyperparameter
            features, time features] -> decays and gains of the running averages,
            the weights of the per-edge update network, and a weight-decay gain.
  scale_net (layer level): [c, tensor shape features] -> the log-exponents that
            combine scale statistics into the update's normalizer.
  gain_net  (layer level): [c, tensor shape features, log rms(param),
            log rms(direction)] -> the tensor's log step multiplier (trust ratios,
            clipping and parameter scaling are all of this form).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp

from learned_opt.executor import conditioning

NUM_EDGE_FEATURES = 4     # g, s1 (before), s1 (after), s1 debiased
NUM_SCALE_STATS = 5       # v, row rms, col rms, mean row rms, |numerator|
NUM_TENSOR_FEATURES = 8
_LOG_ZERO = -25.0   # log-RMS at or below this counts as an all-zero tensor


@dataclasses.dataclass(frozen=True)
class ExecutorConfig:
  """Architecture of an executor; saved in every checkpoint beside the weights.

  Attributes:
    rules: rule names the embedding table has rows for (order matters).
    embed_dim: width of the rule embedding.
    hidden: width of the graph- and layer-level MLPs.
    edge_hidden: hidden units of the per-edge (fused elementwise) network.
    node_messages: use row/column mean-square aggregations (one-hop processor);
      False gives a purely per-edge (zero-hop) processor.
    layer_readout: use the layer-level gain network (graph pooling per tensor).
    trained_options: per rule, the optax keywords it was imitated with.
  """
  rules: tuple[str, ...] = ("sgd", "rmsprop", "adam", "adamw", "nadam", "adafactor", "lamb",
                            "lion", "adabelief", "adagrad", "lars")
  embed_dim: int = 8
  hidden: int = 32
  edge_hidden: int = 4
  node_messages: bool = True
  layer_readout: bool = True
  trained_options: tuple[tuple[str, tuple[str, ...]], ...] = ()

  @property
  def num_hyper_outputs(self) -> int:
    h = self.edge_hidden
    return 6 + NUM_EDGE_FEATURES + NUM_EDGE_FEATURES * h + h + 1

  def to_json(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out["rules"] = list(self.rules)
    out["trained_options"] = {k: list(v) for k, v in self.trained_options}
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
    data["trained_options"] = tuple(
        (k, tuple(v)) for k, v in dict(data.get("trained_options", {})).items())
    return cls(**data)


def _mlp_with_skip(x: jax.Array, hidden: int, out: int, name: str) -> jax.Array:
  """Linear(x) + MLP(x): exact linear maps are easy to reach, nonlinear ones possible."""
  linear = hk.Linear(out, name=f"{name}_linear")(x)
  h = jax.nn.relu(hk.Linear(hidden, name=f"{name}_hidden_0")(x))
  h = jax.nn.relu(hk.Linear(hidden, name=f"{name}_hidden_1")(h))
  return linear + hk.Linear(out, w_init=hk.initializers.VarianceScaling(0.01),
                            name=f"{name}_out")(h)


def _networks(config: ExecutorConfig):

  def conditioning_vector(rule_id, hyper_features, time_features):
    embed = hk.Embed(len(config.rules), config.embed_dim, name="rule_embedding")(rule_id)
    return jnp.concatenate([embed, hyper_features, time_features])

  def hypernet(c):
    return _mlp_with_skip(c, config.hidden, config.num_hyper_outputs, "hypernet")

  def scale_net(c, tensor_features):
    x = jnp.concatenate([jnp.broadcast_to(c, tensor_features.shape[:1] + c.shape),
                         tensor_features], axis=-1)
    return _mlp_with_skip(x, config.hidden, NUM_SCALE_STATS + 1, "scale_net")

  def gain_net(c, tensor_features, log_rms_param, log_rms_direction):
    # Log-RMS readouts enter unscaled (clipped at log 1e-11) with "is zero" flags:
    # trust ratios and parameter scaling are exact linear maps of them.
    readouts = []
    for log_rms in (log_rms_param, log_rms_direction):
      readouts += [jnp.maximum(log_rms, _LOG_ZERO)[:, None],
                   (log_rms <= _LOG_ZERO).astype(jnp.float32)[:, None]]
    x = jnp.concatenate([jnp.broadcast_to(c, tensor_features.shape[:1] + c.shape),
                         tensor_features] + readouts, axis=-1)
    return _mlp_with_skip(x, config.hidden, 1, "gain_net")[:, 0]

  def init_all(rule_id, hyper_features, time_features, tensor_features):
    c = conditioning_vector(rule_id, hyper_features, time_features)
    n = tensor_features.shape[0]
    return (hypernet(c), scale_net(c, tensor_features),
            gain_net(c, tensor_features, jnp.zeros(n), jnp.zeros(n)))

  return init_all, (conditioning_vector, hypernet, scale_net, gain_net)


def build(config: ExecutorConfig) -> hk.MultiTransformed:
  """The haiku networks of an executor: apply_fns = (cond, hypernet, scale, gain)."""
  return hk.without_apply_rng(hk.multi_transform(lambda: _networks(config)))


def init_weights(config: ExecutorConfig, key: jax.Array) -> hk.Params:
  """Fresh executor weights."""
  nets = build(config)
  return nets.init(key, jnp.zeros((), jnp.int32),
                   jnp.zeros(conditioning.NUM_HYPER_FEATURES),
                   jnp.zeros(conditioning.NUM_TIME_FEATURES),
                   jnp.zeros((1, NUM_TENSOR_FEATURES)))
