"""Evaluation of imitation (issue: executor): per rule, teacher-forced and closed loop.

  python -m meta_train.evaluate_imitation --config=configs/evaluate_imitation.py \
      --workdir=DIR [--checkpoint=CKPT]

Imitation trains on image MLPs of width 16-64 and depth 1-2; the networks here
include 4x wider and 2x deeper MLPs, a ConvNet, a Transformer, and 10x the steps.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.steps = 1000
  config.teacher_forced_steps = 200
  config.base_task = dict(name="digits_mlp", kwargs=dict(hidden=(32,)))
  config.rules = {
      "adam": dict(learning_rate=1e-3),
      "sgd": dict(learning_rate=0.05, momentum=0.9),
      "adafactor": dict(learning_rate=1e-2, min_dim_size_to_factor=16),
      "lamb": dict(learning_rate=3e-3, weight_decay=1e-3),
      "rmsprop": dict(learning_rate=1e-3, decay=0.95),
      "lion": dict(learning_rate=1e-4),
  }
  config.networks = {
      "mlp 64-32-10": dict(name="digits_mlp", kwargs=dict(hidden=(32,))),
      "4x wider (256)": dict(name="digits_mlp", kwargs=dict(hidden=(256,))),
      "2x deeper (4x32)": dict(name="digits_mlp", kwargs=dict(hidden=(32, 32, 32, 32))),
      "convnet": dict(name="digits_convnet", kwargs={}),
      "transformer": dict(name="text_transformer", kwargs={}),
      "10x steps": dict(name="digits_mlp", kwargs=dict(hidden=(32,)), steps=10000),
  }
  return config
