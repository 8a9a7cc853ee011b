"""Per-tensor rate and target of the step-size integrator that a checkpoint's head sets.

  PYTHONPATH=.:results/meta_train/experiments python \
      results/meta_train/experiments/step_size_head.py CHECKPOINT LABEL [LABEL ...]

LABEL is a task of any suite (`cosine_probe.suite_task`: test, family draws,
validation, validation2). For each tensor of the task's parameter graph, prints
its shape and the integrator's rate max(beta + head_0, 0) and target c + head_1
at clock 0 and 1000 (ExecutorConfig.learned_step_size; learned_opt.executor.step).
"""

import sys

import jax
import numpy as np

from cosine_probe import suite_task
from learned_opt import checkpoint
from learned_opt.executor import network, step as step_lib
from meta_train import imitation


def head_outputs(path: str, params, clock: int) -> np.ndarray:
  """[tensors, 2]: (rate, target) per tensor at `clock`, for the checkpoint's default rule."""
  weights, config, extra = checkpoint.restore(path)
  rule = dict(extra["default_rule"])
  algorithm = rule.pop("algorithm")
  cond = imitation.conditioning_for(config, algorithm, rule, params)
  c, _ = step_lib.hyper_coefficients(weights, config, cond.rule_id, cond.hyper_features,
                                     clock)
  per_tensor = network.build(config).apply[2](weights, c, cond.tensor_features)
  head = np.asarray(per_tensor[:, network.NUM_TENSOR_OUTPUTS:])
  rate = np.maximum(config.step_size_adaptation + head[:, 0], 0.0)
  return np.stack([rate, config.step_size_target + head[:, 1]], -1)


def main(path: str, labels: list[str]) -> None:
  for label in labels:
    task, _ = suite_task(label)
    params = task.init(jax.random.PRNGKey(0))
    shapes = [tuple(x.shape) for x in jax.tree.leaves(params)]
    early, late = head_outputs(path, params, 0), head_outputs(path, params, 1000)
    print(f"## {label}\n\n| tensor | rate, target at 0 | at 1000 |\n|---|---|---|")
    for shape, a, b in zip(shapes, early, late):
      print(f"| {shape} | {a[0]:.3f}, {a[1]:+.3f} | {b[0]:.3f}, {b[1]:+.3f} |")
    print()


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2:])
