"""A quick screen: one or more rules of `configs/evaluate_imitation.py`, on the issue's
four 1000-step networks, at chosen seeds (no Transformer, no 10x steps).

  PYTHONPATH=. python results/imitate/experiments/rule_cells.py CHECKPOINT RULES SEEDS [--long]

RULES and SEEDS are comma-separated (e.g. `adafactor 0,1,2`). Writes nothing; prints
the teacher-forced median cosine and each closed-loop gap, as `meta_train.evaluate_imitation`
computes them (its own functions, the same kwargs and seeds), so a candidate can be
screened on the cells it is meant to fix before the full evaluation. `--long` adds the
config's 10x-steps network.
"""

import sys

import learned_opt
import tasks
from configs import evaluate_imitation
from learned_opt import checkpoint
from meta_train.evaluate_imitation import final_loss, teacher_forced

NETWORKS = ("2x deeper (4x32)", "4x wider (256)", "convnet", "mlp 64-32-10")


def main(path: str, rules: str, seeds: str, long: bool = False) -> None:
  config = evaluate_imitation.get_config()
  networks = NETWORKS + (("10x steps",) if long else ())
  weights, exec_config, _ = checkpoint.restore(path)
  base = tasks.get(config.base_task.name, **config.base_task.kwargs)
  print("| rule | seed | teacher-forced cosine | " + " | ".join(networks) + " |")
  print("|---|---|---|" + "---|" * len(networks))
  for name in rules.split(","):
    kwargs = dict(config.rules[name])
    tx_exec = checkpoint.load(path, algorithm=name, **kwargs)
    tx_rule = learned_opt.algorithms.get(name, **kwargs).as_optax()
    for seed in (int(s) for s in seeds.split(",")):
      cos = teacher_forced(weights, exec_config, base, name, kwargs,
                           config.teacher_forced_steps, seed)["cosine_median"]
      gaps = []
      for label in networks:
        spec = config.networks[label]
        task = tasks.get(spec.name, **spec.kwargs)
        steps = spec.get("steps", config.steps)
        ours, _ = final_loss(task, tx_exec, steps, seed)
        theirs, _ = final_loss(task, tx_rule, steps, seed)
        gaps.append(f"{100 * (ours - theirs) / abs(theirs):+.1f}%")
      print(f"| {name} | {seed} | {cos:.4f} | " + " | ".join(gaps) + " |", flush=True)


if __name__ == "__main__":
  args = [a for a in sys.argv[1:] if a != "--long"]
  main(*args, long="--long" in sys.argv[1:])
