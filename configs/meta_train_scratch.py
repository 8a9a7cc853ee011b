"""configs/meta_train.py from an untrained executor: does the algorithmic prior help?

  python -m meta_train.train --config=configs/meta_train_scratch.py --workdir=DIR

Same budget, tasks, estimator and regularizer; the executor starts from fresh
weights (random hidden layers, output layers at zero) whose biases are plain
SGD (`prior="sgd"`) instead of the imitation checkpoint.
"""

import ml_collections

from configs import meta_train


def get_config() -> ml_collections.ConfigDict:
  config = meta_train.get_config()
  config.init_from = ""
  config.executor.prior = "sgd"
  return config
