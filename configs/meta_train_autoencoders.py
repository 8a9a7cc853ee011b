"""configs/meta_train_mixture.py plus image autoencoders.

  python -m meta_train.train --config=configs/meta_train_autoencoders.py --workdir=DIR

The mixture's image MLPs (share 3) and noisy quadratics (share 1), and MLP
autoencoders on the same images (share 2: `tasks.families.ImageAutoencoderFamily`,
widths 16-128, 1-2 hidden layers a side, bottleneck 4-16), where the learned
optimizer's step-size controller reads edge-of-stability oscillation as overshoot
(results/meta_train/experiments/README.md). The evaluation suites' autoencoders
(digits 64-32-8-32-64 and the validation ones) stay held out: their exact shapes
may be drawn, their data seeds and runs are not the meta-training ones.
"""

import ml_collections

from configs import meta_train_mixture


def get_config() -> ml_collections.ConfigDict:
  config = meta_train_mixture.get_config()
  members = config.family.members.to_dict()
  members["autoencoder"] = dict(name="image_autoencoder", datasets=("digits", "mnist1d"),
                                widths=(16, 128), depths=(1, 2), latents=(4, 16),
                                activations=("relu", "gelu", "tanh"), batch_sizes=(64, 128),
                                share=2.0)
  config.family = ml_collections.ConfigDict(dict(name="mixture", members=members))
  return config
