"""Meta-train a small learned optimizer, load it, and train a task with it.

  python examples/meta_train_small.py [--outer_steps 6] [--workdir /tmp/meta_train_small]

`meta_train.train.train(config, workdir)` is what `python -m meta_train.train` runs:
here on configs/meta_train.py's config shrunk to tiny MLPs on digits (about a minute
on a CPU). It starts from the shipped executor conditioned on Adam(3e-3), meta-trains
it with PES, and writes checkpoints that `learned_opt.load` reads as an optax rule.
"""

import argparse

import jax
import optax

import learned_opt
import tasks
from configs.meta_train import get_config
from meta_train import train


def main(outer_steps: int, workdir: str, inner_steps: int = 100) -> None:
  config = get_config()  # the CPU run (README: "Meta-train your own"), shrunk:
  config.family.update(datasets=("digits",), widths=(8, 8), depths=(1, 1),
                       activations=("relu",), batch_sizes=(16,))   # the tasks: tiny MLPs
  config.update(num_structures=1, population=4,          # 4 tasks in one population,
                truncation_length=4, num_truncations=3,  # episodes of 3 x 4 inner steps
                num_steps=outer_steps, log_every=1, checkpoint_every=outer_steps,
                compiler_options={"xla_backend_optimization_level": 0})  # compiles faster
  config.imitation.update(num_trajectories=1, unroll=4)  # the imitation regularizer
  train.train(config, workdir)  # prints progress; rerun on the same workdir to resume

  tx = learned_opt.load(f"{workdir}/checkpoints")  # the latest checkpoint, as optax
  task = tasks.get("digits_mlp")
  key = jax.random.PRNGKey(0)
  params = task.init(key)
  opt_state = tx.init(params)

  @jax.jit
  def train_step(params, opt_state, key):
    batch = task.datasets.train.sample(key)
    loss, grads = jax.value_and_grad(task.loss)(params, key, batch)
    updates, opt_state = tx.update(grads, opt_state, params, value=loss)
    return optax.apply_updates(params, updates), opt_state, loss

  for step in range(inner_steps):
    params, opt_state, loss = train_step(params, opt_state, jax.random.fold_in(key, step))
    if step % max(1, inner_steps // 5) == 0 or step == inner_steps - 1:
      print(f"{task.name} step {step:4d}  train loss {float(loss):.4f}")


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--outer_steps", type=int, default=6, help="Meta-training steps.")
  parser.add_argument("--workdir", default="/tmp/meta_train_small", help="Checkpoints.")
  args = parser.parse_args()
  main(args.outer_steps, args.workdir)
