"""Gradient-descent-style update rules written as graph programs that emit hints.

`names()` lists the rules, `get(name, **optax_kwargs)` builds one. Each rule has
`init`, `step(grads, state, params) -> (updates, state, trace)` and `as_optax()`.
"""

from learned_opt.algorithms import adam  # noqa: F401  (registers adam, adamw, nadam)
from learned_opt.algorithms import adafactor  # noqa: F401  (registers adafactor)
from learned_opt.algorithms import adabelief  # noqa: F401  (registers adabelief)
from learned_opt.algorithms import adagrad  # noqa: F401  (registers adagrad)
from learned_opt.algorithms import hypergradient  # noqa: F401  (registers hypergradient)
from learned_opt.algorithms import lion  # noqa: F401  (registers lion)
from learned_opt.algorithms import muon  # noqa: F401  (registers muon)
from learned_opt.algorithms import rmsprop  # noqa: F401  (registers rmsprop)
from learned_opt.algorithms import sgd  # noqa: F401  (registers sgd)
from learned_opt.algorithms import trust_ratio  # noqa: F401  (registers lamb, lars)
from learned_opt.algorithms.base import (EDGE, GRAPH, LAYER, LOCATIONS, MASK, NODE, SCALAR,
                                         Hint, Rule, Trace, UnsupportedOptionError, get,
                                         names, register)

__all__ = ["EDGE", "GRAPH", "LAYER", "LOCATIONS", "MASK", "NODE", "SCALAR", "Hint", "Rule",
           "Trace", "UnsupportedOptionError", "get", "names", "register"]
