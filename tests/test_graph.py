"""ParamGraph: structure from shapes, wiring, aggregations as axis reductions."""

from typing import NamedTuple

import haiku as hk
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learned_opt.graph import EDGES, GRAPH, NODES, ParamGraph, ops

DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]


def _mlp_params(widths=(8, 8, 3)):
  fn = hk.transform(lambda x: hk.nets.MLP(widths)(x))
  return fn.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))


def test_haiku_mlp_is_wired_sequentially():
  params = _mlp_params((8, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 3))  # linear_10 sorts before linear_2
  graph = ParamGraph.from_params(params)
  weights = {t.path: t for t in graph.tensors if t.role == EDGES}
  for i in range(11):
    prev, nxt = weights[f"mlp/~/linear_{i}/w"], weights[f"mlp/~/linear_{i + 1}/w"]
    assert prev.out_nodes == nxt.in_nodes, (i, graph.describe())
  for t in graph.tensors:
    if t.role == NODES:
      assert t.out_nodes == weights[t.path.replace("/b", "/w")].out_nodes
  # 4 inputs + 11 hidden layers + 3 outputs.
  assert graph.num_nodes == 4 + 8 + 6 * 10 + 3
  assert graph.num_edges == sum(t.size for t in graph.tensors if t.role == EDGES)


def test_conv_stack_and_layer_norm():
  def net(x):
    x = hk.Conv2D(4, 3)(x)
    x = hk.Conv2D(5, 3)(x)
    x = hk.LayerNorm(-1, True, True)(x)
    return hk.Linear(3)(x.reshape(x.shape[0], -1))

  params = hk.transform(net).init(jax.random.PRNGKey(0), jnp.zeros((1, 6, 6, 2)))
  graph = ParamGraph.from_params(params)
  by_path = {t.path: t for t in graph.tensors}
  assert by_path["conv2_d/w"].multiplicity == (3, 3)
  assert by_path["conv2_d/w"].out_nodes == by_path["conv2_d_1/w"].in_nodes
  assert by_path["layer_norm/scale"].out_nodes == by_path["layer_norm/offset"].out_nodes
  # Flatten breaks the chain (180 != 5): a disjoint subgraph, still correct.
  assert by_path["linear/w"].in_nodes not in (by_path["conv2_d_1/w"].out_nodes,)
  text = graph.describe()
  assert "conv2_d/w" in text and "x9 parallel" in text and "node sets" in text


def test_explicit_and_disjoint_wiring():
  params = {"hidden": {"w": jnp.ones((4, 8)), "b": jnp.ones(8)}, "out": {"w": jnp.ones((8, 2))}}
  assert ParamGraph.from_params(params).num_nodes == 4 + 8 + 8 + 2  # no stack: disjoint
  wired = ParamGraph.from_params(params, wiring=[("hidden/w", "out/w")])
  assert wired.num_nodes == 4 + 8 + 2
  none = ParamGraph.from_params(_mlp_params(), wiring="none")
  assert none.num_nodes == sum(t.shape[0] for t in none.tensors if t.role == NODES) + sum(
      t.shape[-1] + t.shape[-2] for t in none.tensors if t.role == EDGES)
  with pytest.raises(ValueError, match="unknown leaf path 'nope/w'"):
    ParamGraph.from_params(params, wiring=[("hidden/w", "nope/w")])
  with pytest.raises(ValueError, match="sizes must agree"):
    ParamGraph.from_params(params, wiring=[("out/w", "hidden/w")])
  with pytest.raises(ValueError, match="Unknown wiring"):
    ParamGraph.from_params(params, wiring="sequential-ish")


class _Pair(NamedTuple):
  weight: jax.Array
  bias: jax.Array | None


def test_containers_none_leaves_and_roles():
  params = {"list": [jnp.ones((3, 4)), None, (jnp.ones(()),)],
            "nt": _Pair(jnp.ones((2, 5, 4)), None)}
  graph = ParamGraph.from_params(params)
  roles = {t.path: t.role for t in graph.tensors}
  assert roles == {"list/0": EDGES, "list/2/0": GRAPH, "nt/weight": EDGES}
  assert graph.num_params == 12 + 1 + 40


def test_unreadable_leaf_names_its_path():
  with pytest.raises(TypeError, match=r"'layer/step'.*int32"):
    ParamGraph.from_params({"layer": {"w": jnp.ones((2, 2)), "step": jnp.zeros((), jnp.int32)}})
  with pytest.raises(TypeError, match=r"'name'.*str"):
    ParamGraph.from_params({"name": "mlp", "w": jnp.ones((2, 2))})


def test_shape_dtype_struct_and_hashable():
  params = _mlp_params()
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
  a, b = ParamGraph.from_params(params), ParamGraph.from_params(abstract)
  assert a == b and hash(a) == hash(b)

  @jax.jit
  def readout(tree):
    return a.graph_readout(tree, "mean_square")

  np.testing.assert_allclose(
      readout(params),
      np.mean(np.concatenate([np.ravel(x) ** 2 for x in jax.tree.leaves(params)])), rtol=1e-6)


def test_mismatched_tree_is_refused():
  graph = ParamGraph.from_params(_mlp_params())
  with pytest.raises(ValueError, match="does not match the parameter graph"):
    graph.layer_readout({"w": jnp.ones(3)})


def test_node_aggregate_combines_tensors_sharing_neurons():
  params = _mlp_params((8, 3))
  graph = ParamGraph.from_params(params)
  w0, w1 = params["mlp/~/linear_0"]["w"], params["mlp/~/linear_1"]["w"]
  hidden = next(t.out_nodes for t in graph.tensors if t.path == "mlp/~/linear_0/w")
  both = graph.node_aggregate(params, "sum", "both")[hidden]
  np.testing.assert_allclose(both, w0.sum(0) + w1.sum(1), rtol=1e-5)
  mean = graph.node_aggregate(params, "mean", "both")[hidden]
  np.testing.assert_allclose(mean, (w0.sum(0) + w1.sum(1)) / (4 + 3), rtol=1e-5)
  top = graph.node_aggregate(params, "max", "incoming")[hidden]
  np.testing.assert_allclose(top, w0.max(0), rtol=1e-6)
  back = graph.broadcast_nodes(graph.node_aggregate(params, "mean_square", "incoming"))
  for x, y in zip(jax.tree.leaves(back), jax.tree.leaves(params)):
    assert jnp.broadcast_to(x, y.shape).shape == y.shape


# --------------------------------------------------------------- property tests
_shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=5)


@st.composite
def _random_pytrees(draw):
  n = draw(st.integers(1, 5))
  dtype = draw(st.sampled_from(DTYPES))
  leaves = {}
  for i in range(n):
    shape = draw(_shapes)
    seed = draw(st.integers(0, 2**16))
    leaves[f"layer_{i}"] = {"w": jnp.asarray(
        np.random.default_rng(seed).standard_normal(shape), dtype)}
  container = draw(st.sampled_from(["dict", "list", "tuple"]))
  values = list(leaves.values())
  return leaves if container == "dict" else (values if container == "list" else tuple(values))


@settings(max_examples=40, deadline=None)
@given(_random_pytrees(), st.sampled_from(["sum", "mean", "mean_square", "max"]))
def test_aggregations_are_axis_reductions(tree, reduce):
  graph = ParamGraph.from_params(tree)
  leaves = jax.tree.leaves(tree)
  assert graph.num_params == sum(x.size for x in leaves)
  for info, x in zip(graph.tensors, leaves):
    assert info.shape == x.shape and info.dtype == x.dtype.name
    assert info.role == (EDGES if x.ndim >= 2 else NODES if x.ndim == 1 else GRAPH)
    x32 = np.asarray(x, np.float32)
    if x.ndim >= 2:
      ref = {"sum": np.sum, "mean": np.mean, "max": np.max,
             "mean_square": lambda a, axis: np.mean(a * a, axis=axis)}[reduce]
      out = ops.aggregate_to_nodes(x, "out", reduce)
      inn = ops.aggregate_to_nodes(x, "in", reduce)
      assert out.shape == (x.shape[-1],) and inn.shape == (x.shape[-2],)
      assert out.dtype == jnp.float32
      np.testing.assert_allclose(out, ref(x32, axis=tuple(range(x.ndim - 1))), rtol=1e-4,
                                 atol=1e-5)
      np.testing.assert_allclose(
          inn, ref(x32, axis=tuple(a for a in range(x.ndim) if a != x.ndim - 2)), rtol=1e-4,
          atol=1e-5)
  readouts = jax.tree.leaves(graph.layer_readout(tree, reduce))
  assert len(readouts) == len(leaves) and all(r.shape == () for r in readouts)
  nodes = graph.node_aggregate(tree, reduce, "both")
  assert [n.shape for n in nodes] == [(s.size,) for s in graph.node_sets]
  total = graph.graph_readout(tree, "sum")
  np.testing.assert_allclose(total, sum(np.sum(np.asarray(x, np.float32)) for x in leaves),
                             rtol=1e-4, atol=1e-4)
