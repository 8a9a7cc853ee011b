"""Meta-training on a GPU/TPU: configs/meta_train.py with larger numbers only.

  python -m meta_train.train --config=configs/meta_train_accel.py --workdir=DIR
"""

import ml_collections

from configs import meta_train


def get_config() -> ml_collections.ConfigDict:
  config = meta_train.get_config()
  config.family.widths = (32, 256)
  config.family.depths = (1, 3)
  config.family.batch_sizes = (128, 256)
  config.num_structures = 8
  config.population = 64
  config.truncation_length = 50
  config.num_truncations = 40      # episodes of 2000 inner steps
  config.num_steps = 20000
  config.imitation.num_trajectories = 8
  config.imitation.unroll = 50
  config.log_every = 20
  config.checkpoint_every = 200
  return config
