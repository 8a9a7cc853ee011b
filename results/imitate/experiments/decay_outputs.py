"""Prints an executor's learned running-average decays against the rule's own decay.

  PYTHONPATH=. python results/imitate/experiments/decay_outputs.py CHECKPOINT

For Adam at several b2 and clocks: the executor's first- and second-moment decays
(a1, a2 of learned_opt.executor.step) as time constants 1 / (1 - a), next to
Adam's 1 / (1 - b1) and 1 / (1 - b2). Debiasing hides a wrong decay for as long as
a run is shorter than both time constants (the debiased average is then the
plain mean either way); past that the second moment forgets at the wrong rate.
Then, for Adafactor (learning rate 1e-2, matrices of 16 or more rows and columns
factored), the time constants of all three decays (a1, a2, and a3, the row and
column states that hold its factored moments) at a few clocks, next to Adafactor's
own second-moment decay 1 - (t + 1)^-0.8 at step count t (time constant (t + 1)^0.8).
Last, the hypernet's linear-skip weight from the b2 slot's third feature (log(1 - b2),
standardized or not) to the raw second-moment decay: reading b2 takes a weight of about
the feature's scale (1 unstandardized), of either sign by the decay form.
"""

import sys

import jax.numpy as jnp

from learned_opt import checkpoint
from learned_opt.executor import conditioning, network, step as step_lib
from learned_opt.executor.optimizer import hyper_features

CLOCKS = (0, 1000, 5000)
ADAFACTOR_CLOCKS = (1, 10, 100, 1000)
B2S = (0.99, 0.995, 0.999, 0.9995)


def main(path: str) -> None:
  weights, config, _ = checkpoint.restore(path)
  hyper_fn = network.build(config).apply[1]

  def coefficients(rule, hyper, clock):   # (conditioning vector, Coefficients)
    return step_lib.hyper_coefficients(weights, config, jnp.asarray(config.rules.index(rule)),
                                       hyper, jnp.asarray(clock))
  print("| rule | b1 | b2 | Adam's time constants (m, v) | executor's (m, v) at clocks "
        + "/".join(str(c) for c in CLOCKS) + " |")
  print("|---|---|---|---|---|")
  for b2 in B2S:
    kwargs = {"learning_rate": 1e-3, "b1": 0.9, "b2": b2}
    hyper = hyper_features(config, "adam", kwargs)
    cells = []
    for clock in CLOCKS:
      a = coefficients("adam", hyper, clock)[1].decays
      cells.append(f"{1 / (1 - float(a[0])):.0f}, {1 / (1 - float(a[1])):.0f}")
    print(f"| adam | 0.9 | {b2} | 10, {1 / (1 - b2):.0f} | " + " / ".join(cells) + " |")
  # At step count t optax's Adafactor decays by 1 - (t + 1)^-0.8 (tables written before
  # 2026-11-28's nineteenth session printed t^0.8 here).
  print("\n| rule | clock | Adafactor's time constant | executor's (a1, a2, a3) | raw a3 |")
  print("|---|---|---|---|---|")
  kwargs = {"learning_rate": 1e-2, "min_dim_size_to_factor": 16}
  hyper = hyper_features(config, "adafactor", kwargs)
  for clock in ADAFACTOR_CLOCKS:
    c, co = coefficients("adafactor", hyper, clock)
    raw = hyper_fn(weights, c)
    cells = ", ".join(f"{1 / (1 - float(d)):.1f}" for d in co.decays)
    print(f"| adafactor | {clock} | {(clock + 1) ** 0.8:.1f} | {cells} | {float(raw[2]):+.3f} |")
  b2_feature = config.embed_dim + 3 * conditioning.DECAY_KEYS.index("b2") + 2
  skip = float(weights["hypernet_linear"]["w"][b2_feature, 1])
  print(f"\nlinear-skip weight, b2 feature -> raw second-moment decay: {skip:+.3f}")


if __name__ == "__main__":
  main(sys.argv[1])
