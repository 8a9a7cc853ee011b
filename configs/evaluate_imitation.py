"""Evaluation of imitation: per rule, teacher-forced and closed loop, and the rule's own spread.

  python -m meta_train.evaluate_imitation --config=configs/evaluate_imitation.py \
      --workdir=DIR [--checkpoint=CKPT] [--config.seeds='(0, 1, 2)']

Imitation trains on image MLPs of width 16-64 and depth 1-2; the networks here
include 4x wider and 2x deeper MLPs, a ConvNet, a Transformer, and 10x the steps.
The floor options measure how far each rule's own final loss moves when its
learning rate moves by `floor_factors` (see meta_train/evaluate_imitation.py).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seeds = (0,)
  # The single-seed form: when set (--config.seed=N), it replaces `seeds` with (N,).
  config.seed = ml_collections.config_dict.placeholder(int)
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
  # The rule's own spread: each floor rule on each floor network also runs at these
  # factors x its learning rate; () skips it.
  config.floor_factors = (0.999, 1.001)
  config.floor_rules = ("adam", "sgd", "adafactor", "lamb")
  config.floor_networks = ("mlp 64-32-10", "4x wider (256)", "2x deeper (4x32)", "convnet")
  # A gap within this is imitation; a floor above it makes the cell chaotic.
  config.target = 0.05
  return config
