"""Ten seeds of the evaluation suite's two deepest MLPs: how often a setting fails there.

  python -m meta_train.evaluate --config=results/meta_train/experiments/seeds_config.py \
      --workdir=DIR "--config.optimizers=('checkpoint:runs/var/NAME','optax:adam')"

The suite runs 3 seeds; a step-size setting that holds steps too long can leave one
of them on a plateau (the 128x3 GELU MLP at 0.09-0.76 against tuned Adam's 2.7e-4),
which 3 seeds may or may not show. Adam runs at its two best rates there.
"""

import ml_collections

from configs import evaluate

LABELS = ("mlp_128x3_gelu_mnist1d", "mlp_256x4_digits")


def get_config() -> ml_collections.ConfigDict:
  config = evaluate.get_config()
  suite = evaluate.suite()
  config.tasks = ml_collections.ConfigDict({label: suite[label] for label in LABELS})
  config.long_horizon = None
  config.num_seeds = 10
  config.learning_rates = (0.003, 0.01)
  config.optimizers = ("pretrained", "optax:adam")
  return config
