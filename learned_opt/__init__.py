"""learned_opt: optimizers as graph algorithms, imitated and improved by a neural executor.

Typical use::

  import learned_opt
  graph = learned_opt.ParamGraph.from_params(params)
  rule = learned_opt.algorithms.get("adam", learning_rate=1e-3)
  tx = rule.as_optax()          # numerically equal to optax.adam(1e-3)
"""

from learned_opt import algorithms
from learned_opt import graph
from learned_opt.graph import ParamGraph

__version__ = "0.1.0"

__all__ = ["ParamGraph", "algorithms", "graph", "__version__"]
