"""An executor with fixed weights and a fixed rule conditioning, usable as optax.

`ExecutorOptimizer(weights, config, "adam", {"learning_rate": 1e-3}, hand_set)`
behaves like a Rule: `init`, `step(grads, state, params)` and `as_optax()`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax

from learned_opt import _tree
from learned_opt.executor import conditioning, encode, hops, network, step as step_lib
from learned_opt.executor.config import ExecutorConfig, HandSet, check_pair
from learned_opt.graph import ParamGraph

PyTree = Any


@functools.lru_cache(maxsize=64)
def _graph_for(treedef: Any, shapes: tuple[tuple[tuple[int, ...], str], ...]) -> ParamGraph:
  leaves = [jax.ShapeDtypeStruct(s, d) for s, d in shapes]
  return ParamGraph.from_params(jax.tree.unflatten(treedef, leaves))


def graph_of(tree: PyTree) -> ParamGraph:
  """The (cached) parameter graph of a pytree's structure and shapes.

  Raises:
    TypeError: a leaf the graph cannot read (not an array, or not floating point),
      naming the leaf and what to do.
  """
  leaves, treedef = jax.tree.flatten(tree)
  if not all(hasattr(x, "shape") and hasattr(x, "dtype") for x in leaves):
    return ParamGraph.from_params(tree)   # raises the graph's error for the leaf
  return _graph_for(treedef, tuple((tuple(x.shape), jnp.dtype(x.dtype).name) for x in leaves))


def _as_arrays(tree: PyTree) -> PyTree:
  """Python scalars as arrays (optax accepts them as leaves); arrays and
  jax.ShapeDtypeStruct leaves as they are."""
  return jax.tree.map(lambda x: x if hasattr(x, "shape") else jnp.asarray(x), tree)


# Keywords the executor runs at one value only (the rules' rounds it has no modules for:
# Muon's other preconditionings, its adaptive scaling and RMS matching, masks, dtypes
# and a separate AdamW learning rate), with that value.
ONLY_AT = {"preconditioning": "frobenius", "adaptive": False, "consistent_rms": None,
           "weight_decay_mask": None, "mu_dtype": None, "adam_learning_rate": None}


def check_algorithm(config: ExecutorConfig, algorithm: str,
                    kwargs: Mapping[str, Any]) -> None:
  """Refuses a rule or an option the executor was not trained for, clearly."""
  if algorithm not in config.rules:
    raise KeyError(f"This executor has no embedding for rule {algorithm!r}; it knows "
                   f"{', '.join(config.rules)}.")
  from learned_opt import algorithms
  rule_kwargs = {k: v for k, v in kwargs.items()}
  rule = algorithms.get(algorithm, **rule_kwargs)  # optax's keyword validation and errors.
  if type(rule).message_passing is not algorithms.base.Rule.message_passing:  # has rounds
    refused = {k: v for k, v in kwargs.items() if k in ONLY_AT and v is not ONLY_AT[k]
               and v != ONLY_AT[k]}
    if refused:
      raise ValueError(
          f"{algorithm}: the executor runs {sorted(refused)} only at "
          f"{ {k: ONLY_AT[k] for k in sorted(refused)} } (it has no modules for the others); "
          f"use the rule itself (learned_opt.algorithms.get({algorithm!r}, ...)) for them.")
  trained = dict(config.trained_options)
  if trained:
    if algorithm not in trained:
      raise ValueError(f"This executor was not imitation-trained on {algorithm!r} (trained on "
                       f"{', '.join(sorted(trained))}); its output for it is undefined.")
    untrained = sorted(set(kwargs) - set(trained[algorithm]) - {"learning_rate"})
    if untrained:
      raise ValueError(f"{algorithm}: option(s) {untrained} were not varied when this "
                       f"executor was trained (it knows {sorted(trained[algorithm])}); "
                       "use the rule itself (learned_opt.algorithms.get) for them.")


def conditioning_kwargs(config: ExecutorConfig, algorithm: str,
                        kwargs: Mapping[str, Any]) -> dict[str, Any]:
  """The keywords the executor is conditioned on, completed with optax's defaults.

  An executor trained with a fixed set of keywords per rule (`trained_options`)
  always saw all of them, so omitted ones take optax's default and only those
  keywords are used; a decay given as None (e.g. sgd without momentum) reads 0.
  """
  from learned_opt import algorithms
  full = algorithms.get(algorithm, **kwargs).hyperparams
  trained = dict(config.trained_options).get(algorithm)
  keys = trained if trained else [k for k, v in full.items() if v is not None]
  out = {}
  for key in keys:
    value = full.get(key)
    if value is None and key in conditioning.DECAY_KEYS:
      value = 0.0
    out[key] = value
  return out


def hyper_features(config: ExecutorConfig, algorithm: str,
                   kwargs: Mapping[str, Any]) -> jax.Array:
  """The executor's hyperparameter features for `algorithm` with optax keywords `kwargs`
  (completed by `conditioning_kwargs`, decays standardized as `config` says)."""
  return conditioning.hyperparameter_features(conditioning_kwargs(config, algorithm, kwargs),
                                              config.decay_stats(algorithm),
                                              config.extra_keywords)


def check_state(state: Any, grads: PyTree, config: ExecutorConfig | None = None,
                hand_set: HandSet | None = None) -> None:
  """Raises a clear error unless `state` is an `ExecutorState` made for `grads`' tree
  (and, given `config` and `hand_set`, for that executor).

  A state restored from a checkpoint without a target comes back as plain lists or
  dicts, one saved by a learned_opt with other state fields cannot be read as this
  version's, and one made by an executor of another architecture or hand-set record
  keeps other fields; all are refused here, before any arithmetic, with what to do.
  """
  fields = step_lib.ExecutorState._fields
  if not isinstance(state, step_lib.ExecutorState):
    found = getattr(type(state), "_fields", None)
    detail = (f"a {type(state).__name__} with fields {found}" if found
              else f"a {type(state).__name__}")
    raise TypeError(
        f"The learned optimizer's state must be the ExecutorState its init returns "
        f"(fields {fields}); got {detail}. A state restored from a checkpoint without a "
        f"target comes back as plain lists or dicts: restore it onto the target "
        f"jax.eval_shape(optimizer.init, params). A state saved by a learned_opt whose "
        f"ExecutorState had other fields cannot be read by this version: call "
        f"optimizer.init(params) to start a fresh one.")
  _tree.check_same_structure(state.s1, grads, what="the optimizer state's s1",
                             reference_name="grads")
  if config is not None and hand_set is not None:
    problems = step_lib.layout_problems(state, config, hand_set)
    if problems:
      raise TypeError(f"This ExecutorState was made by an executor of another architecture "
                      f"or hand-set record ({'; '.join(problems)}); call "
                      f"optimizer.init(params) to start a fresh one.")


@dataclasses.dataclass(frozen=True, eq=False)
class ExecutorOptimizer:
  """A trained executor conditioned on one rule and its optax hyperparameters.

  `hand_set` is what was set by hand on it (a checkpoint's record; the default sets
  nothing).
  """
  weights: Any = dataclasses.field(repr=False)
  config: ExecutorConfig
  algorithm: str
  hyperparams: Mapping[str, Any]
  hand_set: HandSet = HandSet()

  def __post_init__(self):
    check_pair(self.config, self.hand_set)
    check_algorithm(self.config, self.algorithm, self.hyperparams)
    if "learning_rate" not in self.hyperparams:
      raise TypeError(f"{self.algorithm}: learning_rate is required.")

  @property
  def rule_id(self) -> jax.Array:
    return jnp.asarray(self.config.rules.index(self.algorithm), jnp.int32)

  @property
  def hyper_features(self) -> jax.Array:
    return hyper_features(self.config, self.algorithm, self.hyperparams)

  def init(self, params: PyTree) -> step_lib.ExecutorState:
    graph_of(params)   # a pytree the graph cannot read is refused here, with the reason
    return step_lib.init_state(_as_arrays(params), self.config, self.hand_set)

  def step(self, grads: PyTree, state: step_lib.ExecutorState, params: PyTree | None = None,
           value: Any = None) -> step_lib.StepOutput:
    """One update; `value` (the loss at `params`) is read by a learned controller."""
    grads, params = _as_arrays(grads), _as_arrays(params)
    if params is not None:
      _tree.check_same_structure(grads, params)
    check_state(state, grads, self.config, self.hand_set)
    graph = graph_of(grads)
    feats = encode.tensor_features(graph, self.hyperparams.get("min_dim_size_to_factor"))
    return step_lib.executor_step(
        self.weights, self.config, self.hand_set, graph, self.rule_id, self.hyper_features,
        self.hyperparams["learning_rate"], feats, grads, state, params,
        plan=self.plan(grads), value=value)

  def plan(self, tree: PyTree) -> hops.Plan | None:
    """The rule's rounds on `tree` (static), or None (no rounds, or no multi-hop modules)."""
    if not network.multi_hop(self.config):
      return None
    from learned_opt import algorithms  # pylint: disable=import-outside-toplevel
    return hops.plan_for(algorithms.get(self.algorithm, **self.hyperparams), tree)

  def as_optax(self) -> optax.GradientTransformationExtraArgs:
    """optax transformation. `value=` (the loss, as optax's `value_and_grad_from_state`
    users pass it) is read by a learned controller; other keywords are ignored."""

    def update_fn(updates, state, params=None, **extra_args):
      value = extra_args.get("value") if self.config.controller_hidden else None
      out = self.step(updates, state, params, value)
      return out.updates, out.state

    return optax.GradientTransformationExtraArgs(self.init, update_fn)
