"""Held-out draws from the meta-training distribution, evaluated like configs/evaluate.py.

  python -m meta_train.evaluate --config=configs/evaluate_family.py --workdir=DIR \
      "--config.optimizers=('checkpoint:DIR_A','checkpoint:DIR_B','optax:adam')"

The tasks are 12 tasks of the family the shipped `pretrained()` was
meta-trained on (configs/meta_train_mixture.py with image MLPs 32-256 wide and
1-4 deep and 2000-step episodes, as its command in results/meta_train/README.md
sets), each drawn with its own seed from 1000 on,
away from the seeds meta-training draws from (its structures come from
PRNGKey(config.seed = 0) and its populations from keys split off it). Each
trains for one meta-training episode (truncation_length x num_truncations).

This is the suite for choosing between candidate optimizers (settings,
checkpoints) without looking at configs/evaluate.py's tasks, which stay a test
set: tuned Adam, the fraction of tasks at or below it and the speedups are
computed the same way.
"""

import ml_collections

from configs import evaluate, meta_train_mixture


def get_config() -> ml_collections.ConfigDict:
  config = evaluate.get_config()
  training = meta_train_mixture.get_config()
  training.num_truncations = 100   # the shipped run's episodes: 2000 steps
  config.optimizers = ("pretrained", "optax:adam")
  num_draws, first_seed = 12, 1000
  config.steps = int(training.truncation_length * training.num_truncations)
  family = training.family.to_dict()
  family["members"]["image"].update(widths=(32, 256), depths=(1, 4))
  config.tasks = ml_collections.ConfigDict({
      f"draw_{seed}": dict(name="family_sample", kwargs=dict(family=family, seed=seed))
      for seed in range(first_seed, first_seed + num_draws)})
  config.long_horizon = None
  return config
