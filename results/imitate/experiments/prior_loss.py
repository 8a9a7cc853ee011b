"""Imitation loss of a fresh executor (the Adam prior) and of a checkpoint on Adam runs.

  PYTHONPATH=. python results/imitate/experiments/prior_loss.py CHECKPOINT

Batches of 8 Adam(b1=0.9, b2=0.999) trajectories sampled as `meta_train.imitate`
samples them (learning rate log-uniform in [1e-4, 1e-2]; three batches with no
warm-up and three with 160 warm-up steps). Prints the imitation loss (magnitude
weight 2, hint weight 0.3, as configs/imitate.py), the update relative squared error,
the hint error and the update cosine, each the batch mean.
"""

import sys

import jax
import jax.numpy as jnp

from configs import imitate as imitate_config
from learned_opt import checkpoint
from learned_opt.executor import network
from meta_train import imitate, imitation


def main(path: str) -> None:
  trained, exec_config, _ = checkpoint.restore(path)
  prior = network.init_weights(exec_config, jax.random.PRNGKey(0))
  config = imitate_config.get_config()
  config.rules = {"adam": {"learning_rate": ("log", 1e-4, 1e-2), "b1": ("choice", (0.9,)),
                           "b2": ("choice", (0.999,))}}
  task_list = imitate.build_tasks(config)
  for warmup in (0, 160):
    config.warmup_choices = (warmup,)
    loss_fn = jax.jit(jax.vmap(
        lambda w, t, c: imitation.trajectory_loss(w, exec_config, t, c, config.hint_weight,
                                                  warmup, config.magnitude_weight),
        in_axes=(None, 0, 0)))
    for step in range(3):
      trajs, conds, _, _ = imitate.sample_batch(config, exec_config, task_list, step)
      for label, weights in (("prior", prior), ("checkpoint", trained)):
        loss, m = loss_fn(weights, trajs, conds)
        print(f"warm-up {warmup} batch {step} {label}: loss {float(jnp.mean(loss)):.4f} "
              f"rel. sq. error {float(jnp.mean(m['update_rel_err'])):.4f} "
              f"hint {float(jnp.mean(m['hint_rel_err'])):.4f} "
              f"cosine {float(jnp.mean(m['cosine'])):.4f}")


if __name__ == "__main__":
  main(sys.argv[1])
