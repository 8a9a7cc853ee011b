"""Does the imitation loss ask for a rule's memory? Its gradient on the learned decays.

  PYTHONPATH=. python results/imitate/experiments/decay_gradient.py CHECKPOINT [RULE [WARMUP]]

RULE adam (default): Adam runs at b2 0.99 and 0.9995, and the raw second-moment
decay (a2). RULE adafactor: Adafactor runs (learning rate 1e-2, matrices of 16 or
more rows and columns factored), and the raw decay of the row and column states
(a3), which hold its factored moments. Several tasks and seeds, `WARMUP` leading
steps (default 1000) with the warm-up gradient on, as imitation trains with
config.warmup_gradient=True. Prints the derivative of the trajectory loss (update
loss and hint loss apart) with respect to that raw decay (the hypernet's bias on
it, which shifts that raw output at every clock). Raw ~ log(1 - a): a positive
derivative asks for a longer memory, a negative one for a shorter. If the
imitation loss reads b2, Adam's signs split by b2.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

from configs import imitate as imitate_config
from learned_opt import checkpoint
from meta_train import imitate, imitation

SEEDS = (0, 1)
# rule -> (index of the raw decay in the hypernet's outputs, the kwargs it runs with)
SETTINGS = {
    "adam": (1, [{"learning_rate": 1e-3, "b1": 0.9, "b2": b2} for b2 in (0.99, 0.9995)]),
    "adafactor": (2, [{"learning_rate": 1e-2, "min_dim_size_to_factor": 16}]),
}


def main(path: str, rule: str = "adam", warmup: int = 1000) -> None:
  index, settings = SETTINGS[rule]
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
    return jax.jacrev(parts)(weights["hypernet_linear"]["b"])[:, index]

  print(f"{rule}, warm-up {warmup} steps; d loss / d raw decay {index} "
        "(+: wants a longer memory)")
  print("| kwargs | task | seed | update loss | hint loss |")
  print("|---|---|---|---|---|")
  totals = {i: [] for i in range(len(settings))}
  for i, kwargs in enumerate(settings):
    for t, task in enumerate(task_list):
      for seed in SEEDS:
        key = jax.random.PRNGKey(seed)
        k_init, k_data, k_loss = jax.random.split(key, 3)
        params = task.init(k_init)
        batches = task.datasets.train.stacked(k_data, warmup + config.unroll)
        static, dynamic = imitation.split_kwargs(kwargs)
        traj = imitation.rule_trajectory(rule, static, dynamic, task.loss, params,
                                         batches, k_loss)
        cond = imitation.conditioning_for(exec_config, rule, kwargs, params)
        g = np.asarray(grads(weights, traj, cond))
        totals[i].append(g)
        print(f"| {kwargs} | {t} | {seed} | {g[0]:+.4f} | {g[1]:+.4f} |")
  for i, kwargs in enumerate(settings):
    mean = np.mean(totals[i], axis=0)
    print(f"| {kwargs} | mean | | {mean[0]:+.4f} | {mean[1]:+.4f} |")


if __name__ == "__main__":
  main(sys.argv[1], *sys.argv[2:3], *(int(a) for a in sys.argv[3:]))
