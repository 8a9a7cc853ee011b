r"""How far does each rule's own final loss move when its learning rate moves by a few percent?

  PYTHONPATH=. python results/imitate/experiments/rule_sensitivity.py [--seed=N] [FACTOR ...]

For the rules and networks of `configs/evaluate_imitation.py` (same seed, init and
batches as `meta_train.evaluate_imitation`), prints the closed-loop gap of the rule
run at FACTOR x its learning rate (default 0.95 and 1.05) against the rule itself:
the same (other - rule) / rule on the mean loss of the last 5% of steps. An
executor whose updates are off by a few percent in scale can move as far; the
column says how much of an executor's gap a 5% step-size error alone explains.
The Transformer is left out (every executor gap there is under 1.2%). With factors
of 0.999 and 1.001 it measures how chaotic each cell is: a cell whose own final
loss moves by more than 5% under a 0.1% change of the learning rate cannot be
imitated within 5% by anything short of a near-exact copy of the rule.
`--seed=N` runs the evaluation's seed N (`--config.seed` of evaluate_imitation).
`--cells` keeps only the imitation issue's four 1000-step networks (no 10x steps).
Factors print with 7 significant digits, so 1.000001 (a change of a few float32
roundings of the learning rate) reads as itself.
"""

import sys

import learned_opt
import tasks
from configs import evaluate_imitation as config_module
from meta_train.evaluate_imitation import final_loss

TARGET_RULES = ("adam", "sgd", "adafactor", "lamb")


def main(factors: list[float], seed: int = 0, cells_only: bool = False) -> None:
  config = config_module.get_config()
  config.seed = seed
  labels = [label for label in config.networks
            if label != "transformer" and not (cells_only and label == "10x steps")]
  print("| rule | lr factor | " + " | ".join(f"gap {label}" for label in labels) + " |")
  print("|---|---|" + "---|" * len(labels))
  for name in TARGET_RULES:
    kwargs = dict(config.rules[name])
    cells = {factor: [] for factor in factors}
    for label in labels:
      spec = config.networks[label]
      task = tasks.get(spec.name, **spec.kwargs)
      steps = spec.get("steps", config.steps)
      rule = learned_opt.algorithms.get(name, **kwargs).as_optax()
      base, _ = final_loss(task, rule, steps, config.seed)
      for factor in factors:
        moved = dict(kwargs, learning_rate=kwargs["learning_rate"] * factor)
        other, _ = final_loss(task, learned_opt.algorithms.get(name, **moved).as_optax(),
                              steps, config.seed)
        cells[factor].append(f"{100 * (other - base) / abs(base):+.1f}%")
    for factor in factors:
      print(f"| {name} | {factor:.7g} | " + " | ".join(cells[factor]) + " |", flush=True)


if __name__ == "__main__":
  seeds = [int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--seed=")]
  main([float(a) for a in sys.argv[1:] if not a.startswith("--")] or [0.95, 1.05],
       seeds[-1] if seeds else 0, "--cells" in sys.argv[1:])
