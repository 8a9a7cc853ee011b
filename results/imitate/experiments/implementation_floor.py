r"""How far apart two exact implementations of the same rule end: optax's and learned_opt's.

  PYTHONPATH=. python results/imitate/experiments/implementation_floor.py [SEEDS]

For the imitation issue's four rules (`configs/evaluate_imitation.py`'s kwargs) on its
four 1000-step networks, at SEEDS (comma-separated, default 0,1,2): the gap
(optax - ours) / ours between `optax.<rule>(**kwargs)` and
`learned_opt.algorithms.get(rule, **kwargs).as_optax()` (the graph algorithm the
executor imitates, and that `meta_train.evaluate_imitation` compares it with), on the
same mean loss of the last 5% of steps, same init and batches. The two compute the
same math in a different order, so they differ only by float32 rounding; a cell where
they end more than 5% apart cannot be imitated within 5% by any executor that is not
bit-identical to the rule.
"""

import sys

import optax

import learned_opt
import tasks
from configs import evaluate_imitation
from meta_train.evaluate_imitation import final_loss
from rule_sensitivity import TARGET_RULES as RULES
from seed_spread import NETWORKS, TARGET


def main(seeds: list[int]) -> None:
  config = evaluate_imitation.get_config()
  print("| rule | seed | " + " | ".join(NETWORKS) + " |")
  print("|---|---|" + "---|" * len(NETWORKS))
  beyond = 0
  for name in RULES:
    kwargs = dict(config.rules[name])
    for seed in seeds:
      cells = []
      for label in NETWORKS:
        spec = config.networks[label]
        task = tasks.get(spec.name, **spec.kwargs)
        ours, _ = final_loss(task, learned_opt.algorithms.get(name, **kwargs).as_optax(),
                             config.steps, seed)
        theirs, _ = final_loss(task, getattr(optax, name)(**kwargs), config.steps, seed)
        gap = (theirs - ours) / abs(ours)
        beyond += abs(gap) > TARGET
        cells.append(f"{100 * gap:+.2f}%")
      print(f"| {name} | {seed} | " + " | ".join(cells) + " |", flush=True)
  print(f"\ncells where the two implementations end more than 5% apart: {beyond}/"
        f"{len(RULES) * len(seeds) * len(NETWORKS)}")


if __name__ == "__main__":
  main([int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "0,1,2").split(",")])
