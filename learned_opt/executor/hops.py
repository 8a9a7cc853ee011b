"""Multi-hop rounds: a rule's two-hop message passing on weight matrices, learned per round.

With ExecutorConfig.processor 'multi_hop', a rule whose algorithm has rounds
(`Rule.message_passing`, e.g. Muon's Newton-Schulz iterations) runs them on the
edge network's output n of each weight tensor its plan names (Muon's dimension
numbers: which axes are in-neurons, out-neurons and multiplicity):

  X_0 = n / (||n||_F + eps)                       per (in, out) slice
  for k = 1..K:  A = X X^T  (two hops: node -> edge -> node, on the smaller side)
                 X_k = c0_k X + (c1_k A + c2_k A A) X,
                 scaled down to RMS singular value ROUND_BOUND where it is above

K is static (the rule's `ns_steps`; a rule without rounds runs none). The round
coefficients are learned: c_k = r_k + R(c, r_k, k / K), r_k the rule's own row (its
`ns_coeffs`, a hyperparameter the network reads like the others) and R the
`hop_round` network on the conditioning c (rule embedding, hyperparameters, clock),
zero at initialization. Rounds past a rule's own K (a batch that runs several rules
on one tree runs the most rounds, `union`) are identities. Per tensor the
`hop_tensor` network reads c, the tensor's shape features and its plan
(orthogonalized or not, log fan-in, log fan-out) and emits

  m       the mix, clipped to [0, 1]: d = (1 - m) n / denominator + m e^{l} X_K + omega_t p
          (0 on tensors the rule's plan does not name)
  l       the log gain of the rounds' output (Muon's shape scale)
  s       a first-moment shift: decay 1 - (1 - a1) e^s (Muon's beta beside AdamW's b1)
  delta   a weight-decay offset: omega_t = max(omega + delta, 0)

all zero at initialization (the executor is then its prior on every rule). The
`nesterov_head` adds eta (c) times Nesterov's debiased momentum
a1_t s1' / (a1_t z1' + b1) + b1 g / z1' to n (exact for Muon's and NAdam's
`nesterov=True`, folded onto the (g, s1') basis like the edge network), and the
`belief_head` a graph-level kappa (c) by which the second moment tracks the
gradient's deviation from the new first moment, (g - kappa s1')^2 in place of g^2
(AdaBelief's belief; encode.edge_moments). Both start at zero.

A rule that scales its gradient per tensor before its moments
(`Rule.input_readouts`: LARS's trust ratio) names, per tensor, that readout's
(log coefficient, parameter exponent, gradient exponent) r; on the tensors its plan
names (static: one reduction over g each) the first moment and the edge network read
g^ = rho g,

  log rho = lambda_0 + lambda_p log RMS(p) + lambda_g log RMS(g),   lambda = r + T(c, ...),

rho = 1 where either RMS is zero, T the `trust_head` (zero at initialization, so a
fresh executor reads the rule's own readout; LARS: r = (log trust_coefficient, 1, -1)).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from learned_opt.graph import ParamGraph

# Per tensor: runs the rounds, log10(fan_in) / 10, log10(fan_out) / 10 (what the hop
# networks read), then whether the rule reads an input readout there and its readout r.
NUM_PLAN_FEATURES = 7
NUM_NETWORK_PLAN_FEATURES = 3
NUM_TRUST_OUTPUTS = 3    # lambda_0, lambda_p, lambda_g
NUM_ROUND_FEATURES = 5   # the rule's (c0, c1, c2) of the round, k / K, active
NUM_TENSOR_OUTPUTS = 4   # mix, log gain, first-moment shift, weight-decay offset
ROUND_EPS = 1e-8         # X_0's guard (Muon's default eps)
# The rounds' bound on an iterate's RMS singular value (muon.newton_schulz's `bound`):
# never reached by Muon's coefficients, it keeps learned ones from overflowing.
ROUND_BOUND = 2.0
_IDENTITY_ROUND = (1.0, 0.0, 0.0)   # X_k = X_{k-1}: an inactive round


@dataclasses.dataclass(frozen=True)
class Plan:
  """A rule's rounds on one tree, static (hashable, a pytree without leaves): the K
  coefficient rows (c0, c1, c2), per tensor (graph order) its
  learned_opt.algorithms.muon.LeafPlan (`muon` False: no rounds on it) and its input
  readout (learned_opt.algorithms.base.InputReadout, or None; () : none anywhere)."""
  coeff_rows: tuple[tuple[float, float, float], ...]
  leaves: tuple[Any, ...]
  input_readout: tuple[Any, ...] = ()

  @property
  def rounds(self) -> int:
    return len(self.coeff_rows)

  def runs_on(self, index: int) -> bool:
    """Whether tensor `index` runs the rounds."""
    return self.rounds > 0 and bool(self.leaves[index].muon)

  def reads_input(self, index: int) -> bool:
    """Whether tensor `index`'s gradient is scaled by its input readout."""
    return bool(self.input_readout) and self.input_readout[index] is not None


jax.tree_util.register_static(Plan)


class HopFeatures(NamedTuple):
  """One step's learned hop numbers (traced)."""
  mix: jax.Array            # (T,) m in [0, 1], zero on tensors without rounds
  log_gain: jax.Array       # (T,) l
  shift: jax.Array          # (T,) s
  weight_decay: jax.Array   # (T,) delta
  coeff_rows: jax.Array     # (K, 3) c_k
  nesterov: jax.Array       # () eta
  belief: jax.Array         # () kappa (encode.edge_moments)
  trust: jax.Array          # (T, NUM_TRUST_OUTPUTS) lambda, zero where no input readout


def plan_for(rule: Any, tree: Any) -> Plan | None:
  """The static plan of `rule` (a learned_opt.algorithms Rule) on `tree`, or None when
  the rule has neither rounds nor input readouts."""
  from learned_opt.algorithms import muon  # pylint: disable=import-outside-toplevel
  passing, readouts = rule.message_passing(tree), rule.input_readouts(tree)
  if passing is None and readouts is None:
    return None
  if passing is None:
    return Plan((), tuple(muon.LeafPlan(False) for _ in readouts), tuple(readouts))
  rows = np.asarray(passing.coeff_rows, np.float32).reshape(-1, 3)
  return Plan(tuple(tuple(float(c) for c in row) for row in rows), tuple(passing.plans),
              tuple(readouts or ()))


def union(plans: Sequence[Plan | None], num_tensors: int) -> Plan | None:
  """One static plan that runs the rounds wherever any of `plans` does, as many rounds
  as the most (a batch of rules on one tree; each keeps its own through its features).

  Raises:
    ValueError: two plans fold one tensor's axes differently.
  """
  given = [p for p in plans if p is not None and (p.rounds or p.input_readout)]
  if not given:
    return None
  leaves = []
  for idx in range(num_tensors):
    running = {p.leaves[idx] for p in given if p.runs_on(idx)}
    if len(running) > 1:
      raise ValueError(f"Rules of one batch fold tensor {idx}'s axes differently "
                       f"({sorted(running)}); give them the same dimension numbers.")
    leaves.append(running.pop() if running else given[0].leaves[idx]._replace(muon=False))
  rounds = max(p.rounds for p in given)
  # Where any rule reads an input readout (each keeps its own through its features).
  readout = tuple(next((p.input_readout[idx] for p in given if p.reads_input(idx)), None)
                  for idx in range(num_tensors))
  return Plan((_IDENTITY_ROUND,) * rounds, tuple(leaves),
              readout if any(r is not None for r in readout) else ())


def plan_features(plan: Plan | None, graph: ParamGraph) -> jax.Array:
  """(T, NUM_PLAN_FEATURES) static features of every tensor's plan (zeros without one)."""
  rows = []
  for idx in range(len(graph.tensors)):
    readout = ([1.0, *plan.input_readout[idx]] if plan is not None and plan.reads_input(idx)
               else [0.0] * 4)
    if plan is None or not plan.runs_on(idx):
      rows.append([0.0, 0.0, 0.0] + readout)
    else:
      leaf = plan.leaves[idx]
      rows.append([1.0, math.log10(leaf.fan_in) / 10, math.log10(leaf.fan_out) / 10] + readout)
  return jnp.asarray(rows, jnp.float32).reshape(len(rows), NUM_PLAN_FEATURES)


def round_features(plan: Plan | None, rounds: int | None = None) -> jax.Array:
  """(K, NUM_ROUND_FEATURES): each round's own coefficients, k / K and 1 (active), then
  inactive identity rounds up to `rounds` (a batch's most; default: the plan's own)."""
  own = 0 if plan is None else plan.rounds
  total = own if rounds is None else rounds
  rows = [list(plan.coeff_rows[k]) + [(k + 1) / own, 1.0] for k in range(own)]
  rows += [list(_IDENTITY_ROUND) + [1.0, 0.0]] * (total - own)
  return jnp.asarray(rows, jnp.float32).reshape(total, NUM_ROUND_FEATURES)


def features(outputs: tuple[jax.Array, ...], plan_feats: jax.Array,
             round_feats: jax.Array, offsets: tuple[jax.Array, jax.Array] | None = None
             ) -> HopFeatures:
  """HopFeatures from the hop networks' raw outputs (network.build(...).apply[3]) and the
  plan's features: the mix only where the rule's plan runs the rounds, lambda (its
  readout + the trust head's offset) only where it reads an input readout; c_k = the rule's row + the learned
  offset on active rounds, the identity on inactive ones. `offsets` (the learned
  controller's (mix, shift) per tensor) add to the raw mix and the shift."""
  per_tensor, per_round, nesterov, belief, trust = outputs
  if offsets is not None:
    per_tensor = per_tensor.at[:, 0].add(offsets[0]).at[:, 2].add(offsets[1])
  active = round_feats[:, 4:5]
  rows = active * (round_feats[:, :3] + per_round) + (1.0 - active) * jnp.asarray(
      _IDENTITY_ROUND, jnp.float32)
  mix = plan_feats[:, 0] * jnp.clip(per_tensor[:, 0], 0.0, 1.0)
  return HopFeatures(mix, per_tensor[:, 1], per_tensor[:, 2],
                     per_tensor[:, 3], rows, nesterov, belief,
                     plan_feats[:, 3:4] * (plan_feats[:, 4:] + trust))


def run_rounds(n: jax.Array, leaf: Any, coeff_rows: jax.Array
               ) -> tuple[jax.Array, list[jax.Array]]:
  """(X_K, [X_0 .. X_K]) of one tensor's edge values `n` by its plan `leaf`."""
  from learned_opt.algorithms import muon  # pylint: disable=import-outside-toplevel
  return muon.orthogonalize(n, leaf, coeff_rows, "frobenius", ROUND_EPS, ROUND_BOUND)
