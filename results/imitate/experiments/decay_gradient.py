"""Does the imitation loss ask for Adam's b2? The loss's gradient on the learned decays.

  PYTHONPATH=. python results/imitate/experiments/decay_gradient.py CHECKPOINT [WARMUP]

For Adam runs at b2 0.99 and 0.9995 (several tasks and seeds, `WARMUP` leading
steps, default 1000, with the warm-up gradient on, as imitation trains with
config.warmup_gradient=True), prints the derivative of the trajectory loss
(update loss and hint loss apart) with respect to the raw second-moment decay
(the hypernet's bias on it, which shifts that raw output at every clock). Raw
~ log(1 - a): a positive derivative asks for a longer memory, a negative one
for a shorter. If the imitation loss reads b2, the signs split by b2.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

from configs import imitate as imitate_config
from learned_opt import checkpoint
from meta_train import imitate, imitation

B2S = (0.99, 0.9995)
SEEDS = (0, 1)


def main(path: str, warmup: int = 1000) -> None:
  weights, exec_config, _ = checkpoint.restore(path)
  config = imitate_config.get_config()
  config.family.batch_sizes = (32, 64, 128)
  task_list = imitate.build_tasks(config)

  @jax.jit
  def grads(weights, traj, cond):
    def parts(bias):
      w = dict(weights, hypernet_linear=dict(weights["hypernet_linear"], b=bias))
      full, _ = imitation.trajectory_loss(w, exec_config, traj, cond, config.hint_weight,
                                          warmup, config.magnitude_weight, True)
      update, _ = imitation.trajectory_loss(w, exec_config, traj, cond, 0.0,
                                            warmup, config.magnitude_weight, True)
      return jnp.stack([update, full - update])
    return jax.jacrev(parts)(weights["hypernet_linear"]["b"])[:, 1]

  print(f"warm-up {warmup} steps; d loss / d raw second-moment decay "
        "(+: wants a longer memory)")
  print("| b2 | task | seed | update loss | hint loss |")
  print("|---|---|---|---|---|")
  totals = {b2: [] for b2 in B2S}
  for b2 in B2S:
    for t, task in enumerate(task_list):
      for seed in SEEDS:
        kwargs = {"learning_rate": 1e-3, "b1": 0.9, "b2": b2}
        key = jax.random.PRNGKey(seed)
        k_init, k_data, k_loss = jax.random.split(key, 3)
        params = task.init(k_init)
        batches = task.datasets.train.stacked(k_data, warmup + config.unroll)
        static, dynamic = imitation.split_kwargs(kwargs)
        traj = imitation.rule_trajectory("adam", static, dynamic, task.loss, params,
                                         batches, k_loss)
        cond = imitation.conditioning_for(exec_config, "adam", kwargs, params)
        g = np.asarray(grads(weights, traj, cond))
        totals[b2].append(g)
        print(f"| {b2} | {t} | {seed} | {g[0]:+.4f} | {g[1]:+.4f} |")
  for b2 in B2S:
    mean = np.mean(totals[b2], axis=0)
    print(f"| {b2} | mean | | {mean[0]:+.4f} | {mean[1]:+.4f} |")


if __name__ == "__main__":
  main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
