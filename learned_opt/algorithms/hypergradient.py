"""Hypergradient step-size adaptation (Baydin et al. 2018) on top of Adam or Muon.

"Online Learning Rate Adaptation with Hypergradient Descent" learns the step size
online by gradient descent on the loss with respect to it. Here every tensor
(layer) l has its own step size alpha_l, a readout-level state. With t the step
count after incrementing:

  d_{l,t} = the base rule's update at learning rate 1, negated        (hints of the base)
            (Adam: m^_t / (sqrt(v^_t + eps_root) + eps); Muon: its orthogonalized
            direction, or AdamW's on the leaves it does not orthogonalize; both with
            the base's own weight decay, masks and other options)
  h_{l,t} = g_{l,t} . d_{l,t-1}   (summed over the tensor's entries; df/dalpha = -h)
                                                                  (hint 'hypergradient', LAYER)
  additive:        alpha_{l,t} = alpha_{l,t-1} + beta h_{l,t}
  multiplicative:  c_{l,t} = h_{l,t} / (||g_{l,t}|| ||d_{l,t-1}||)   (0 where either norm is 0)
                   alpha_{l,t} = alpha_{l,t-1} (1 + beta c_{l,t})    (hint 'hypergradient' is c)
  alpha_{l,t} <- clip(alpha_{l,t}, min_learning_rate, max_learning_rate)  (where given)
  u_{l,t} = -alpha_{l,t} d_{l,t}            (hints 'step_size', 'log_step_size', LAYER)

with alpha_{l,0} = learning_rate and d_{l,0} = 0, so alpha_{l,1} = learning_rate and
the first step is the base rule's. With beta = 0 the rule is its base rule.

Defaults: form='multiplicative' (recommended: the cosine is scale-free, so one beta
suits every tensor, base and loss scale, and alpha stays positive for beta < 1) with
hypergradient_lr=beta=1e-3 (alpha changes by at most 0.1% a step, a factor e over
1000 steps of aligned gradients). The additive form is the paper's main rule; its
beta has the units of alpha / (g . d) and must be chosen per problem (the paper's
Adam-HD used 1e-7), and alpha can then become negative unless min_learning_rate is
set ('log_step_size' floors alpha at the smallest normal float32).

The base's hints keep their names (its 'direction' leaves out its weight decay);
its learning-rate hints (at learning rate 1) are dropped, and 'learning_rate'
(GRAPH) is alpha_0 = learning_rate. 'previous_direction'
(EDGE) is d_{l,t-1}. Memory: the base rule's state, one float32 per tensor and
d_{l,t-1}, one extra float per parameter (in the parameter's dtype).

A Muon `adam_learning_rate` in `base_kwargs` scales the AdamW leaves' direction
relative to learning rate 1 (the step sizes then multiply it).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.algorithms import base
from learned_opt.graph import ops

FORMS = ("multiplicative", "additive")
BASES = ("adam", "muon")


class HypergradientState(NamedTuple):
  count: jax.Array            # int32 scalar: steps taken
  base_state: NamedTuple      # the base rule's state
  step_size: base.PyTree      # alpha_{l,t}: a float32 scalar per leaf
  direction: base.PyTree      # d_{l,t}: the last direction, per entry


def hypergradient(grad: jax.Array, previous: jax.Array, form: str) -> jax.Array:
  """g . d_prev (additive) or its cosine (multiplicative, 0 where a norm is 0): float32."""
  dot = ops.reduce_all(grad.astype(jnp.float32) * previous.astype(jnp.float32), "sum")
  if form == "additive":
    return dot
  norms = base.layer_norm(grad) * base.layer_norm(previous)
  return jnp.where(norms > 0, dot / jnp.where(norms > 0, norms, 1.0), 0.0)


def adapt(step_size: jax.Array, h: jax.Array, form: str, beta: Any,
          low: Any = None, high: Any = None) -> jax.Array:
  """alpha + beta h (additive) or alpha (1 + beta h) (multiplicative), clipped to [low, high]."""
  new = step_size + beta * h if form == "additive" else step_size * (1 + beta * h)
  if low is not None or high is not None:
    new = jnp.clip(new, low, high)
  return new.astype(jnp.float32)


def log_step_size(step_size: jax.Array) -> jax.Array:
  """log alpha, with alpha floored at the smallest normal float32 (finite for alpha <= 0)."""
  return jnp.log(jnp.maximum(step_size, jnp.finfo(jnp.float32).tiny))


@base.register("hypergradient")
@dataclasses.dataclass(frozen=True)
class Hypergradient(base.Rule):
  """Per-tensor hypergradient step sizes (Baydin et al. 2018) on Adam or Muon."""
  learning_rate: Any
  hypergradient_lr: Any = 1e-3
  form: str = "multiplicative"
  base: str = "adam"
  base_kwargs: Any = None
  min_learning_rate: Any = None
  max_learning_rate: Any = None

  def __post_init__(self):
    if self.form not in FORMS:
      raise ValueError(f"hypergradient: unknown form {self.form!r}; use one of {FORMS}.")
    if self.base not in BASES:
      raise ValueError(f"hypergradient: unknown base {self.base!r}; use one of {BASES}.")
    if callable(self.learning_rate):
      raise base.UnsupportedOptionError(
          "hypergradient: learning_rate must be a number, not a schedule: it is only the "
          "initial step size alpha_0, and the step sizes are then adapted state.")
    if "learning_rate" in (self.base_kwargs or {}):
      raise ValueError("hypergradient: base_kwargs must not hold learning_rate (the base "
                       "runs at learning rate 1; pass the initial step size as learning_rate).")
    self.base_rule()  # validates base_kwargs now rather than at the first step

  def base_rule(self) -> base.Rule:
    """The base rule at learning rate 1: its updates are -d_t."""
    return base.get(self.base, learning_rate=1.0, **(self.base_kwargs or {}))

  def message_passing(self, tree):
    """The base rule's rounds (Muon's Newton-Schulz iterations; None for Adam)."""
    return self.base_rule().message_passing(tree)

  def init(self, params):
    base.check_real(params, "hypergradient")
    alpha = jax.tree.map(lambda _: jnp.asarray(self.learning_rate, jnp.float32), params)
    return HypergradientState(count=base.zero_count(), base_state=self.base_rule().init(params),
                              step_size=alpha, direction=base.zeros_like(params))

  def _step(self, grads, state, params):
    base_updates, base_state, trace = self.base_rule().step(grads, state.base_state, params)
    direction = jax.tree.map(jnp.negative, base_updates)
    h = jax.tree.map(lambda g, d: hypergradient(g, d, self.form), grads, state.direction)
    alpha = jax.tree.map(
        lambda a, x: adapt(a, x, self.form, self.hypergradient_lr, self.min_learning_rate,
                           self.max_learning_rate), state.step_size, h)
    updates = jax.tree.map(lambda a, d: -a.astype(d.dtype) * d, alpha, direction)
    trace = {k: v for k, v in trace.items() if not k.endswith("learning_rate")}
    trace.update(
        previous_direction=base.Hint(state.direction),
        hypergradient=base.Hint(h, base.LAYER),
        step_size=base.Hint(alpha, base.LAYER),
        log_step_size=base.Hint(jax.tree.map(log_step_size, alpha), base.LAYER),
        learning_rate=base.learning_rate_hint(self.learning_rate, state.count))
    new_state = HypergradientState(base.increment(state.count), base_state, alpha,
                                   base.cast_like(direction, state.direction))
    return updates, new_state, trace
