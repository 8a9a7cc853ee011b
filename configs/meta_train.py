"""Meta-training of the executor, conditioned on a rule, with PES (meta_train.train).

  python -m meta_train.train --config=configs/meta_train.py --workdir=DIR
  python -m meta_train.train --config=configs/meta_train.py:VARIANT --workdir=DIR

The default (no variant) runs on CPU: it starts from the shipped executor
(`init_from`), conditioned on Adam(3e-3), keeps its imitation loss on that rule as a
regularizer, and meta-trains with antithetic PES on the mean normalized training loss
of MLPs on bundled data (digits, MNIST-1D). Variants (VARIANTS) change only what they
name:

  smoke         a tiny run (under a minute on 2 CPU cores, 3 checkpoints).
  accel         GPU/TPU-sized numbers: wider MLPs, larger populations, longer episodes.
  mixture       three quarters of the structures image MLPs, one quarter noisy
                quadratics (dimension 8-48, condition number 1-1e4, gradient noise
                0-0.5). The evaluation suite's quadratic (64-dimensional, noise-free)
                lies outside this range. Override a member's setting with e.g.
                `--config.family.members.quadratic.share=2`.
  autoencoders  the mixture plus MLP autoencoders on the same images (share 2:
                `tasks.families.ImageAutoencoderFamily`, widths 16-128, 1-2 hidden
                layers a side, bottleneck 4-16). The evaluation suites' autoencoders stay
                held out: their shapes may be drawn, their data seeds and runs are not
                meta-training's.
  scratch       the default's budget, tasks, estimator and regularizer from fresh
                executor weights (random hidden layers, output layers at zero) whose
                biases are plain SGD (`prior="sgd"`): what the algorithmic prior adds.
"""

from typing import Callable

import ml_collections


def _default() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  # 'shipped:executor6', a checkpoint directory, or '' (fresh weights of `executor`).
  # The shipped executor fixes each rule's layer gain (HandSet.rule_gain_slopes;
  # Adam's reads neither RMS), so meta-training from it does not learn readout slopes;
  # an executor imitated with rule_gain_slopes=False does.
  config.init_from = "shipped:executor6"
  config.executor = ml_collections.ConfigDict(dict(
      embed_dim=8, hidden=32, edge_hidden=4, processor="row_column", layer_readout=True))
  # True | False | None (keep the starting checkpoint's): whether the layer gain reads the
  # direction's RMS (learned_opt.executor.readout.layer_log_gain).
  config.direction_readout = ml_collections.config_dict.placeholder(bool)
  # None | a number (0.0: the direction keeps Adam's degree 0 in the gradient), see
  # learned_opt.executor.HandSet.normalizer_degree (hand-set).
  config.normalizer_degree = ml_collections.config_dict.placeholder(float)
  # None | numbers: the per-tensor step-size integrator's rate and cosine target
  # (HandSet.step_size_adaptation / step_size_target, hand-set; 0.0 rate: off).
  config.step_size_adaptation = ml_collections.config_dict.placeholder(float)
  config.step_size_target = ml_collections.config_dict.placeholder(float)
  # None | True: the tensor net learns per-tensor offsets to that rate and target
  # (ExecutorConfig.learned_step_size; adds a zero-initialized head).
  config.learned_step_size = ml_collections.config_dict.placeholder(bool)
  # 'fused' (what learned_opt.load runs) | 'plain' (the unfused reference, slower).
  config.executor_form = "fused"
  # The conditioning: the rule the executor starts as (and learned_opt.load's default).
  config.rule = {"algorithm": "adam", "learning_rate": 3e-3}
  # Task structures: image MLPs on bundled data (offline); one population each.
  config.family = ml_collections.ConfigDict(dict(
      name="image_mlp", datasets=("digits", "mnist1d"), widths=(16, 128), depths=(1, 3),
      activations=("relu", "tanh", "gelu"), batch_sizes=(64, 128), layer_norm=(False,)))
  config.num_structures = 6
  config.population = 8           # tasks per structure (a multiple of the device count)
  # Estimator: 'pes' | 'tbptt' | 'es'; objective: 'train' | 'valid'.
  config.estimator = "pes"
  config.objective = "train"
  config.truncation_length = 20   # inner steps per segment
  config.num_truncations = 25     # episodes of 500 inner steps
  # () or segments per episode for each structure in turn (overrides num_truncations).
  config.episode_truncations = ()
  config.sigma = 0.01             # perturbation std (pes, es)
  config.max_normalized_loss = 2.0
  # 'linear' | 'log' | 'log_mean': the scale of the objective (meta_train.unroll).
  config.loss_scale = "linear"
  # Meta-optimizer: clipped Adam.
  config.num_steps = 6000
  config.learning_rate = 1e-4
  config.clip_norm = 1.0
  # Names of executor modules to meta-train (e.g. ('step_size_head',)); the others are
  # held exactly where init_from left them. () trains every module.
  config.trainable_modules = ()
  # Imitation of `rule` as a regularizer (weight 0 turns it off).
  config.imitation_weight = 0.3
  config.imitation = ml_collections.ConfigDict(dict(
      num_trajectories=2, unroll=20, hint_weight=0.3))
  config.log_every = 10
  config.checkpoint_every = 100
  config.keep_checkpoints = 3
  config.compiler_options = {}    # XLA compiler options of the jitted steps
  return config


def _smoke(config: ml_collections.ConfigDict) -> None:
  config.family.datasets = ("digits",)
  config.family.widths = (8, 8)
  config.family.depths = (1, 1)
  config.family.activations = ("relu",)
  config.family.batch_sizes = (16,)
  config.num_structures = 1
  config.population = 4
  config.truncation_length = 4
  config.num_truncations = 3
  config.num_steps = 6
  config.imitation.num_trajectories = 1
  config.imitation.unroll = 4
  config.log_every = 1
  config.checkpoint_every = 2
  # Compile time dominates a run this small: without LLVM's optimizations it compiles in
  # about half the time.
  config.compiler_options = {"xla_backend_optimization_level": 0}


def _accel(config: ml_collections.ConfigDict) -> None:
  config.family.widths = (32, 256)
  config.family.depths = (1, 3)
  config.family.batch_sizes = (128, 256)
  config.num_structures = 8
  config.population = 64
  config.truncation_length = 50
  config.num_truncations = 40      # episodes of 2000 inner steps
  config.num_steps = 20000
  config.imitation.num_trajectories = 8
  config.imitation.unroll = 50
  config.log_every = 20
  config.checkpoint_every = 200


def _mixture(config: ml_collections.ConfigDict) -> None:
  image = config.family.to_dict()
  config.family = ml_collections.ConfigDict(dict(name="mixture", members=dict(
      image=dict(image, share=3.0),
      quadratic=dict(name="quadratic", dims=(8, 48), batch_sizes=(8,),
                     log10_conditions=(0.0, 4.0), noise_scales=(0.0, 0.5), share=1.0))))
  config.num_structures = 8


def _autoencoders(config: ml_collections.ConfigDict) -> None:
  _mixture(config)
  members = config.family.members.to_dict()
  members["autoencoder"] = dict(name="image_autoencoder", datasets=("digits", "mnist1d"),
                                widths=(16, 128), depths=(1, 2), latents=(4, 16),
                                activations=("relu", "gelu", "tanh"), batch_sizes=(64, 128),
                                share=2.0)
  config.family = ml_collections.ConfigDict(dict(name="mixture", members=members))


def _scratch(config: ml_collections.ConfigDict) -> None:
  config.init_from = ""
  config.executor.prior = "sgd"


# Each variant edits the default config in place.
VARIANTS: dict[str, Callable[[ml_collections.ConfigDict], None]] = {
    "": lambda config: None,
    "smoke": _smoke,
    "accel": _accel,
    "mixture": _mixture,
    "autoencoders": _autoencoders,
    "scratch": _scratch,
}


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """The default config, edited by `variant` (a key of VARIANTS; '' for none)."""
  if variant not in VARIANTS:
    raise ValueError(f"Unknown meta-training config variant {variant!r}; known: "
                     f"{sorted(VARIANTS)} ('' is the default).")
  config = _default()
  VARIANTS[variant](config)
  return config
