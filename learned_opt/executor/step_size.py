"""The hand-set per-tensor step-size integrator (HandSet.step_size_*; off by default).

Per tensor, a log step size l (O(layers) state) integrates the cosine between
the new gradient and the old first moment, read on the readouts' row sample,
and adds to the layer's log gain:

  l' = clip((1 - lambda) l + beta D(cos(g, s1) - c), log f, log F),

beta = HandSet.step_size_adaptation (or the tensor net's rate with
ExecutorConfig.learned_step_size), c = step_size_target, f and F the
min/max_step_size_factor, lambda = step_size_leak. D is the dead band
(`deadband`): with step_size_deadband = w > 0, x is replaced by 0 where it lies
in [-w, 0] and by x + w below, so a gradient only slightly against the momentum,
as minibatch noise makes it at any step size, holds the step instead of
shrinking it; a clear reversal still does. With step_size_deadband_fall = K > 0
the band's width is w (1 - clip(|f| / K, 0, 1)), f = log RMS(g) - log RMS(v)
(`gradient_fall`): gradients that vanish with the loss, or that jump above what
the second moment remembers, close the band.

Gradients that keep agreeing with the momentum say the steps are short;
gradients that turn against it say they overshoot (hypergradient descent on the
log step size, with a scale-free signal). With c = 0 it settles where the next
gradient is orthogonal to the momentum, the greedy one-step optimum, whose steps
are too short over a long run; a slightly negative c accepts some overshoot.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.executor.config import ExecutorConfig, HandSet

_TINY = 1e-30


class IntegratorState(NamedTuple):
  """The integrator's state after a step; None where the hand-set record needs none."""
  log_step: jax.Array | None          # (T,) adapted log step sizes
  grad_mean_square: jax.Array | None  # (T,) running mean of g^2, for the band's gate


def adapting(config: ExecutorConfig, hand_set: HandSet) -> bool:
  """Whether the integrator runs (a hand-set rate, or a learned head)."""
  return bool(hand_set.step_size_adaptation) or config.learned_step_size


def gated(config: ExecutorConfig, hand_set: HandSet) -> bool:
  """Whether the dead band is gated by the gradient's fall (one float per tensor)."""
  return (adapting(config, hand_set) and hand_set.step_size_deadband > 0
          and hand_set.step_size_deadband_fall > 0)


def init(num_tensors: int, config: ExecutorConfig, hand_set: HandSet) -> IntegratorState:
  """Zero state (two distinct buffers: a state may be donated)."""
  zeros = lambda: jnp.zeros((num_tensors,), jnp.float32)  # noqa: E731
  return IntegratorState(zeros() if adapting(config, hand_set) else None,
                         zeros() if gated(config, hand_set) else None)


def deadband(x: jax.Array, width: float | jax.Array) -> jax.Array:
  """x above 0, x + width below -width, 0 between: the integrator's signal with a band
  of cosines just under the target that hold the step size still
  (HandSet.step_size_deadband). `width` may be an array (per tensor)."""
  if isinstance(width, (int, float)) and not width:
    return x
  return jnp.where(x > 0, x, jnp.minimum(x + width, 0.0))


def gradient_fall(square: jax.Array, running: jax.Array, a2: jax.Array, b2: jax.Array,
                  z2: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(f, m') per tensor: f = log RMS(g) - log sqrt(m' / z2'), m' = a2 m + b2 mean(g^2).

  `square` is mean(g^2); m' / z2' is the debiased mean of v^2 = s2'^2 / z2', since
  s2'^2 = a2 s2^2 + b2 g^2 elementwise: f < 0 where the gradient has fallen below what
  the second moment remembers, f > 0 where it has jumped above it; s2 is never read.
  """
  running = a2 * running + b2 * square
  return 0.5 * (jnp.log(square + _TINY) - jnp.log(running / z2 + _TINY)), running


def gated_width(width: float, fall: jax.Array, scale: float) -> jax.Array:
  """The dead band's width where the gradient sits `fall` (log RMS, `gradient_fall`)
  off its long memory: w at 0, closing linearly to 0 at `scale` below or above (a
  gradient that vanishes with the loss, or one that jumps in an instability)."""
  return width * (1.0 - jnp.clip(jnp.abs(fall) / scale, 0.0, 1.0))


def integrate(state: IntegratorState, alignments: list, g_squares: list,
              rate: jax.Array | float, target: jax.Array | float, second: tuple,
              hand_set: HandSet) -> IntegratorState:
  """The integrator's new state from the tensors' cosines and mean squares (lists of
  scalars, graph order).

  `second` is (a2, b2, z2') of the second moment, for the band's gate (read only
  when `state.grad_mean_square` is kept).
  """
  width = hand_set.step_size_deadband
  grad_mean_square = state.grad_mean_square
  if grad_mean_square is not None:
    fall, grad_mean_square = gradient_fall(jnp.stack(g_squares), grad_mean_square,
                                           *second)
    width = gated_width(width, fall, hand_set.step_size_deadband_fall)
  signal = deadband(jnp.stack(alignments) - target, width)
  log_step = state.log_step
  if hand_set.step_size_leak:
    log_step = (1.0 - hand_set.step_size_leak) * log_step
  log_step = jnp.clip(log_step + rate * signal, math.log(hand_set.min_step_size_factor),
                      math.log(hand_set.max_step_size_factor))
  return IntegratorState(log_step, grad_mean_square)
