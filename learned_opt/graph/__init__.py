"""The parameter graph of a network: neurons as nodes, weights as edges."""

from learned_opt.graph import ops
from learned_opt.graph.param_graph import EDGES, GRAPH, NODES, NodeSet, ParamGraph, TensorInfo

__all__ = ["EDGES", "GRAPH", "NODES", "NodeSet", "ParamGraph", "TensorInfo", "ops"]
