"""Evaluation of imitation: per rule, teacher-forced and closed loop, and the rule's own spread.

  python -m meta_train.evaluate_imitation --config=configs/evaluate_imitation.py \
      --workdir=DIR [--checkpoint=CKPT] [--config.seeds='(0, 1, 2)']

Variants: '' (the six rules of configs/imitate.py), 'all_rules' (12 rules x 5
networks x 3 seeds, every cell with the rule's own spread) and 'recipe' (Adam, Muon
and the hypergradient rule, as configs/pretrained.py imitates them, on the same cells).

Imitation trains on image MLPs of width 16-64 and depth 1-2; the networks here
include 4x wider and 2x deeper MLPs, a ConvNet, a Transformer, and 10x the steps.
The floor options measure how far each rule's own final loss moves when its
learning rate moves by `floor_factors` (see meta_train/evaluate_imitation.py).
"""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """The six imitated rules (''), all 12 rules on 5 networks ('all_rules') or the
  recipe's imitation stage's three rules on them ('recipe')."""
  config = _default()
  if variant in ("all_rules", "recipe"):
    _all_rules(config)
  if variant == "recipe":
    _recipe(config)
  elif variant not in ("", "all_rules"):
    raise ValueError(f"Unknown imitation evaluation variant {variant!r}; known: '', "
                     "'all_rules' and 'recipe'.")
  return config


def _recipe(config: ml_collections.ConfigDict) -> None:
  """The rules configs/pretrained.py's imitation stage imitates: Adam, Muon and the
  hypergradient rule on Adam (its rate at the shipped default's), 5 networks x 3 seeds."""
  rules = config.rules.to_dict()
  config.rules = {"adam": rules["adam"], "muon": rules["muon"],
                  "hypergradient": dict(learning_rate=1e-3, hypergradient_lr=1e-2)}
  config.floor_rules = tuple(config.rules)


def _all_rules(config: ml_collections.ConfigDict) -> None:
  """Every rule of the executor's embedding (configs/imitate.py:all_rules) on 5 networks
  x 3 seeds = 180 cells, each with the rule's own spread at a 0.1% learning-rate change:
  a cell passes when the gap is within max(5%, that spread)."""
  config.seeds = (0, 1, 2)
  config.rules = dict(config.rules.to_dict(), **{
      "adamw": dict(learning_rate=1e-3, weight_decay=1e-2),
      "nadam": dict(learning_rate=1e-3),
      "adabelief": dict(learning_rate=1e-3),
      "adagrad": dict(learning_rate=3e-2),
      "lars": dict(learning_rate=0.1, momentum=0.9),
      "muon": dict(learning_rate=2e-2),
  })
  del config.networks["10x steps"]
  config.floor_factors = (1.001,)
  config.floor_rules = tuple(config.rules)
  config.floor_networks = tuple(config.networks)


def _default() -> ml_collections.ConfigDict:
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
