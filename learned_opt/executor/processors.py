"""Process: message passing between the encoded features and the decoder, behind one factory.

A processor reads the encoded graph, layer and edge features
(learned_opt.executor.encode) and the parameter graph, keeps its own state, and
hands the decoder, per tensor, the node factor of the normalizer

  N_ij = row_scale_i * col_scale_j

and the log of the tensor's running gradient RMS (beta's scale under the 'scaled'
normalizer, learned_opt.executor.decode), or None. Every processor has the same
interface (`Processor`: init, apply); `get(name)` returns one and `names()` lists
them, so `ExecutorConfig.processor` picks one by name.

  per_edge    zero hops: N = exp(w_0), the tensor's log-scale bias. Under the
              'scaled' normalizer it keeps the tensor's running mean square of g
              (per in-neuron row on weight tensors, one number elsewhere), to which
              the mean-row exponent w_m applies: N = exp(w_m log RMS(g) + w_0).
  row_column  one hop over each weight tensor's bipartite graph (rank >= 2): running
              row and column mean squares (one pass over g on GPU, graph.ops.row_column)
                r_i' = a3 r_i + b3 mean_j g_ij^2,   c_j' = a3 c_j + b3 mean_i g_ij^2,
              and N_ij = exp(w_r log sqrt(r_i) + w_c log sqrt(c_j) + w_m log sqrt(mean r)
              + w_0) (Adafactor's factored RMS is w = (1, 1, -1)). Vectors and scalars
              are processed as per_edge does. With a fixed degree d (HandSet), w_m =
              d - w_r - w_c.
  multi_hop   row_column's node factors, and K rounds of two-hop message passing
              on the weight matrices a rule's plan names (Muon's Newton-Schulz),
              which the decoder runs on the edge network's output with learned
              round coefficients and mix (learned_opt.executor.hops).

To add a processor: write its init and apply below (same signatures), register it
in `_PROCESSORS`, and it runs in tests/test_executor_processors.py.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from learned_opt.executor.config import ExecutorConfig
from learned_opt.executor.encode import TINY, EdgeFeatures, Encoded, GraphFeatures
from learned_opt.graph import EDGES, ParamGraph, ops

PyTree = Any
MAX_LOG = 60.0  # exp(60) ~ 1e26: finite in float32 whatever the learned exponents


class NodeFactors(NamedTuple):
  """One tensor's node factor N = row_scale * col_scale (broadcastable to the tensor)
  and the log of its running gradient RMS (None where the processor keeps none)."""
  row_scale: jax.Array
  col_scale: jax.Array
  log_rms: jax.Array | None


class NodeState(NamedTuple):
  """A processor's state: per tensor row and column states (params-like trees whose
  leaves drop one neuron axis), or None where the processor keeps none."""
  rows: PyTree | None
  cols: PyTree | None


class Processor(NamedTuple):
  """init(params, config) -> NodeState; apply(encoded, graph, state, config) ->
  (per tensor NodeFactors, the new NodeState)."""
  init: Callable[[PyTree, ExecutorConfig], NodeState]
  apply: Callable[[Encoded, ParamGraph, NodeState, ExecutorConfig],
                  tuple[list[NodeFactors], NodeState]]


def bounded_exp(x: jax.Array) -> jax.Array:
  """exp(x) with x clipped to +-MAX_LOG / 2, so products of two stay finite in float32."""
  return jnp.exp(jnp.clip(x, -MAX_LOG / 2, MAX_LOG / 2))


def _node_zeros(params: PyTree, axis: int) -> PyTree:
  """Per leaf, float32 zeros without `axis` (a scalar for rank < 2)."""
  def zeros(x):
    if len(x.shape) < 2:
      return jnp.zeros((), jnp.float32)
    shape = list(x.shape)
    del shape[axis]
    return jnp.zeros(tuple(shape), jnp.float32)
  return jax.tree.map(zeros, params)


def _per_edge_factors(edge: EdgeFeatures, w: jax.Array, features: GraphFeatures, info: Any,
                      rows: jax.Array | None, normalizer: str
                      ) -> tuple[NodeFactors, jax.Array | None]:
  """One tensor's zero-hop node factor, and its new running mean square (or None)."""
  if normalizer != "scaled":
    return NodeFactors(bounded_exp(w[4]), jnp.ones(()), None), rows
  # The tensor's running mean square, for the constant's scale and the node factor's
  # (mean row) exponent; weight tensors keep it per row.
  a, b = features.coeffs.decays, features.coeffs.gains
  edges = info.role == EDGES
  squares = jnp.mean(jnp.square(edge.g), axis=-1) if edges else jnp.mean(jnp.square(edge.g))
  rows = a[2] * rows + b[2] * squares
  mean_r = jnp.mean(rows, axis=-1)[..., None, None] if edges else rows
  log_mean_r = 0.5 * jnp.log(mean_r * features.inv_z3 + TINY)
  w_mean = w[3] if features.degree is None else features.degree
  return NodeFactors(bounded_exp(w_mean * log_mean_r + w[4]), jnp.ones(()), log_mean_r), rows


def _row_column_factors(edge: EdgeFeatures, w: jax.Array, features: GraphFeatures,
                        rows: jax.Array, cols: jax.Array
                        ) -> tuple[NodeFactors, jax.Array, jax.Array]:
  """One weight tensor's one-hop node factor, and its new row and column states."""
  a, b, inv_z3 = features.coeffs.decays, features.coeffs.gains, features.inv_z3
  row_squares, col_squares = ops.row_column(edge.g)
  rows = a[2] * rows + b[2] * row_squares
  cols = a[2] * cols + b[2] * col_squares
  log_r = 0.5 * jnp.log(rows * inv_z3 + TINY)
  log_c = 0.5 * jnp.log(cols * inv_z3 + TINY)
  log_mean_r = 0.5 * jnp.log(jnp.mean(rows, axis=-1) * inv_z3 + TINY)
  w_mean = w[3] if features.degree is None else features.degree - w[1] - w[2]
  row_scale = bounded_exp(w[1] * log_r + (w_mean * log_mean_r + w[4])[..., None])[..., None]
  col_scale = bounded_exp(w[2] * log_c)[..., None, :]
  return NodeFactors(row_scale, col_scale, log_mean_r[..., None, None]), rows, cols


def per_edge_init(params: PyTree, config: ExecutorConfig) -> NodeState:
  """Zero row states where the 'scaled' normalizer reads RMS(g); nothing otherwise."""
  rows = _node_zeros(params, -1) if config.normalizer == "scaled" else None
  return NodeState(rows, None)


def per_edge_apply(encoded: Encoded, graph: ParamGraph, state: NodeState,
                   config: ExecutorConfig) -> tuple[list[NodeFactors], NodeState]:
  """Zero hops: every tensor's node factor from its own log-scale bias (and RMS(g))."""
  rows = (jax.tree.leaves(state.rows) if state.rows is not None
          else [None] * len(graph.tensors))
  factors, new_rows = [], []
  for idx, info in enumerate(graph.tensors):
    out, r = _per_edge_factors(encoded.edges[idx], encoded.layers.normalizer[idx],
                               encoded.graph, info, rows[idx], config.normalizer)
    factors.append(out)
    new_rows.append(r)
  return factors, NodeState(None if state.rows is None else graph.unflatten(new_rows), None)


def row_column_init(params: PyTree, config: ExecutorConfig) -> NodeState:
  """Zero row and column states per tensor (a scalar for rank < 2)."""
  del config
  return NodeState(_node_zeros(params, -1), _node_zeros(params, -2))


def row_column_apply(encoded: Encoded, graph: ParamGraph, state: NodeState,
                     config: ExecutorConfig) -> tuple[list[NodeFactors], NodeState]:
  """One hop on weight tensors (row and column mean squares); zero hops elsewhere."""
  rows, cols = jax.tree.leaves(state.rows), jax.tree.leaves(state.cols)
  factors, new_rows, new_cols = [], [], []
  for idx, info in enumerate(graph.tensors):
    edge, w = encoded.edges[idx], encoded.layers.normalizer[idx]
    if info.role == EDGES:
      out, r, c = _row_column_factors(edge, w, encoded.graph, rows[idx], cols[idx])
    else:
      (out, r), c = _per_edge_factors(edge, w, encoded.graph, info, rows[idx],
                                      config.normalizer), cols[idx]
    factors.append(out)
    new_rows.append(r)
    new_cols.append(c)
  return factors, NodeState(graph.unflatten(new_rows), graph.unflatten(new_cols))


_PROCESSORS = {
    "per_edge": Processor(per_edge_init, per_edge_apply),
    "row_column": Processor(row_column_init, row_column_apply),
    # The rounds run in the decoder (they read the edge network's output).
    "multi_hop": Processor(row_column_init, row_column_apply),
}


def names() -> tuple[str, ...]:
  """The processors `get` knows, in registration order."""
  return tuple(_PROCESSORS)


def get(name: str) -> Processor:
  """The processor registered as `name`."""
  if name not in _PROCESSORS:
    raise ValueError(f"Unknown processor {name!r}; use one of {names()}.")
  return _PROCESSORS[name]
