"""learned_opt: optimizers as graph algorithms, imitated and improved by a neural executor.

Typical use::

  import learned_opt
  graph = learned_opt.ParamGraph.from_params(params)
  rule = learned_opt.algorithms.get("adam", learning_rate=1e-3)
  tx = rule.as_optax()          # numerically equal to optax.adam(1e-3)
  tx = learned_opt.pretrained("executor", algorithm="adam", learning_rate=1e-3)
  tx = learned_opt.load("path/to/checkpoint")
"""

from learned_opt import algorithms
from learned_opt import checkpoint
from learned_opt import executor
from learned_opt import graph
from learned_opt.checkpoint import CheckpointError, load
from learned_opt.graph import ParamGraph
from learned_opt.shipped import pretrained, pretrained_names

__version__ = "0.2.0"

__all__ = ["CheckpointError", "ParamGraph", "algorithms", "checkpoint", "executor", "graph",
           "load", "pretrained", "pretrained_names", "__version__"]
