"""Meta-training on CPU: the shipped executor, conditioned on Adam(3e-3), on image MLPs.

  python -m meta_train.train --config=configs/meta_train.py --workdir=DIR

Starts from the imitation executor (`init_from`), keeps its imitation loss on the
same rule as a regularizer, and meta-trains with antithetic PES on the mean
normalized training loss of MLPs on bundled data (digits, MNIST-1D).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  # 'shipped:executor', a checkpoint directory, or '' (fresh weights of `executor`).
  # The shipped executor (results/imitate/README.md) fixes each rule's layer gain
  # (ExecutorConfig.rule_gain_slopes: none for Adam), so meta-training from it cannot
  # learn readout slopes; results/imitate/experiments/imitate_wg4_weights learns them.
  config.init_from = "shipped:executor"
  config.executor = ml_collections.ConfigDict(dict(
      embed_dim=8, hidden=32, edge_hidden=4, node_messages=True, layer_readout=True))
  # True | False | None (keep the starting checkpoint's): whether the layer gain reads the
  # direction's RMS (learned_opt.executor.network.layer_log_gain).
  config.direction_readout = ml_collections.config_dict.placeholder(bool)
  # None | a number (0.0: the direction keeps Adam's degree 0 in the gradient), see
  # learned_opt.executor.network.ExecutorConfig.normalizer_degree.
  config.normalizer_degree = ml_collections.config_dict.placeholder(float)
  # None | numbers: the per-tensor step-size integrator's rate and cosine target
  # (ExecutorConfig.step_size_adaptation / step_size_target; 0.0 rate: off).
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
