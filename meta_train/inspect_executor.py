r"""Looks inside a saved executor: its graph-level coefficients and how it tracks a rule.

  python -m meta_train.inspect_executor --checkpoint=DIR [--algorithm=adam] \
      [--learning_rate=3e-3] [--task=digits_mlp] [--task_kwargs='{"hidden": [128, 128]}'] \
      [--steps=300] [--fresh]

1. The hypernet's graph-level outputs at a few clock values: the decays and gains
   of the running averages and the decoupled weight-decay gain (as emitted, before
   the executor clamps it at >= 0).
2. Along the rule's own run on `task` (teacher-forced inputs, the executor's own
   state fed back), the update cosine and norm ratio (executor / rule) per step.

`--fresh` replaces the checkpoint's weights by fresh ones of its architecture (the
prior the executor starts from).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import tasks
from learned_opt import checkpoint
from learned_opt.executor import conditioning, encode, network
from learned_opt.executor.optimizer import graph_of, hyper_features
from meta_train import imitation

_REPORT_STEPS = (0, 1, 5, 10, 20, 40, 80, 120, 200, 299, 499, 1000, 1500, 1999)


def coefficients(weights, config, hand_set, rule_id, hyper_features, clock: int
                 ) -> network.Coefficients:
  """The hypernet's graph-level coefficients at step `clock` (hand-set pins applied)."""
  return encode.hyper_coefficients(weights, config, hand_set, rule_id, hyper_features,
                                   jnp.asarray(clock))[1]


def agreement(weights, config, hand_set, algorithm: str, kwargs: dict, task: tasks.Task,
              steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Per-step (cosine, norm ratio) of the executor's updates against the rule's."""
  traj, cond = imitation.rule_run(config, algorithm, kwargs, task, steps, seed)
  return imitation.per_step_agreement(weights, config, hand_set, traj, cond, norm_ratio=True)


def main(argv):
  del argv
  weights, config, hand_set, _ = checkpoint.restore(flags.FLAGS.checkpoint)
  if flags.FLAGS.fresh:
    weights = network.init_weights(config, jax.random.PRNGKey(0))
  algorithm = flags.FLAGS.algorithm
  kwargs = {"learning_rate": flags.FLAGS.learning_rate}
  rule_id = jnp.asarray(config.rules.index(algorithm), jnp.int32)
  hyper = hyper_features(config, algorithm, kwargs)
  steps = flags.FLAGS.steps
  print(f"== graph-level coefficients ({algorithm}, {kwargs})")
  for t in [s for s in _REPORT_STEPS if s < steps]:
    co = coefficients(weights, config, hand_set, rule_id, hyper, t)
    print(f"  step {t:4d}: weight decay {float(co.weight_decay):+.4f}  decays "
          f"{np.round(np.asarray(co.decays), 5)}  gains {np.asarray(co.gains)}")
  task_kwargs = {k: tuple(v) if isinstance(v, list) else v
                 for k, v in json.loads(flags.FLAGS.task_kwargs).items()}
  task = tasks.get(flags.FLAGS.task, **task_kwargs)
  cond_fn, _, tensor_fn = network.build(config).apply[:3]
  graph = graph_of(task.init(jax.random.PRNGKey(0)))
  feats = encode.tensor_features(graph, None)
  print("== per tensor (first rank>=2 tensor): node exponents row/col/mean-row (their sum),"
        " gain coefficient on log RMS(d)")
  first = next(i for i, t in enumerate(graph.tensors) if len(t.shape) >= 2)
  for t in [s for s in _REPORT_STEPS if s < steps]:
    c = cond_fn(weights, rule_id, hyper, conditioning.time_features(jnp.asarray(t)))
    out = np.asarray(tensor_fn(weights, c, feats))[first]
    print(f"  step {t:4d}: exponents {np.round(out[1:4], 3)} ({out[1:4].sum():+.3f})  "
          f"direction gain {out[network.DIRECTION_GAIN_INDEX]:+.3f}")
  cos, ratio = agreement(weights, config, hand_set, algorithm, kwargs, task, steps)
  print(f"== against {algorithm} along its own run on {flags.FLAGS.task}")
  for t in [s for s in _REPORT_STEPS if s < steps]:
    print(f"  step {t:4d}: cosine {cos[t]:.4f}  norm ratio {ratio[t]:.3f}")


if __name__ == "__main__":
  flags.DEFINE_string("checkpoint", None, "Executor checkpoint directory.")
  flags.DEFINE_string("algorithm", "adam", "Rule to condition on and compare with.")
  flags.DEFINE_float("learning_rate", 3e-3, "The rule's learning rate.")
  flags.DEFINE_string("task", "digits_mlp", "Named task (tasks.names()).")
  flags.DEFINE_string("task_kwargs", "{}", "JSON object of the task's keyword arguments.")
  flags.DEFINE_integer("steps", 300, "Steps of the rule's run.")
  flags.DEFINE_bool("fresh", False, "Use fresh weights of the checkpoint's architecture.")
  flags.mark_flags_as_required(["checkpoint"])
  app.run(main)
