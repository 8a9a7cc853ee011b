"""The recipe of the shipped default optimizer (meta_train.recipe): every stage, end to end.

  python -m meta_train.recipe --config=configs/pretrained.py --workdir=DIR
  python -m meta_train.ship --checkpoint=DIR/meta_train/checkpoints --name=meta_executor

Stages run in `stage_order`, each in DIR/<stage> and each resuming from its own
checkpoints; a stage's `init_from='stage:NAME'` reads the stage NAME's last checkpoint.

  imitate     from the shipped 12-rule `executor` (results/imitate/all_rules): appends
              the hypergradient rule (Baydin et al. 2018 on Adam; its embedding row starts
              as Adam's, its rate `hypergradient_lr` enters as a new keyword slot) and the
              learned controller (learned_opt.executor.controller), sets nothing by hand
              (the shipped executor's per-rule pins are dropped: HandSet()), and imitates
              Adam, Muon and the hypergradient rule.
  meta_train  from that imitation, conditioned on the hypergradient rule: PES on the
              validation loss, log-normalized per task (a quadratic's 1e-12 and a
              language model's 1.9 weigh alike), over 8 task structures drawn from image
              MLPs, residual MLPs, MLP autoencoders, noisy quadratics, patch
              Transformers and LSTM/GRU language models, with episodes of 500 to 5000
              steps, and the imitation of that rule as a regularizer.

Variants (names joined by commas apply in order): 'smoke', the same stages at toy size
(seconds of work; used by the tests); 'short', the ablation table's budget (SHORT_BUDGET); and
the ablations, each the recipe with one thing taken away at the same imitation and
meta-training budgets:

  no_controller  the executor without the learned controller (the hypergradient rule is
                 still imitated, as well as the executor can without it);
  scratch        no imitation: meta-training alone, from fresh weights of the same
                 architecture (random hidden layers, output layers at zero, biases
                 Adam's: `network.prior_hyper`);
  no_multi_hop   the 'row_column' processor (no rounds: Muon is not imitated, and the
                 mix and momentum-shift outputs of the controller have nothing to act on).

and one that adds: cross_layer, the controller with cross-layer messages along the
ParamGraph's wiring (ExecutorConfig.controller_messages).
"""

import ml_collections

from configs import imitate as imitate_configs
from configs import meta_train as meta_train_configs

# The rule the shipped default is conditioned on (what learned_opt.pretrained() runs).
# Its initial step size: the tuned Adam and Muon rates of validation8's tasks lie at 1e-2
# to 3e-2 (results/pretrained/README.md); the controller adapts it per tensor from there.
DEFAULT_RULE = {"algorithm": "hypergradient", "learning_rate": 1e-2, "hypergradient_lr": 1e-2}
HYPERGRADIENT_RANGES = {"learning_rate": ("log", 1e-4, 1e-2),
                        "hypergradient_lr": ("log", 1e-3, 3e-2)}


def _imitate() -> ml_collections.ConfigDict:
  config = imitate_configs.get_config("all_rules")
  config.init_from = "shipped:executor"
  base = config.executor.to_dict()
  base.update(normalizer="scaled", clock_slopes=("node",), size_features=False,
              rules=_rules(),
              extra_keywords=("adam_b1", "adam_b2", "adam_eps_root", "adam_weight_decay",
                              "hypergradient_lr"),
              controller_hidden=8)
  config.executor = ml_collections.ConfigDict(base)
  config.hand_set = ml_collections.ConfigDict({})   # nothing set by hand
  rules = imitate_configs.all_rule_ranges()
  rules["adam"]["b2"] = ("log1m", 0.95, 0.9995)   # as the shipped executor was imitated
  rules["hypergradient"] = dict(HYPERGRADIENT_RANGES)
  config.rules = rules
  config.new_rule_rows = {"hypergradient": "adam"}
  config.stages = ((0, ("adam", "muon", "hypergradient")),)
  config.standardize_decay_features = True
  config.warmup_gradient = True
  config.num_structures = 2
  config.family.batch_sizes = (32, 64, 128)
  config.warmup_choices = (0, 160)
  config.round_offset_weight = 10.0
  config.learning_rate = 3e-4
  config.num_steps = 600
  config.log_every = 25
  config.checkpoint_every = 50
  return config


def _rules() -> tuple[str, ...]:
  from learned_opt.executor import ExecutorConfig  # pylint: disable=import-outside-toplevel
  return ExecutorConfig.rules + ("hypergradient",)


def _meta_train() -> ml_collections.ConfigDict:
  config = meta_train_configs.get_config("autoencoders")
  config.init_from = "stage:imitate"
  config.rule = dict(DEFAULT_RULE)
  members = config.family.members.to_dict()
  members["residual"] = dict(name="residual_mlp", datasets=("digits", "mnist1d"),
                             widths=(16, 64), depths=(2, 4), activations=("relu", "gelu"),
                             batch_sizes=(64, 128), share=2.0)
  members["transformer"] = dict(name="patch_transformer", d_models=(16, 32),
                                num_heads=(1, 2), num_layers=(1, 2), batch_sizes=(32, 64),
                                share=1.0)
  members["recurrent"] = dict(name="recurrent_lm", embed_dims=(8, 32), hidden_sizes=(16, 64),
                              seq_lens=(16,), batch_sizes=(8, 16), share=1.0)
  config.family = ml_collections.ConfigDict(dict(name="mixture", members=members))
  config.num_structures = 8
  config.episode_truncations = (25, 100, 50, 250)   # episodes of 500, 2000, 1000, 5000 steps
  config.objective = "valid"
  config.loss_scale = "log_mean"
  config.imitation_weight = 0.3
  config.num_steps = 3000
  config.checkpoint_every = 50
  config.log_every = 10
  return config


def _smoke(config: ml_collections.ConfigDict) -> None:
  imitate = config.imitate
  imitate.init_from = ""
  imitate.executor = ml_collections.ConfigDict(dict(
      embed_dim=4, hidden=8, edge_hidden=2, processor="row_column", layer_readout=True,
      normalizer="exp", clock_slopes=(), size_features=True, controller_hidden=2,
      rules=("adam", "hypergradient"), extra_keywords=("hypergradient_lr",)))
  imitate.rules = {"adam": imitate_configs.rule_ranges()["adam"],
                   "hypergradient": dict(HYPERGRADIENT_RANGES)}
  imitate.stages = ()
  imitate.standardize_decay_features = False
  imitate.ns_hint_weight = 0.0
  imitate.round_offset_weight = 0.0
  imitate.family.widths = (8, 8)
  imitate.family.depths = (1, 1)
  imitate.family.datasets = ("digits",)
  imitate.family.batch_sizes = (16,)
  imitate.num_structures = 1
  imitate.batch_size = 2
  imitate.unroll = 3
  imitate.warmup_choices = (0,)
  imitate.num_steps = 2
  imitate.log_every = 1
  imitate.checkpoint_every = 1
  meta = config.meta_train
  meta_train_configs.VARIANTS["smoke"](meta)
  meta.family = ml_collections.ConfigDict(dict(
      name="image_mlp", datasets=("digits",), widths=(8, 8), depths=(1, 1),
      activations=("relu",), batch_sizes=(16,), layer_norm=(False,)))
  meta.num_truncations = 3
  meta.num_steps = 4
  meta.imitation_weight = 0.3


def _no_controller(config: ml_collections.ConfigDict) -> None:
  config.imitate.executor.controller_hidden = 0


def _scratch(config: ml_collections.ConfigDict) -> None:
  config.stage_order = ("meta_train",)
  config.meta_train.init_from = ""
  config.meta_train.executor = ml_collections.ConfigDict(config.imitate.executor.to_dict())


def _no_multi_hop(config: ml_collections.ConfigDict) -> None:
  config.imitate.executor.processor = "row_column"
  config.imitate.stages = ((0, ("adam", "hypergradient")),)
  config.imitate.ns_hint_weight = 0.0
  config.imitate.round_offset_weight = 0.0


def _cross_layer(config: ml_collections.ConfigDict) -> None:
  config.imitate.executor.controller_messages = True


# The ablation table's budget (the `short` modifier): a third of the recipe's imitation
# and meta-training steps, so that every row fits in about 20 minutes of 2 CPU cores.
SHORT_BUDGET = {"imitate": 200, "meta_train": 1000}


def _short(config: ml_collections.ConfigDict) -> None:
  config.imitate.num_steps = SHORT_BUDGET["imitate"]
  config.meta_train.num_steps = SHORT_BUDGET["meta_train"]


VARIANTS = {"": lambda config: None, "smoke": _smoke,
            "no_controller": _no_controller, "scratch": _scratch,
            "no_multi_hop": _no_multi_hop, "cross_layer": _cross_layer, "short": _short}


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """The recipe (''), its toy-sized twin ('smoke') or ablations (VARIANTS).

  Args:
    variant: names from VARIANTS joined by commas, applied in order; for example
      'short,no_controller' is the no-controller ablation at the ablation table's budget.

  Returns:
    The recipe config.
  """
  names = [name for name in variant.split(",") if name] if variant else [""]
  unknown = [name for name in names if name not in VARIANTS]
  if unknown:
    raise ValueError(f"Unknown recipe config variant(s) {unknown} in {variant!r}; known: "
                     f"{sorted(VARIANTS)} ('' is the recipe; join several with commas, "
                     "e.g. 'short,no_controller').")
  config = ml_collections.ConfigDict()
  config.stage_order = ("imitate", "meta_train")
  config.imitate = _imitate()
  config.meta_train = _meta_train()
  config.stage_kinds = {"imitate": "imitate", "meta_train": "meta_train"}
  for name in names:
    VARIANTS[name](config)
  return config
