r"""Per-tensor cosine and norm ratio of an executor against a rule, along the rule's run.

  PYTHONPATH=. python results/imitate/experiments/per_tensor_agreement.py CHECKPOINT [RULE [NETWORK]]

RULE (default adafactor) runs 200 steps on digits MLP 64-32-10 (or NETWORK, a key of
`configs/evaluate_imitation.py`'s networks, e.g. "4x wider (256)") with the kwargs of
that config, as `meta_train.evaluate_imitation`'s teacher-forced column does; the executor runs along it with its own state fed back. Prints, for a
few steps and as medians, each tensor's update cosine and norm ratio (executor / rule).
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import tasks
from configs import evaluate_imitation
from learned_opt import checkpoint
from meta_train import imitation

STEPS = 200
SHOWN = (0, 1, 2, 5, 10, 20, 50, 100, 150, 199)


def per_tensor(path: str, rule: str, network: str | None = None
               ) -> tuple[list, np.ndarray, np.ndarray]:
  """(tensor shapes, cosines [step, tensor], norm ratios [step, tensor])."""
  weights, config, _ = checkpoint.restore(path)
  eval_config = evaluate_imitation.get_config()
  spec = eval_config.networks[network] if network else eval_config.base_task
  task = tasks.get(spec.name, **spec.kwargs)
  return agreement_along_rule(weights, config, rule, dict(eval_config.rules[rule]), task,
                              eval_config.seed)


def agreement_along_rule(weights, config, rule: str, kwargs: dict, task, seed: int
                         ) -> tuple[list, np.ndarray, np.ndarray]:
  """Per-tensor cosines and norm ratios [step, tensor] of the executor along the rule's
  own STEPS-step run on `task` (its state fed back), and the tensor shapes."""
  traj, cond = imitation.rule_run(config, rule, kwargs, task, STEPS, seed)
  graph = imitation.graph_of(jax.tree.map(lambda x: x[0], traj.params))

  def metrics(pred, target):
    pairs = list(zip(graph.leaves(pred), graph.leaves(target)))
    cos = jnp.stack([jnp.sum(a * b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + 1e-30)
                     for a, b in pairs])
    ratio = jnp.stack([jnp.linalg.norm(a) / (jnp.linalg.norm(b) + 1e-30) for a, b in pairs])
    return cos, ratio

  cos, ratio = imitation.per_step_agreement(weights, config, traj, cond, metrics=metrics)
  return [info.shape for info in graph.tensors], cos, ratio


def _fmt(values: np.ndarray, digits: int) -> str:
  return ", ".join(f"{v:.{digits}f}" for v in values)


def main(path: str, rule: str = "adafactor", network: str | None = None) -> None:
  shapes, cos, ratio = per_tensor(path, rule, network)
  print(f"{rule} on {network or 'the base task'}; tensors {shapes}")
  print("| step | cosine per tensor | norm ratio per tensor |")
  print("|---|---|---|")
  for s in SHOWN:
    print(f"| {s} | {_fmt(cos[s], 4)} | {_fmt(ratio[s], 3)} |")
  print(f"| median | {_fmt(np.median(cos, 0), 4)} | {_fmt(np.median(ratio, 0), 3)} |")


if __name__ == "__main__":
  main(*sys.argv[1:])
