"""A tiny meta-training run (under a minute on 2 CPU cores, 3 checkpoints).

  python -m meta_train.train --config=configs/smoke.py --workdir=/tmp/smoke
"""

import ml_collections

from configs import meta_train


def get_config() -> ml_collections.ConfigDict:
  config = meta_train.get_config()
  config.family.datasets = ("digits",)
  config.family.widths = (8, 8)
  config.family.depths = (1, 1)
  config.family.activations = ("relu",)
  config.family.batch_sizes = (16,)
  config.num_structures = 1
  config.population = 4
  config.truncation_length = 4
  config.num_truncations = 3
  config.num_steps = 6
  config.imitation.num_trajectories = 1
  config.imitation.unroll = 4
  config.log_every = 1
  config.checkpoint_every = 2
  # Compile time dominates a run this small: without LLVM's optimizations it compiles in
  # about half the time (21 s instead of 37 s for the whole run on a loaded 2-core CPU).
  config.compiler_options = {"xla_backend_optimization_level": 0}
  return config
