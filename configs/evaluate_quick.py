"""A quick evaluation (tests, `make demo`): 3 small tasks, few steps, 1 seed.

  python -m meta_train.evaluate --config=configs/evaluate_quick.py --workdir=DIR
"""

import ml_collections

from configs import evaluate


def get_config() -> ml_collections.ConfigDict:
  config = evaluate.get_config()
  config.num_seeds = 1
  config.steps = 300
  config.tasks = {
      "mlp_128x3_digits": dict(name="digits_mlp", kwargs=dict(hidden=(128, 128, 128))),
      "autoencoder_digits": dict(name="digits_autoencoder"),
      "diabetes_regression": dict(name="diabetes_mlp"),
  }
  config.long_horizon = None
  return config
