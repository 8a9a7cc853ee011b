"""Muon: momentum orthogonalized by Newton-Schulz, i.e. repeated two-hop message passing.

A weight tensor is a dense bipartite graph between its in-neurons (reduction axes)
and out-neurons (output axes); the remaining axes are edge multiplicity (heads,
kernel positions), handled independently. With t the step count after incrementing:

  m_t  = beta m_{t-1} + (1 - beta) g_t                                (hint 'mu', EDGE)
  m^_t = m_t / (1 - beta^t)   [nesterov: beta m_t/(1-beta^{t+1}) + (1-beta) g_t/(1-beta^t)]
  X_0  = m^_t / (||m^_t||_F + eps)       (preconditioning='frobenius', per slice)
  for k = 1..K, on the side S with fewer neurons (in if n_in <= n_out, else out):
    A  = X X^T (S = in) or X^T X (S = out)   two hops: node -> edge -> node of side S
    B  = c1 A + c2 A A                       node-to-node operator on side S
    X_k = c0 X + B X (S = in) or X B^T (S = out)                      (hint 'ns_iterate_k', EDGE)
  O = X_K  [adaptive: O <- <m^_t, O> O, a layer readout]
  u = -lr (s O + wd p)   s = sqrt(max(1, fan_out / fan_in)) [consistent_rms: sqrt(max(fan_in,
                         fan_out)) consistent_rms]                     (hint 'shape_scale', LAYER)

'ns_iterate_0' is X_0. preconditioning='spectral' divides by the largest singular
value instead; 'aol' and 'schatten' skip the initial division and rescale X and A
in the first iteration (by rsqrt of A's absolute row sums, a one-hop node readout,
or of ||A||_F). Coefficients are (c0, c1, c2) for every step, or one row per step.

Leaves that optax.contrib.muon does not orthogonalize (by default every leaf that
is not 2D; with `muon_weight_dimension_numbers`, leaves whose entry is None) get
AdamW with b1=adam_b1, b2=adam_b2, eps=eps, eps_root=adam_eps_root,
weight_decay=adam_weight_decay, nesterov=nesterov and learning rate
adam_learning_rate (default: learning_rate); see adam.py.

Equal to `optax.contrib.muon` with the same arguments, including custom
`muon_weight_dimension_numbers` (a `optax.contrib.MuonDimensionNumbers`, a tree of
them with None for AdamW leaves, or a callable returning one).
"""

from __future__ import annotations

import dataclasses
import math
import types
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from optax.contrib import MuonDimensionNumbers

from learned_opt.algorithms import adam, base
from learned_opt.graph import ops

PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
# Named coefficient presets accepted by optax.contrib.muon (ns_coeffs="standard"/"dion").
NS_COEFF_PRESETS = {
    "standard": DEFAULT_NS_COEFFS,
    "dion": ((4.0848, -6.8946, 2.9270), (3.9505, -6.3029, 2.6377),
             (3.7418, -5.5913, 2.3037), (2.8769, -3.1427, 1.2046),
             (2.8366, -3.0525, 1.2012)),
}

__all__ = ["LeafPlan", "MessagePassing", "Muon", "MuonDimensionNumbers", "MuonState",
           "newton_schulz", "orthogonalize"]


class MuonState(NamedTuple):
  count: jax.Array  # int32 scalar: steps taken
  mu: base.PyTree   # first moment, per entry (muon momentum or AdamW's first moment)
  nu: base.PyTree   # AdamW leaves: second moment per entry; muon leaves: (1,) placeholder


class LeafPlan(NamedTuple):
  """How one leaf is treated: orthogonalized (with its axes) or AdamW."""
  muon: bool
  batch: tuple[int, ...] = ()      # multiplicity axes for Newton-Schulz
  reduction: tuple[int, ...] = ()  # in-neuron axes for Newton-Schulz
  output: tuple[int, ...] = ()     # out-neuron axes for Newton-Schulz
  fan_in: int = 1                  # from the given dimension numbers (shape scaling)
  fan_out: int = 1


class MessagePassing(NamedTuple):
  """A rule's rounds of two-hop message passing on a tree (static): the (K, 3)
  coefficient rows (c0, c1, c2) of its K rounds, and per leaf its LeafPlan."""
  coeff_rows: np.ndarray
  plans: tuple[LeafPlan, ...]


def _normalize(axes: Any, ndim: int) -> tuple[int, ...]:
  axes = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
  return tuple(int(a) % ndim for a in axes)


def _plan_leaf(shape: tuple[int, ...], dim_nums: MuonDimensionNumbers | None,
               default: bool) -> LeafPlan:
  if dim_nums is None:
    return LeafPlan(False)
  ndim = len(shape)
  if ndim < 2:
    raise ValueError(f"muon: orthogonalized parameters must have rank >= 2, got shape "
                     f"{shape} with {dim_nums}.")
  reduction = _normalize(dim_nums.reduction_axis, ndim)
  output = _normalize(dim_nums.output_axis, ndim)
  if set(reduction) & set(output):
    raise ValueError(f"muon: reduction and output axes must be disjoint, got {reduction} "
                     f"and {output} for shape {shape} ({dim_nums}).")
  fan_in = math.prod(shape[a] for a in reduction)
  fan_out = math.prod(shape[a] for a in output)
  if ndim == 2 or default:
    # optax orthogonalizes every 2D leaf as (rows, cols) whatever its dimension numbers
    # (the result is the same up to rounding); only the shape scaling reads them.
    reduction, output = (ndim - 2,), (ndim - 1,)
  batch = tuple(a for a in range(ndim) if a not in reduction and a not in output)
  return LeafPlan(True, batch, reduction, output, fan_in, fan_out)


def _first_iteration_rescale(x, a, end, preconditioning, eps):
  """AOL / Schatten-4 rescaling of X and A = two_hop(X) before the first step."""
  if preconditioning == "aol":
    rescaling = jnp.clip(jnp.sum(jnp.abs(a), axis=-1), min=eps)  # one value per node
    s = jax.lax.rsqrt(rescaling)
    x = x * (s[..., :, None] if end == "in" else s[..., None, :])
    a = a * s[..., :, None] * s[..., None, :]
  else:  # schatten
    rescaling = jnp.clip(jnp.sqrt(ops.reduce_block(a, "sum_square")), min=eps)
    s = jax.lax.rsqrt(rescaling)[..., None, None].astype(x.dtype)
    x, a = x * s, a * s ** 2
  return x, a


def newton_schulz(x: jax.Array, coeff_rows: np.ndarray, preconditioning: str = "frobenius",
                  eps: Any = 1e-8, bound: float | None = None
                  ) -> tuple[jax.Array, list[jax.Array]]:
  """Orthogonalizes each (n_in, n_out) slice of `x` (shape (..., n_in, n_out)).

  Args:
    x: edge values of a batch of bipartite layers.
    coeff_rows: float32 array (K, 3): (c0, c1, c2) of each of the K iterations.
    preconditioning: one of PRECONDITIONINGS.
    eps: guards the initial normalization (and the AOL/Schatten rescaling).
    bound: None, or b: after each iteration a slice whose Frobenius norm exceeds
      b sqrt(min(n_in, n_out)) (an RMS singular value above b) is scaled down to it. The
      iterations of every preset keep singular values below about 1.3, so b = 2 never
      acts on them; it keeps learned coefficients (learned_opt.executor.hops) from
      growing the iterates without bound.

  Returns:
    (X_K, [X_0, X_1, ..., X_K]): the result and every iterate (hints).
  """
  end = "in" if x.shape[-2] <= x.shape[-1] else "out"
  hop = ops.two_hop if end == "in" else ops.two_hop_out
  if preconditioning == "frobenius":
    norm = jnp.sqrt(ops.reduce_block(x, "sum_square")).astype(x.dtype)
    x = x / (norm[..., None, None] + eps)
  elif preconditioning == "spectral":
    x = x / (jnp.linalg.norm(x, ord=2, axis=(-2, -1), keepdims=True) + eps)
  iterates = [x]
  for k, row in enumerate(coeff_rows):
    c0, c1, c2 = (jnp.asarray(c, x.dtype) for c in row)
    a = hop(x)
    if k == 0 and preconditioning in ("aol", "schatten"):
      x, a = _first_iteration_rescale(x, a, end, preconditioning, eps)
    b = c1 * a + c2 * ops.propagate(a, a, "in")
    x = c0 * x + ops.propagate(b, x, end)
    if bound is not None:
      limit = bound * math.sqrt(min(x.shape[-2], x.shape[-1]))
      norm = jnp.sqrt(ops.reduce_block(x, "sum_square")).astype(x.dtype)[..., None, None]
      x = x * jnp.minimum(1.0, limit / (norm + eps))
    iterates.append(x)
  return x, iterates


def orthogonalize(x: jax.Array, plan: LeafPlan, coeff_rows: Any,
                  preconditioning: str = "frobenius", eps: Any = 1e-8,
                  bound: float | None = None) -> tuple[jax.Array, list[jax.Array]]:
  """Newton-Schulz on one leaf by its plan: its axes moved and folded to (multiplicity,
  in, out), `newton_schulz`, and back. Returns the result and every iterate, shaped
  like `x`. `coeff_rows` may be traced ((K, 3), K static)."""
  perm = plan.batch + plan.reduction + plan.output
  sizes = lambda axes: tuple(x.shape[a] for a in axes)  # noqa: E731
  flat = (math.prod(sizes(plan.batch)), math.prod(sizes(plan.reduction)),
          math.prod(sizes(plan.output)))
  unflat = sizes(plan.batch) + sizes(plan.reduction) + sizes(plan.output)
  inverse = tuple(int(i) for i in np.argsort(perm))
  back = lambda y: jnp.transpose(jnp.reshape(y, unflat), inverse)  # noqa: E731
  out, iterates = newton_schulz(jnp.reshape(jnp.transpose(x, perm), flat), coeff_rows,
                                preconditioning, eps, bound)
  return back(out), [back(it) for it in iterates]


@base.register("muon")
@dataclasses.dataclass(frozen=True)
class Muon(base.Rule):
  """Muon (Jordan 2024), equal to `optax.contrib.muon` with the same arguments."""
  learning_rate: Any
  ns_coeffs: Any = DEFAULT_NS_COEFFS
  ns_steps: int = 5
  beta: Any = 0.95
  eps: Any = 1e-8
  weight_decay: Any = 0.0
  weight_decay_mask: Any = None
  mu_dtype: Any = None
  nesterov: bool = True
  adaptive: bool = False
  preconditioning: str = "frobenius"
  adam_b1: Any = 0.9
  adam_b2: Any = 0.999
  adam_eps_root: Any = 0.0
  adam_weight_decay: Any = 0.0
  adam_learning_rate: Any = None
  muon_weight_dimension_numbers: Any = None
  consistent_rms: Any = None

  def __post_init__(self):
    if self.preconditioning not in PRECONDITIONINGS:
      raise ValueError(f"muon: unknown preconditioning {self.preconditioning!r}; use one of "
                       f"{PRECONDITIONINGS}.")
    self.coeff_rows()  # validates ns_coeffs / ns_steps now rather than at the first step

  def coeff_rows(self) -> np.ndarray:
    """(K, 3) float32 Newton-Schulz coefficients, one row per iteration (optax's rule)."""
    coeffs = self.ns_coeffs
    if isinstance(coeffs, str):
      if coeffs not in NS_COEFF_PRESETS:
        raise ValueError(f"muon: unknown ns_coeffs preset {coeffs!r}; known: "
                         f"{sorted(NS_COEFF_PRESETS)}.")
      coeffs = NS_COEFF_PRESETS[coeffs]
    coeffs = np.asarray(coeffs, np.float32)
    if coeffs.ndim > 2 or coeffs.shape[-1] != 3:
      raise ValueError(f"muon: ns_coeffs must have shape (3,) or (n, 3), got {coeffs.shape}.")
    if not isinstance(self.ns_steps, (int, np.integer)):
      raise base.UnsupportedOptionError(
          f"muon: ns_steps must be a Python int (got {self.ns_steps!r}): the iterations are "
          "unrolled as hints.")
    if coeffs.ndim == 1:
      return np.tile(coeffs, (int(self.ns_steps), 1))
    if coeffs.shape[0] > self.ns_steps:
      raise ValueError(f"muon: {coeffs.shape[0]} coefficient rows given for ns_steps="
                       f"{self.ns_steps}; optax needs at most ns_steps rows.")
    return coeffs

  def _plans(self, tree: base.PyTree) -> list[LeafPlan]:
    leaves = jax.tree.leaves(tree)
    dim_nums = self.muon_weight_dimension_numbers
    if dim_nums is None:
      default = MuonDimensionNumbers(0, 1)
      return [_plan_leaf(x.shape, default if x.ndim == 2 else None, True) for x in leaves]
    if callable(dim_nums) and not isinstance(dim_nums, MuonDimensionNumbers):
      dim_nums = dim_nums(tree)
    is_leaf = lambda x: x is None or isinstance(x, MuonDimensionNumbers)
    per_leaf = base.broadcast_prefix(dim_nums, tree, is_leaf)
    return [_plan_leaf(x.shape, d, False) for x, d in zip(leaves, per_leaf)]

  def message_passing(self, tree: base.PyTree) -> MessagePassing:
    """What Muon's rounds are on `tree`'s leaves: the coefficient rows and per leaf its
    plan (which leaves are orthogonalized, on which axes, with what shape scale)."""
    return MessagePassing(self.coeff_rows(), tuple(self._plans(tree)))

  def _adam_learning_rate(self) -> Any:
    return self.learning_rate if self.adam_learning_rate is None else self.adam_learning_rate

  def _adam(self) -> Any:
    """The AdamW (optax.adamw) settings of the leaves that are not orthogonalized."""
    return types.SimpleNamespace(name="muon", learning_rate=self._adam_learning_rate(),
                                 b1=self.adam_b1, b2=self.adam_b2, eps=self.eps,
                                 eps_root=self.adam_eps_root, nesterov=self.nesterov,
                                 mu_dtype=self.mu_dtype)

  def init(self, params):
    base.check_real(params, "muon")
    plans = self._plans(params)
    leaves, treedef = jax.tree.flatten(params)
    nu = [jnp.zeros((1,) if plan.muon else x.shape, x.dtype) for plan, x in zip(plans, leaves)]
    return MuonState(count=base.zero_count(), mu=base.zeros_like(params, self.mu_dtype),
                     nu=jax.tree.unflatten(treedef, nu))

  def _shape_scale(self, plan: LeafPlan) -> jax.Array:
    if self.consistent_rms is not None:
      return jnp.sqrt(jnp.maximum(plan.fan_in, plan.fan_out)) * self.consistent_rms
    return jnp.sqrt(jnp.maximum(1, plan.fan_out / plan.fan_in))

  def _muon_leaves(self, grads: list, mu: list, params: list | None, plans: list[LeafPlan],
                   mask: list[bool], count: jax.Array) -> dict[str, list]:
    """The orthogonalized leaves: momentum, Newton-Schulz, shape scaling, decay, -lr.

    Returns:
      Per-leaf values (lists aligned with the arguments) under the names of their
      hints, plus 'out' (the updates).
    """
    new_mu = base.ema(grads, mu, self.beta, 1)
    mu_hat = base.debiased_momentum(new_mu, grads, self.beta, base.increment(count),
                                    self.nesterov)
    cols = {"mu": base.cast_tree(new_mu, self.mu_dtype), "mu_hat": mu_hat, "direction": [],
            "shape_scale": [], **{_iterate(k): [] for k in range(len(self.coeff_rows()) + 1)}}
    for m_hat, plan in zip(mu_hat, plans):
      o, iterates = orthogonalize(m_hat, plan, self.coeff_rows(), self.preconditioning,
                                  self.eps)
      if self.adaptive:
        o = jnp.sum(m_hat * o) * o
      scale = self._shape_scale(plan)
      cols["direction"].append(scale * o)
      cols["shape_scale"].append(jnp.asarray(scale, jnp.float32))
      for k, iterate in enumerate(iterates):
        cols[_iterate(k)].append(iterate)
    decayed = base.add_decayed_weights(self.weight_decay, mask, cols["direction"], params,
                                       count, "muon")
    cols["out"], _ = base.scale_by_learning_rate(self.learning_rate, count, decayed)
    return cols

  def _adam_leaves(self, grads: list, mu: list, nu: list, params: list | None,
                   count: jax.Array) -> dict[str, list]:
    """The other leaves: optax.adamw (see adam.py), named as in `_muon_leaves`."""
    out, new_state, trace = adam.adam_updates(
        self._adam(), grads, adam.AdamState(count, mu, nu), params, self.adam_weight_decay)
    zeros = [jnp.zeros_like(g) for g in grads]
    return {"out": out, "mu": new_state.mu, "nu": new_state.nu,
            "mu_hat": trace["mu_hat"].value, "direction": trace["direction"].value,
            "shape_scale": [jnp.ones([], jnp.float32)] * len(grads),
            **{_iterate(k): zeros for k in range(len(self.coeff_rows()) + 1)}}

  def _columns(self, plans: list[LeafPlan], grads: list, mu: list, nu: list,
               params: list | None, mask: list[bool], count: jax.Array) -> dict[str, list]:
    """Every per-leaf value of a step (leaf lists in, one list per name out).

    Orthogonalized leaves go through `_muon_leaves`, the others through
    `_adam_leaves`; orthogonalized leaves keep their (1,) nu placeholder.
    """
    muon_idx = [i for i, plan in enumerate(plans) if plan.muon]
    adam_idx = [i for i, plan in enumerate(plans) if not plan.muon]
    pick = lambda xs, idx: None if xs is None else [xs[i] for i in idx]
    parts = [(range(len(plans)), {"nu": nu,
                                  "orthogonalized": [jnp.asarray(p.muon) for p in plans]})]
    if muon_idx:
      parts.append((muon_idx, self._muon_leaves(
          pick(grads, muon_idx), pick(mu, muon_idx), pick(params, muon_idx),
          pick(plans, muon_idx), pick(mask, muon_idx), count)))
    if adam_idx:
      parts.append((adam_idx, self._adam_leaves(
          pick(grads, adam_idx), pick(mu, adam_idx), pick(nu, adam_idx),
          pick(params, adam_idx), count)))
    columns = {}
    for idx, values in parts:
      for name, column in values.items():
        merged = columns.setdefault(name, [None] * len(plans))
        for i, value in zip(idx, column):
          merged[i] = value
    return columns

  def _step(self, grads, state, params):
    g_leaves, treedef = jax.tree.flatten(grads)
    leaves = lambda tree: None if tree is None else treedef.flatten_up_to(tree)
    columns = self._columns(self._plans(grads), g_leaves, leaves(state.mu), leaves(state.nu),
                            leaves(params), base.leaf_mask(self.weight_decay_mask, grads),
                            state.count)
    tree = lambda name: jax.tree.unflatten(treedef, columns[name])
    # EDGE hints are shaped like the parameters: orthogonalized leaves keep a (1,)
    # placeholder second moment in the state, which the hint shows as zeros.
    nu_hint = jax.tree.unflatten(treedef, [
        jnp.zeros(g.shape, n.dtype) if n.shape != g.shape else n
        for n, g in zip(columns["nu"], g_leaves)])
    trace = base.hints(
        mu=base.Hint(tree("mu")), nu=base.Hint(nu_hint), mu_hat=base.Hint(tree("mu_hat")),
        direction=base.Hint(tree("direction")),
        orthogonalized=base.Hint(tree("orthogonalized"), base.LAYER, base.MASK),
        shape_scale=base.Hint(tree("shape_scale"), base.LAYER),
        learning_rate=base.learning_rate_hint(self.learning_rate, state.count),
        adam_learning_rate=base.learning_rate_hint(self._adam_learning_rate(), state.count))
    for k in range(len(self.coeff_rows()) + 1):
      trace[_iterate(k)] = base.Hint(tree(_iterate(k)))
    new_state = MuonState(base.increment(state.count), tree("mu"), tree("nu"))
    return tree("out"), new_state, trace


def _iterate(k: int) -> str:
  """The hint name of the k-th Newton-Schulz iterate."""
  return f"ns_iterate_{k}"
