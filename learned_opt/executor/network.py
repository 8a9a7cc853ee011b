"""The executor's learned pieces (haiku), and how their raw outputs are read.

Everything here is small and runs once per step (graph level) or once per tensor
(layer level); nothing here touches a per-parameter array. The step
(learned_opt.executor.encode, processors, decode) uses the numbers these networks
emit as the weights of a fused elementwise program.

  hypernet  (graph level): conditioning c = [rule embedding, hyperparameter
            features, time features] -> decays and gains of the running averages,
            the weights of the per-edge update network, and a weight-decay gain
            (`split_hyper_outputs`).
  tensor_net (layer level): [c, tensor shape features] -> per tensor, the
            log-exponents that combine scale statistics into the update's
            normalizer, and the coefficients of the layer gain: a linear term and
            a learned hinge on each log-RMS readout (parameter, direction), their
            "all zero" flags and a bias. Trust ratios (LAMB, LARS), update
            clipping and parameter scaling (Adafactor) are all of this form, and
            the coefficients depend on the rule, so the readouts enter bilinearly.

  controller (per tensor, recurrent; with ExecutorConfig.controller_hidden): [c,
            the tensor's training signals] and a GRU state -> its log step size,
            momentum shift and mix offset (learned_opt.executor.controller).

Fresh weights start as one known algorithm for every rule (`prior_hyper`,
`prior_tensor`: Adam without eps, or SGD).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from learned_opt.executor import conditioning, hops
from learned_opt.executor import controller as controller_lib
from learned_opt.executor.config import RUNNING_AVERAGES, ExecutorConfig

NUM_EDGE_FEATURES = 4     # g, s1 (before), s1 (after), s1 debiased
# Per tensor normalizer outputs (see learned_opt.executor.decode): alpha (weight of v),
# the exponents of row rms, column rms and mean row rms, the log-scale bias, the raw
# constant (beta), the raw sign gain and log epsilon.
NUM_NORMALIZER_OUTPUTS = 8
# Per readout r in (log rms param, log rms direction): linear, hinge, hinge knot, zero flag.
NUM_GAIN_COEFFS = 2 * 4 + 1
NUM_TENSOR_OUTPUTS = NUM_NORMALIZER_OUTPUTS + NUM_GAIN_COEFFS
# Tensor-net output index of the first coefficient (linear, then hinge, knot, zero flag)
# on log RMS(direction); see readout.layer_log_gain.
DIRECTION_GAIN_INDEX = NUM_NORMALIZER_OUTPUTS + 4
# Column of the direction's knot tau_d among the NUM_GAIN_COEFFS layer gain coefficients.
DIRECTION_KNOT = DIRECTION_GAIN_INDEX - NUM_NORMALIZER_OUTPUTS + 2
NUM_TENSOR_FEATURES = 8
# learned_opt.executor.encode.tensor_features' columns: rank flags, then the sizes (log10
# of in-neurons, out-neurons, entries and multiplicity, / 10), then where the second
# largest dimension sits against adafactor's min_dim_size_to_factor.
SIZE_COLUMNS = (3, 4, 5, 6)
FACTORING_COLUMN = 7
UNFACTORED = -2.0   # the factoring column of a tensor the rule does not factor
# With ExecutorConfig.learned_step_size, the tensor net's last columns: offsets to the
# step-size integrator's rate and target (learned_opt.executor.step_size).
NUM_STEP_SIZE_OUTPUTS = 2
# With ExecutorConfig.clock_slopes, the hypernet's last columns: per running average k,
# the slope of -log(1 - a_k) and of log b_k in log(1 + t) (three each).
NUM_CLOCK_SLOPES = 6
_MAX_LOG_EPS = 60.0   # log epsilon of the SGD prior: -60, decode's lower clip (none)


class Coefficients(NamedTuple):
  """Graph-level numbers the hypernet emits for one step."""
  decays: jax.Array    # (3,) a_k
  gains: jax.Array     # (3,) b_k
  linear: jax.Array    # (F,)
  hidden_in: jax.Array   # (F, H)
  hidden_out: jax.Array  # (H,)
  weight_decay: jax.Array  # ()
  belief: jax.Array | None = None   # () kappa of the multi-hop modules' belief, or None


def num_hyper_outputs(config: ExecutorConfig) -> int:
  """The hypernet's outputs before the clock slopes: 3 decays, 3 gains, the edge network."""
  h = config.edge_hidden
  return 6 + NUM_EDGE_FEATURES + NUM_EDGE_FEATURES * h + h + 1


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
  encode.tensor_features' rows, so it may be traced."""
  return tensor_features[:, FACTORING_COLUMN] >= 0.5 - 1e-6


def shape_blind(tensor_features: jax.Array) -> jax.Array:
  """Tensor features without the sizes: SIZE_COLUMNS zeroed, and the factoring column
  reduced to factored (1/2, the test's threshold) or not (-2, as for every other rule)."""
  keep = np.ones(NUM_TENSOR_FEATURES, np.float32)
  keep[list(SIZE_COLUMNS)] = 0.0
  blind = tensor_features * keep
  return blind.at[:, FACTORING_COLUMN].set(
      jnp.where(factored_by_rule(tensor_features), 0.5, UNFACTORED))


def num_hyper_features(config: ExecutorConfig) -> int:
  """Length of the executor's hyperparameter features (schema plus extra keywords)."""
  return conditioning.num_hyper_features(config.extra_keywords)


def multi_hop(config: ExecutorConfig) -> bool:
  """Whether the executor has the multi-hop modules (learned_opt.executor.hops)."""
  return config.processor == "multi_hop"


def _networks(config: ExecutorConfig):

  def conditioning_vector(rule_id, hyper_features, time_features):
    embed = hk.Embed(len(config.rules), config.embed_dim, name="rule_embedding")(rule_id)
    return jnp.concatenate([embed, hyper_features, time_features])

  def hypernet(c):
    out = _mlp_with_skip(c, config.hidden, num_hyper_outputs(config), "hypernet",
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

  def hop_net(c, tensor_features, plan_features, round_features):
    """(per tensor hop outputs, per round coefficient offsets, Nesterov's weight, the
    belief kappa, per tensor trust coefficients); see learned_opt.executor.hops. Every
    output starts at zero."""
    if not config.size_features:
      tensor_features = shape_blind(tensor_features)
    x = jnp.concatenate([jnp.broadcast_to(c, tensor_features.shape[:1] + c.shape),
                         tensor_features, plan_features[:, :hops.NUM_NETWORK_PLAN_FEATURES]],
                        axis=-1)
    per_tensor = _mlp_with_skip(x, config.hidden, hops.NUM_TENSOR_OUTPUTS, "hop_tensor")
    r = jnp.concatenate([jnp.broadcast_to(c, round_features.shape[:1] + c.shape),
                         round_features], axis=-1)
    per_round = _mlp_with_skip(r, config.hidden, 3, "hop_round")
    nesterov = hk.Linear(1, w_init=hk.initializers.Constant(0.0), name="nesterov_head")(c)
    belief = hk.Linear(1, w_init=hk.initializers.Constant(0.0), name="belief_head")(c)
    trust = hk.Linear(hops.NUM_TRUST_OUTPUTS, w_init=hk.initializers.Constant(0.0),
                      name="trust_head")(x)
    return per_tensor, per_round, nesterov[0], belief[0], trust

  def controller_net(c, signals, hidden, messages=None):
    """(head outputs (T, controller.NUM_OUTPUTS), new hidden state (T, H)) of the
    learned controller (learned_opt.executor.controller); the head starts at zero.
    `messages` (T, 2H): the cross-layer messages, with config.controller_messages."""
    no_loss = hk.get_parameter("no_loss_signal", (), init=jnp.zeros)
    flag = signals[:, controller_lib.LOSS_FLAG_COLUMN]
    signals = signals.at[:, controller_lib.LOSS_COLUMN].set(
        jnp.where(flag > 0, signals[:, controller_lib.LOSS_COLUMN], no_loss))
    x = jnp.concatenate([jnp.broadcast_to(c, signals.shape[:1] + c.shape), signals], axis=-1)
    if config.controller_messages:
      x = jnp.concatenate([x, messages], axis=-1)
    out, hidden = hk.GRU(config.controller_hidden, name="controller_gru")(x, hidden)
    head = hk.Linear(controller_lib.NUM_OUTPUTS, w_init=hk.initializers.Constant(0.0),
                     name="controller_head")(jnp.concatenate([out, signals], axis=-1))
    return head, hidden

  def init_all(rule_id, hyper_features, time_features, tensor_features, plan_features=None,
               round_features=None, signals=None, hidden=None, messages=None):
    c = conditioning_vector(rule_id, hyper_features, time_features)
    out = hypernet(c), tensor_net(c, tensor_features)
    if multi_hop(config):
      out += (hop_net(c, tensor_features, plan_features, round_features),)
    if config.controller_hidden:
      out += (controller_net(c, signals, hidden, messages),)
    return out

  applies = (conditioning_vector, hypernet, tensor_net)
  applies += (hop_net,) if multi_hop(config) else ()
  return init_all, applies + ((controller_net,) if config.controller_hidden else ())


def raw_decay(beta: float) -> float:
  """The raw output w that `decay` maps to `beta`: w = log((1 - beta) / beta)."""
  return math.log((1.0 - beta) / beta)


def prior_hyper(config: ExecutorConfig) -> np.ndarray:
  """Hypernet biases of the prior: Adam(b1=0.9, b2=0.999) without eps, or SGD."""
  f, h = NUM_EDGE_FEATURES, config.edge_hidden
  decays = [raw_decay(b) for b in (0.9, 0.999, 0.999)]
  gains = [math.log(0.1), math.log(0.001), math.log(0.001)]
  # Adam reads the debiased first moment; SGD the gradient itself.
  linear = [0.0, 0.0, 0.0, 1.0] if config.prior == "adam" else [1.0, 0.0, 0.0, 0.0]
  return np.asarray(decays + gains + linear + [0.0] * (f * h + h) + [0.0], np.float32)


def prior_tensor(config: ExecutorConfig) -> np.ndarray:
  """Tensor-net biases: normalize by the RMS state (Adam, eps 1e-8) or not at all (SGD)."""
  adam = config.prior == "adam"
  # Adam: alpha 1, beta 0, epsilon 1e-8; SGD: alpha 0, beta 1, no epsilon. Node exponents
  # and log-scale bias 0, beta's raw output -30 or 0 ('exp': Adam, SGD) or 0 or 1
  # ('scaled'), sign gain off (softplus(-12) ~ 6e-6, or |0|; ExecutorConfig.normalizer).
  eps = math.log(1e-8) if adam else -_MAX_LOG_EPS
  scaled = config.normalizer == "scaled"
  sign_gain_raw = 0.0 if scaled else -12.0
  if scaled:
    constant_raw = 0.0 if adam else 1.0
  else:
    constant_raw = -30.0 if adam else 0.0
  # 'scaled': SGD's beta term is the gradient RMS, which the mean row exponent -1 cancels.
  mean_row_exponent = -1.0 if scaled and not adam else 0.0
  normalizer = [1.0 if adam else 0.0, 0.0, 0.0, mean_row_exponent, 0.0, constant_raw,
                sign_gain_raw, eps]
  return np.asarray(normalizer + [0.0] * NUM_GAIN_COEFFS, np.float32)


def complete_weights(weights: hk.Params, config: ExecutorConfig) -> hk.Params:
  """`weights` plus, at their initial values, the modules `config` has and they lack,
  less the modules `config` does not run.

  For a checkpoint trained without an optional module (`step_size_head`,
  `clock_slope_head`) and run with it: the new module starts where a fresh executor's
  does (at zero, so the checkpoint's behavior is unchanged). For weights of another
  processor (the multi-hop modules under 'row_column'): the modules it alone runs are
  dropped, as they cannot change an update. Existing modules must match in shape.
  """
  fresh = init_weights(config, jax.random.PRNGKey(0))
  merged = {name: module for name, module in weights.items() if name in fresh}
  for name, module in fresh.items():
    if name not in merged:
      merged[name] = module
    elif jax.tree.map(jnp.shape, merged[name]) != jax.tree.map(jnp.shape, module):
      raise ValueError(f"executor weights for {name!r} have shapes "
                       f"{jax.tree.map(jnp.shape, merged[name])}, but this architecture "
                       f"needs {jax.tree.map(jnp.shape, module)}.")
  return merged


def adapt_weights(weights: hk.Params, source: ExecutorConfig, config: ExecutorConfig,
                  rule_rows: dict[str, str] | None = None) -> hk.Params:
  """`weights` of an executor `source` for the architecture `config`, which may add rules
  after the source's and extra keywords after its own; then `complete_weights` (which
  also drops the source's modules that `config` does not run).

  A new rule's embedding row is a copy of the row of `rule_rows[rule]` (a rule of the
  source, e.g. the base of the new rule), or zeros. A new keyword's inputs enter every
  layer that reads the conditioning vector c with zero weights, so the executor's
  outputs for the source's rules are unchanged.

  Raises:
    ValueError: `config` reorders or drops the source's rules or keywords, naming them.
  """
  for field in ("rules", "extra_keywords"):
    old, new = getattr(source, field), getattr(config, field)
    if tuple(new[:len(old)]) != tuple(old):
      raise ValueError(f"The executor's {field} {tuple(new)} must start with the "
                       f"checkpoint's {tuple(old)} (new ones may only be appended).")
  weights = {name: dict(module) for name, module in weights.items()}
  added = [rule for rule in config.rules if rule not in source.rules]
  if added and "rule_embedding" in weights:
    table = jnp.asarray(weights["rule_embedding"]["embeddings"])
    rows = [table[source.rules.index(rule_rows[rule])] if rule in (rule_rows or {})
            else jnp.zeros(table.shape[1:], table.dtype) for rule in added]
    weights["rule_embedding"]["embeddings"] = jnp.concatenate([table, jnp.stack(rows)])
  old_width, new_width = num_hyper_features(source), num_hyper_features(config)
  if new_width != old_width:
    at = config.embed_dim + old_width   # c = [embedding, hyperparameters, time]
    fresh = init_weights(config, jax.random.PRNGKey(0))
    for name, module in weights.items():
      for key in ("w", "w_i"):   # a Linear's, a GRU's input weights
        w = module.get(key)
        if (name in fresh and w is not None and jnp.ndim(w) == 2
            and fresh[name][key].shape[0] == w.shape[0] + new_width - old_width):
          zeros = jnp.zeros((new_width - old_width, w.shape[1]), w.dtype)
          module[key] = jnp.concatenate([w[:at], zeros, w[at:]])
  return complete_weights(weights, config)


@functools.lru_cache(maxsize=32)
def build(config: ExecutorConfig) -> hk.MultiTransformed:
  """The haiku networks of an executor: apply_fns = (conditioning, hypernet, tensor_net),
  and hop_net with the 'multi_hop' processor."""
  return hk.without_apply_rng(hk.multi_transform(lambda: _networks(config)))


def init_weights(config: ExecutorConfig, key: jax.Array) -> hk.Params:
  """Fresh executor weights."""
  nets = build(config)
  return nets.init(key, jnp.zeros((), jnp.int32),
                   jnp.zeros(num_hyper_features(config)),
                   jnp.zeros(conditioning.NUM_TIME_FEATURES),
                   jnp.zeros((1, NUM_TENSOR_FEATURES)),
                   jnp.zeros((1, hops.NUM_PLAN_FEATURES)),
                   jnp.zeros((1, hops.NUM_ROUND_FEATURES)),
                   jnp.zeros((1, controller_lib.NUM_SIGNALS)),
                   jnp.zeros((1, max(config.controller_hidden, 1))),
                   jnp.zeros((1, 2 * config.controller_hidden)))


def controller_apply(config: ExecutorConfig):
  """The controller's apply function (weights, c, signals, hidden, messages); needs
  config.controller_hidden > 0."""
  return build(config).apply[-1]


def split_hyper_outputs(out: jax.Array, config: ExecutorConfig, clock: Any) -> Coefficients:
  """The hypernet's raw outputs as Coefficients at step `clock`.

  With config.clock_slopes, per named running average k the clock adds
  s_k log(1 + t) to -log(1 - a_k) and u_k log(1 + t) to log b_k.
  """
  f, h = NUM_EDGE_FEATURES, config.edge_hidden
  raw_decays, raw_gain = out[0:3], out[3:6]
  i = 6
  linear = out[i:i + f]; i += f
  hidden_in = out[i:i + f * h].reshape(f, h); i += f * h
  hidden_out = out[i:i + h]; i += h
  weight_decay = out[i]
  clock_term = None
  if config.clock_slopes:   # only the named averages' slopes count (static mask)
    used = [float(name in config.clock_slopes) for name in RUNNING_AVERAGES] * 2
    first = num_hyper_outputs(config)
    slopes = out[first:first + NUM_CLOCK_SLOPES]
    scaled = slopes * jnp.asarray(used, jnp.float32) * jnp.log1p(jnp.asarray(clock, jnp.float32))
    clock_term, raw_gain = scaled[:3], raw_gain + scaled[3:]
  decays = decay(raw_decays, clock_term)
  gains = jnp.exp(jnp.clip(raw_gain, -30.0, 10.0))
  return Coefficients(decays, gains, linear, hidden_in, hidden_out, weight_decay)


def decay(raw: jax.Array, clock_term: jax.Array | None = None) -> jax.Array:
  """A running average's decay in [0, 1) from its raw output: 1 - exp(-softplus(-raw)).

  raw ~ log(1 - a) toward a = 1. `clock_term` (ExecutorConfig.clock_slopes) adds to
  -log(1 - a), floored at 0 (a >= 0); its gradient does not vanish at a = 0.
  """
  neg_log_keep = jax.nn.softplus(-raw)
  if clock_term is not None:
    neg_log_keep = jnp.maximum(neg_log_keep + clock_term, 0.0)
  return 1.0 - jnp.exp(-neg_log_keep)
