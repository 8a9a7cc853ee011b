"""The parameter graph: neurons are nodes, weights are edges, tensors are layers.

A weight tensor of rank >= 2 already *is* a dense bipartite adjacency: its last two
axes index (in, out) neurons and its leading axes are edge multiplicity (kernel
positions, attention heads). Rank-1 leaves (biases, norm scales) are features of a
set of nodes, rank-0 leaves are graph-level features. Nothing here builds edge index
lists; the graph is static structure computed once from shapes, outside jit, and is
hashable so it can be closed over or passed as a static argument.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from learned_opt import _tree
from learned_opt.graph import ops

PyTree = Any

EDGES = "edges"   # rank >= 2: a bipartite block of edges
NODES = "nodes"   # rank 1: one feature per node of a node set
GRAPH = "graph"   # rank 0: one graph-level feature

_INDEX_SUFFIX = re.compile(r"^(.*?)(?:_?(\d+))?$")


@dataclasses.dataclass(frozen=True)
class TensorInfo:
  """Static description of one leaf of the parameter pytree.

  Attributes:
    path: '/'-joined key path of the leaf, e.g. 'mlp/~/linear_0/w'.
    shape: the leaf's shape.
    dtype: the leaf's dtype name.
    role: EDGES (rank >= 2), NODES (rank 1) or GRAPH (rank 0).
    in_nodes: id of the node set read by this tensor's edges (EDGES only).
    out_nodes: id of the node set written by its edges (EDGES), or the node set the
      features sit on (NODES); None for GRAPH.
  """
  path: str
  shape: tuple[int, ...]
  dtype: str
  role: str
  in_nodes: int | None = None
  out_nodes: int | None = None

  @property
  def size(self) -> int:
    return int(np.prod(self.shape, dtype=np.int64))

  @property
  def n_in(self) -> int | None:
    return self.shape[-2] if self.role == EDGES else None

  @property
  def n_out(self) -> int | None:
    if self.role == EDGES:
      return self.shape[-1]
    return self.shape[0] if self.role == NODES else None

  @property
  def multiplicity(self) -> tuple[int, ...]:
    """Leading axes of an edge tensor: how many parallel edges join each neuron pair."""
    return self.shape[:-2] if self.role == EDGES else ()


@dataclasses.dataclass(frozen=True)
class NodeSet:
  """A set of neurons shared by the tensors that read or write them."""
  id: int
  size: int
  name: str


@dataclasses.dataclass(frozen=True)
class ParamGraph:
  """Hashable graph structure of a parameter pytree.

  Build it with `ParamGraph.from_params(params)`; the arrays themselves never live
  here, so one graph describes every pytree of the same shapes (params, grads,
  optimizer moments).
  """
  treedef: Any
  tensors: tuple[TensorInfo, ...]
  node_sets: tuple[NodeSet, ...]

  # ----------------------------------------------------------------- building
  @classmethod
  def from_params(cls, params: PyTree,
                  wiring: str | Sequence[tuple[str, str]] | None = None) -> "ParamGraph":
    """Reads the graph of a pytree of arrays (or `jax.ShapeDtypeStruct`s).

    Args:
      params: any pytree (dicts, lists, tuples, NamedTuples; None leaves are
        skipped) of floating-point arrays.
      wiring: how tensors share neurons. None or 'infer' (default): rank-1 leaves
        attach to the out-neurons of the weight in the same module when the sizes
        agree, and a stack of sibling modules (linear_0, linear_1, ... or 0, 1, ...)
        is chained when one's out-width equals the next one's in-width. 'none':
        a disjoint union of per-tensor subgraphs. A sequence of (src, dst) leaf
        paths: the out-neurons of `src` are the in-neurons of `dst` (or, for a
        rank-1 `dst`, the nodes its features sit on); rank-1 leaves of the same
        module are still attached automatically.

    Returns:
      The ParamGraph.

    Raises:
      TypeError: a leaf is not a floating-point array; the message names its path.
      ValueError: explicit wiring names an unknown path or joins mismatched sizes.
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    specs = []
    for path, leaf in flat:
      name = _tree.path_to_str(path)
      specs.append((name, _leaf_shape_dtype(name, leaf)))
    builder = _Builder(specs)
    if wiring is None or wiring == "infer":
      builder.attach_module_nodes()
      builder.chain_sibling_stacks()
    elif wiring == "none":
      pass
    elif isinstance(wiring, str):
      raise ValueError(f"Unknown wiring {wiring!r}: use None/'infer', 'none', or a "
                       "sequence of (src_path, dst_path) pairs.")
    else:
      builder.attach_module_nodes()
      builder.apply_explicit(wiring)
    tensors, node_sets = builder.finish()
    return cls(treedef=treedef, tensors=tensors, node_sets=node_sets)

  # ---------------------------------------------------------------- queries
  @property
  def num_params(self) -> int:
    return sum(t.size for t in self.tensors)

  @property
  def num_edges(self) -> int:
    return sum(t.size for t in self.tensors if t.role == EDGES)

  @property
  def num_nodes(self) -> int:
    return sum(s.size for s in self.node_sets)

  def leaves(self, tree: PyTree) -> list[jax.Array]:
    """The leaves of `tree`, checked to have this graph's structure."""
    if jax.tree.structure(tree) != self.treedef:
      names = [t.path for t in self.tensors]
      got = _tree.leaf_paths(tree)
      first = next((f"'{a}' vs '{b}'" for a, b in zip(got, names) if a != b),
                   f"{len(got)} leaves vs {len(names)}")
      raise ValueError("pytree does not match the parameter graph it is used with "
                       f"(first difference: {first}). Rebuild the graph with "
                       "ParamGraph.from_params on this pytree.")
    return jax.tree.leaves(tree)

  def unflatten(self, leaves: Iterable[Any]) -> PyTree:
    return jax.tree.unflatten(self.treedef, list(leaves))

  def map(self, fn, *trees: PyTree) -> PyTree:
    """Applies fn(info, *leaves) to every tensor and returns the resulting pytree."""
    columns = [self.leaves(t) for t in trees]
    return self.unflatten(fn(info, *leaf) for info, *leaf in zip(self.tensors, *columns))

  # ------------------------------------------------------------ aggregation
  def node_aggregate(self, tree: PyTree, reduce: str = "sum",
                     direction: str = "incoming") -> tuple[jax.Array, ...]:
    """Aggregates edge values onto every node set, across all tensors touching it.

    Args:
      tree: pytree shaped like the params (edge values on EDGES tensors).
      reduce: 'sum', 'mean', 'mean_square' or 'max' over the aggregated edges.
      direction: 'incoming' (edges whose out-end is the node), 'outgoing' (edges
        whose in-end is the node) or 'both'.

    Returns:
      One float32 array of shape (node_set.size,) per node set; node sets that no
      edge reaches in that direction get zeros.
    """
    if direction not in ("incoming", "outgoing", "both"):
      raise ValueError(f"direction must be 'incoming', 'outgoing' or 'both', got {direction!r}")
    ops.check_reduce(reduce)
    totals = [jnp.full((s.size,), -jnp.inf if reduce == "max" else 0.0, jnp.float32)
              for s in self.node_sets]
    counts = [0] * len(self.node_sets)
    for info, x in zip(self.tensors, self.leaves(tree)):
      if info.role != EDGES:
        continue
      ends = []
      if direction in ("incoming", "both"):
        ends.append((info.out_nodes, "out"))
      if direction in ("outgoing", "both"):
        ends.append((info.in_nodes, "in"))
      for node_set, end in ends:
        base = "max" if reduce == "max" else ("sum_square" if reduce == "mean_square" else "sum")
        part = ops.aggregate_to_nodes(x, end, base).astype(jnp.float32)
        if reduce == "max":
          totals[node_set] = jnp.maximum(totals[node_set], part)
        else:
          totals[node_set] = totals[node_set] + part
        counts[node_set] += info.size // (info.n_out if end == "out" else info.n_in)
    out = []
    for total, count in zip(totals, counts):
      if count == 0:
        out.append(jnp.zeros_like(total))
      elif reduce in ("mean", "mean_square"):
        out.append(total / count)
      else:
        out.append(total)
    return tuple(out)

  def broadcast_nodes(self, node_values: Sequence[jax.Array], end: str = "out") -> PyTree:
    """Sends per-node-set values back onto every tensor (edges see their `end` node).

    EDGES tensors get arrays broadcastable to their shape; NODES leaves get their
    node set's values; GRAPH leaves get zeros.
    """
    leaves = []
    for info in self.tensors:
      if info.role == EDGES:
        node_set = info.out_nodes if end == "out" else info.in_nodes
        leaves.append(ops.broadcast_from_nodes(node_values[node_set], info.shape, end))
      elif info.role == NODES:
        leaves.append(node_values[info.out_nodes])
      else:
        leaves.append(jnp.zeros((), jnp.float32))
    return self.unflatten(leaves)

  def layer_readout(self, tree: PyTree, reduce: str = "mean") -> PyTree:
    """One scalar per tensor: a full reduction of each leaf (a pytree of scalars)."""
    return self.map(lambda info, x: ops.reduce_all(x, reduce), tree)

  def graph_readout(self, tree: PyTree, reduce: str = "mean") -> jax.Array:
    """One scalar for the whole graph: a reduction over every entry of every leaf."""
    ops.check_reduce(reduce)
    leaves = self.leaves(tree)
    if not leaves:
      return jnp.zeros((), jnp.float32)
    if reduce == "max":
      return jnp.max(jnp.stack([jnp.max(x).astype(jnp.float32) for x in leaves]))
    base = "sum_square" if reduce == "mean_square" else "sum"
    total = sum(ops.reduce_all(x, base) for x in leaves)
    return total / self.num_params if reduce in ("mean", "mean_square") else total

  # ----------------------------------------------------------------- display
  def describe(self) -> str:
    """A readable summary: nodes, edges, layers and how they are wired."""
    lines = [f"ParamGraph: {len(self.tensors)} tensors, {self.num_params:,} parameters, "
             f"{self.num_edges:,} edges, {self.num_nodes:,} nodes in "
             f"{len(self.node_sets)} node sets"]
    for info in self.tensors:
      if info.role == EDGES:
        mult = f" x{np.prod(info.multiplicity)} parallel" if info.multiplicity else ""
        lines.append(f"  {info.path:40s} edges {info.shape} {info.dtype}: "
                     f"nodes[{info.in_nodes}]({info.n_in}) -> nodes[{info.out_nodes}]"
                     f"({info.n_out}){mult}")
      elif info.role == NODES:
        lines.append(f"  {info.path:40s} node features {info.shape} {info.dtype} on "
                     f"nodes[{info.out_nodes}]")
      else:
        lines.append(f"  {info.path:40s} graph feature {info.dtype}")
    lines.append("  node sets: " + ", ".join(f"[{s.id}] {s.name} ({s.size})"
                                             for s in self.node_sets))
    return "\n".join(lines)

  def __repr__(self) -> str:
    return (f"ParamGraph(tensors={len(self.tensors)}, params={self.num_params}, "
            f"node_sets={len(self.node_sets)})")


# --------------------------------------------------------------------- helpers
def _leaf_shape_dtype(path: str, leaf: Any) -> tuple[tuple[int, ...], np.dtype]:
  if isinstance(leaf, (float, int)) and not isinstance(leaf, bool):
    leaf = np.asarray(leaf, np.float32 if isinstance(leaf, float) else np.int32)
  shape, dtype = getattr(leaf, "shape", None), getattr(leaf, "dtype", None)
  if shape is None or dtype is None:
    raise TypeError(f"Leaf '{path}' is a {type(leaf).__name__}, not an array: the "
                    "parameter graph reads arrays (or jax.ShapeDtypeStruct). Remove it "
                    "from the pytree or replace it with None.")
  dtype = np.dtype(dtype)
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"Leaf '{path}' has dtype {dtype}; the parameter graph only reads "
                    "floating-point leaves (float32, bfloat16, float16, float64). Keep "
                    "integer/bool state out of the parameters (e.g. in a separate pytree) "
                    "or replace it with None.")
  return tuple(int(d) for d in shape), dtype


def _module_and_leaf(path: str) -> tuple[str, str]:
  module, _, leaf = path.rpartition("/")
  return module, leaf


def _natural_key(text: str) -> list[Any]:
  return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _stack_base(module: str) -> tuple[str, int] | None:
  """('mlp/~/linear', 3) for 'mlp/~/linear_3'; ('conv', 0) for an unindexed 'conv'."""
  parent, _, name = module.rpartition("/")
  match = _INDEX_SUFFIX.match(name)
  base, index = match.group(1), match.group(2)
  return f"{parent}/{base}", int(index) if index is not None else 0


class _Builder:
  """Union-find over node sets while wiring is decided; then numbered densely."""

  def __init__(self, specs: list[tuple[str, tuple[tuple[int, ...], np.dtype]]]):
    self.paths = [p for p, _ in specs]
    self.shapes = [s for _, (s, _) in specs]
    self.dtypes = [d for _, (_, d) in specs]
    self.index = {p: i for i, p in enumerate(self.paths)}
    self.parent: list[int] = []
    self.sizes: list[int] = []
    self.names: list[str] = []
    self.in_set: list[int | None] = []
    self.out_set: list[int | None] = []
    for path, shape in zip(self.paths, self.shapes):
      if len(shape) >= 2:
        self.in_set.append(self._new(shape[-2], f"{path}:in"))
        self.out_set.append(self._new(shape[-1], f"{path}:out"))
      elif len(shape) == 1:
        self.in_set.append(None)
        self.out_set.append(self._new(shape[0], path))
      else:
        self.in_set.append(None)
        self.out_set.append(None)

  def _new(self, size: int, name: str) -> int:
    self.parent.append(len(self.parent))
    self.sizes.append(size)
    self.names.append(name)
    return len(self.parent) - 1

  def _find(self, a: int) -> int:
    while self.parent[a] != a:
      self.parent[a] = self.parent[self.parent[a]]
      a = self.parent[a]
    return a

  def _union(self, keep: int, merge: int) -> None:
    keep, merge = self._find(keep), self._find(merge)
    if keep != merge:
      self.parent[merge] = keep

  def _rank(self, i: int) -> int:
    return len(self.shapes[i])

  def attach_module_nodes(self) -> None:
    """Rank-1 leaves sit on the out-neurons of a same-module weight of that width."""
    by_module: dict[str, list[int]] = {}
    for i, path in enumerate(self.paths):
      by_module.setdefault(_module_and_leaf(path)[0], []).append(i)
    for members in by_module.values():
      weights = [i for i in members if self._rank(i) >= 2]
      for i in members:
        if self._rank(i) != 1:
          continue
        target = next((w for w in weights if self.shapes[w][-1] == self.shapes[i][0]), None)
        if target is None:  # e.g. LayerNorm scale and offset share their own nodes.
          target = next((j for j in members if j < i and self._rank(j) == 1
                         and self.shapes[j] == self.shapes[i]), None)
          if target is not None:
            self._union(self.out_set[target], self.out_set[i])
          continue
        self._union(self.out_set[target], self.out_set[i])

  def chain_sibling_stacks(self) -> None:
    """linear_0 -> linear_1 -> ...: consecutive indexed siblings whose widths agree."""
    stacks: dict[str, list[tuple[int, int]]] = {}
    for i, path in enumerate(self.paths):
      if self._rank(i) < 2:
        continue
      module, _ = _module_and_leaf(path)
      base, index = _stack_base(module)
      stacks.setdefault(base, []).append((index, i))
    for members in stacks.values():
      members.sort()
      for (ia, a), (ib, b) in zip(members, members[1:]):
        if ib == ia + 1 and self.shapes[a][-1] == self.shapes[b][-2]:
          self._union(self.out_set[a], self.in_set[b])

  def apply_explicit(self, pairs: Sequence[tuple[str, str]]) -> None:
    for pair in pairs:
      if len(pair) != 2:
        raise ValueError(f"wiring entries are (src_path, dst_path) pairs, got {pair!r}")
      src, dst = pair
      for p in (src, dst):
        if p not in self.index:
          raise ValueError(f"wiring names unknown leaf path '{p}'. Known paths: "
                           f"{', '.join(self.paths)}")
      a, b = self.index[src], self.index[dst]
      if self._rank(a) < 2:
        raise ValueError(f"wiring source '{src}' has rank {self._rank(a)}; a source must "
                         "be a weight tensor (rank >= 2) whose out-neurons are shared.")
      if self._rank(b) == 0:
        raise ValueError(f"wiring destination '{dst}' is a scalar (graph feature) and has "
                         "no neurons to share.")
      width = self.shapes[b][-2] if self._rank(b) >= 2 else self.shapes[b][0]
      if width != self.shapes[a][-1]:
        raise ValueError(f"wiring '{src}' -> '{dst}' joins {self.shapes[a][-1]} "
                         f"out-neurons to {width} neurons; the sizes must agree.")
      target = self.in_set[b] if self._rank(b) >= 2 else self.out_set[b]
      self._union(self.out_set[a], target)

  def finish(self) -> tuple[tuple[TensorInfo, ...], tuple[NodeSet, ...]]:
    roots: dict[int, int] = {}
    node_sets = []
    for s in range(len(self.parent)):
      root = self._find(s)
      if root not in roots:
        roots[root] = len(roots)
        node_sets.append(NodeSet(roots[root], self.sizes[root], self.names[root]))
    tensors = []
    for i, path in enumerate(self.paths):
      rank = self._rank(i)
      role = EDGES if rank >= 2 else NODES if rank == 1 else GRAPH
      tensors.append(TensorInfo(
          path=path, shape=self.shapes[i], dtype=self.dtypes[i].name, role=role,
          in_nodes=None if self.in_set[i] is None else roots[self._find(self.in_set[i])],
          out_nodes=None if self.out_set[i] is None else roots[self._find(self.out_set[i])]))
    return tuple(tensors), tuple(node_sets)
