"""configs/meta_train.py on a mixture: image MLPs and noisy quadratics.

  python -m meta_train.train --config=configs/meta_train_mixture.py --workdir=DIR

Three quarters of the structures are the image MLPs of configs/meta_train.py,
one quarter noisy quadratics (dimension 8-48, condition number 1-1e4, gradient
noise 0-0.5). Override a member's setting with e.g.
`--config.family.members.quadratic.share=2`. The evaluation suite's quadratic is
64-dimensional and noise-free, outside this range.
"""

import ml_collections

from configs import meta_train


def get_config() -> ml_collections.ConfigDict:
  config = meta_train.get_config()
  image = config.family.to_dict()
  config.family = ml_collections.ConfigDict(dict(name="mixture", members=dict(
      image=dict(image, share=3.0),
      quadratic=dict(name="quadratic", dims=(8, 48), batch_sizes=(8,),
                     log10_conditions=(0.0, 4.0), noise_scales=(0.0, 0.5), share=1.0))))
  config.num_structures = 8
  return config
