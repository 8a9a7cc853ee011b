"""Prints an executor's layer-gain coefficients for Adafactor and SGD at a few clocks.

  PYTHONPATH=. python results/imitate/experiments/gain_outputs.py CHECKPOINT [HIDDEN]

On digits MLP 64-HIDDEN-10 (default 32), per tensor: the tensor net's coefficients of
learned_opt.executor.network.layer_log_gain (slope, hinge and knot on log RMS(p), the
same on log RMS(d), and the bias), as the step uses them (with
ExecutorConfig.rule_gain_slopes, the rule's fixed ones). Adafactor's own form: slope 0
and hinge 1 at log 1e-3 on log RMS(p) (its parameter scale), slope 0 and hinge -1 on log
RMS(d) (its update clipping).
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import tasks
from learned_opt import checkpoint
from learned_opt.executor import conditioning, network, step as step_lib
from learned_opt.executor.optimizer import graph_of, hyper_features

RULES = (("adafactor", {"learning_rate": 1e-2, "min_dim_size_to_factor": 16}),
         ("sgd", {"learning_rate": 0.05, "momentum": 0.9}))


def main(path: str, hidden: int = 32) -> None:
  weights, config, _ = checkpoint.restore(path)
  graph = graph_of(tasks.get("digits_mlp", hidden=(int(hidden),)).init(jax.random.PRNGKey(0)))
  cond_fn, _, tensor_fn = network.build(config).apply
  print("| rule | clock | tensor | p: slope, hinge, knot | d: slope, hinge, knot | bias |")
  print("|---|---|---|---|---|---|")
  for rule, kwargs in RULES:
    rule_id = jnp.asarray(config.rules.index(rule))
    feats = step_lib.tensor_features(graph, kwargs.get("min_dim_size_to_factor"))
    for clock in (0, 100, 1000):
      c = cond_fn(weights, rule_id, hyper_features(config, rule, kwargs),
                  conditioning.time_features(jnp.asarray(clock)))
      gains = tensor_fn(weights, c, feats)[:, network.NUM_NORMALIZER_OUTPUTS:
                                           network.NUM_TENSOR_OUTPUTS]
      if config.rule_gain_slopes:
        gains = network.pin_rule_gain(gains, config, rule_id)
      for info, g in zip(graph.tensors, np.asarray(gains)):
        print(f"| {rule} | {clock} | {info.shape} | {g[0]:.3f}, {g[1]:.3f}, {g[2]:.2f} | "
              f"{g[4]:.3f}, {g[5]:.3f}, {g[6]:.2f} | {g[8]:+.3f} |")


if __name__ == "__main__":
  main(*sys.argv[1:])
