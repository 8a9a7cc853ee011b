"""Prints an executor's per-tensor normalizer outputs for a few rules and clocks.

  PYTHONPATH=. python results/imitate/experiments/normalizer_outputs.py CHECKPOINT

On digits MLP 64-32-10 (the imitation evaluation's base network), per tensor: alpha
(weight of the RMS state), beta (constant term; with normalizer_constant="scaled"
in units of the tensor's gradient RMS, times the node factor's bias e^{w_0}, which
scales beta's term alone), k (sign gain), epsilon, the sum of the node exponents and the
layer gain's bias, with each rule's own factoring (Adafactor at min_dim_size_to_factor
16 factors the (64, 32) matrix). The Adam prior is alpha 1, beta ~0, k ~0, epsilon
1e-8, exponents 0, bias 0.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import tasks
from learned_opt import checkpoint
from learned_opt.executor import conditioning, network, step as step_lib
from learned_opt.executor.optimizer import graph_of, hyper_features

RULES = (("adam", {"learning_rate": 1e-3}), ("lion", {"learning_rate": 1e-4}),
         ("sgd", {"learning_rate": 0.05, "momentum": 0.9}),
         ("adafactor", {"learning_rate": 1e-2, "min_dim_size_to_factor": 16}))


def main(path: str) -> None:
  weights, config, _ = checkpoint.restore(path)
  params = tasks.get("digits_mlp", hidden=(32,)).init(jax.random.PRNGKey(0))
  graph = graph_of(params)
  cond_fn, _, tensor_fn = network.build(config).apply
  print("| rule | clock | tensor | alpha | beta | k | epsilon | exponent sum | gain bias |")
  print("|---|---|---|---|---|---|---|---|---|")
  for rule, kwargs in RULES:
    hyper = hyper_features(config, rule, kwargs)
    # The rule's own factoring (before 2026-11-28 this read None for every rule, so
    # Adafactor's rows described its outputs for matrices it does not factor).
    feats = step_lib.tensor_features(graph, kwargs.get("min_dim_size_to_factor"))
    for clock in (0, 200):
      c = cond_fn(weights, jnp.asarray(config.rules.index(rule)), hyper,
                  conditioning.time_features(jnp.asarray(clock)))
      out = np.asarray(tensor_fn(weights, c, feats))
      for info, o in zip(graph.tensors, out):
        k = float(step_lib.sign_gain(o[6], config.sign_gain))
        beta = float(step_lib.normalizer_constant(o[5], config.normalizer_constant, 0.0))
        if config.normalizer_constant == "scaled":   # the node factor's bias scales beta alone
          beta *= float(np.exp(np.clip(o[4], -30.0, 30.0)))
        print(f"| {rule} | {clock} | {info.shape} | {abs(o[0]):.3f} | "
              f"{beta:.1e} | {k:.2e} | {np.exp(min(o[7], 0.0)):.1e} | "
              f"{o[1] + o[2] + o[3]:+.3f} | {o[network.NUM_TENSOR_OUTPUTS - 1]:+.3f} |")


if __name__ == "__main__":
  main(sys.argv[1])
