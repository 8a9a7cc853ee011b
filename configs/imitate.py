"""Imitation of the classic rules by one executor (meta_train.imitate), and the
transfer experiment's arms (meta_train.transfer).

  python -m meta_train.imitate --config=configs/imitate.py --workdir=DIR
  python -m meta_train.transfer --config=configs/imitate.py:transfer --workdir=DIR

`config.executor` is the architecture (learned_opt.executor.ExecutorConfig) and
`config.hand_set` what is set by hand on it (learned_opt.executor.HandSet): both are
saved, apart, in every checkpoint. The shipped `executor` weights were made with this
config plus the architecture `--config.executor.normalizer=scaled
--config.executor.clock_slopes=('node',) --config.executor.size_features=False`, the
hand-set pins `--config.hand_set.rule_node_degree=True
--config.hand_set.rule_gain_slopes=True`, `--config.warmup_gradient=True
--config.standardize_decay_features=True`, the primitive hint
(`--config.primitive_hint_weight=1.0`, SGD and LARS exempt), Adam's b2 drawn ('log1m',
0.95, 0.9995), and four legs of learning rates, batch sizes and warm-ups; shipped with
Adafactor's clipping knot and second-moment schedule, whole-tensor readouts and Adam's
b2 set (`meta_train.ship --set=rule_clip_knots=True --set=rule_moment_decays=True
--set=readout_rows=0 "--set=rule_b2_decays=('adam',)"`, edit flags ship had until commit
e94e718): results/imitate/README.md.
This file's defaults leave those options off.

Variants: '' (the default), 'all_rules' (one executor for all 12 rules, Muon's rounds
on the 'multi_hop' processor with every Newton-Schulz iterate supervised) and
'transfer': does imitating SGD, momentum and
RMSProp first make Adam faster to learn than from scratch? Both arms start from the SGD
prior (the Adam prior would make the question moot) and count imitation steps on Adam
until its median update cosine reaches `cosine_threshold`.
"""

import ml_collections


def rule_ranges() -> dict:
  """optax keyword arguments sampled per rule, as (kind, lo, hi) or ('choice', seq)
  (kinds: 'log', 'uniform', 'log1m'; imitation.RuleSampler says what each draws)."""
  return {
      "sgd": {"learning_rate": ("log", 1e-2, 3e-1), "momentum": ("uniform", 0.0, 0.95)},
      "rmsprop": {"learning_rate": ("log", 1e-4, 1e-2), "decay": ("uniform", 0.85, 0.995)},
      "adam": {"learning_rate": ("log", 1e-4, 1e-2), "b1": ("uniform", 0.8, 0.95),
               "b2": ("uniform", 0.99, 0.9995)},
      "adafactor": {"learning_rate": ("log", 1e-3, 1e-1),
                    "min_dim_size_to_factor": ("choice", (16, 128))},
      "lamb": {"learning_rate": ("log", 1e-4, 1e-2), "b1": ("uniform", 0.8, 0.95),
               "weight_decay": ("log", 1e-4, 1e-1)},
      "lion": {"learning_rate": ("log", 1e-5, 1e-3), "b1": ("uniform", 0.85, 0.95),
               "b2": ("uniform", 0.95, 0.995)},
  }


def _default() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.executor = ml_collections.ConfigDict(dict(
      embed_dim=8, hidden=32, edge_hidden=4, processor="row_column", layer_readout=True,
      normalizer="exp", clock_slopes=(), size_features=True))
  config.hand_set = ml_collections.ConfigDict(dict(
      rule_node_degree=False, rule_gain_slopes=False, rule_clip_knots=False,
      rule_node_decays=False, rule_moment_decays=False, rule_b2_decays=(), readout_rows=64))
  # A checkpoint directory or "shipped:NAME" to start from ("" = fresh weights; a fresh
  # meta-optimizer state either way); modules it lacks (executor.learned_step_size's head) start
  # neutral. Ignored when the workdir has a checkpoint.
  config.init_from = ""
  config.rules = rule_ranges()
  # A curriculum: list of (start_step, rule names); empty = all rules from step 0.
  config.stages = ()
  config.default_rule = {"algorithm": "adam", "learning_rate": 1e-3}
  # Task structures: image MLPs on bundled data (offline).
  config.family = ml_collections.ConfigDict(dict(
      datasets=("digits", "mnist1d"), widths=(16, 64), depths=(1, 2),
      activations=("relu", "tanh", "gelu"), batch_sizes=(32, 64), layer_norm=(False,)))
  config.num_structures = 4
  config.unroll = 40            # inner steps per trajectory with a loss
  # Leading steps the executor runs along the trajectory without loss or gradient
  # (drawn per meta-step): the loss then also covers late clocks and warm state.
  config.warmup_choices = (0, 40, 160)
  # Backpropagate through the warm-up's state (imitation.trajectory_loss): supervises what
  # the state remembers over long runs (a second moment's decay, Adafactor's factored
  # moments). The shipped executor was trained with True (results/imitate/README.md).
  config.warmup_gradient = False
  # Standardize each rule's decay features over its sampling range above
  # (ExecutorConfig.decay_feature_stats); True for the shipped executor.
  config.standardize_decay_features = False
  config.magnitude_weight = 2.0  # weight of (log-norm ratio)^2 beside (1 - cosine)
  config.batch_size = 8         # trajectories per meta-step (vmapped)
  config.num_steps = 2000
  config.learning_rate = 3e-3
  config.clip_norm = 1.0
  config.hint_weight = 0.3
  # Weight of the preconditioner hint (imitation.PRECONDITIONER_HINTS: the RMS adafactor
  # divides by, against the executor's node states); 0 as the shipped executor was trained.
  config.preconditioner_hint_weight = 0.0
  # Weight of the denominator hint (imitation.denominator_shape_error: the executor's
  # denominator proportional to that RMS per tensor); 0 as the shipped executor was trained.
  config.denominator_hint_weight = 0.0
  # The denominator hint on its scale too (equal to that RMS, not only proportional).
  config.denominator_hint_scale = False
  # Weight of imitation.primitive_hint (each rule's denominator carried by the term its
  # algorithm divides by: imitation.DENOMINATOR_PRIMITIVES); 0 as the shipped executor
  # was trained.
  config.primitive_hint_weight = 0.0
  # Rules the primitive hint leaves out (e.g. ("sgd", "lars")). () hints every rule it names.
  config.primitive_hint_exempt = ()
  # Weight of imitation.clip_error (where the clipping knot sits against the direction, on
  # the rules with a preconditioner hint: adafactor); 0 as the shipped executor was trained.
  config.clip_hint_weight = 0.0
  # Weight of the round hints (imitation.round_hint_errors: every Newton-Schulz iterate of
  # the rules with rounds, with the 'multi_hop' processor); 0 as the shipped one was trained.
  config.ns_hint_weight = 0.0
  # Weight of imitation.round_offset_penalty (the learned round coefficients stay near
  # the rule's own); 0 as the shipped one was trained.
  config.round_offset_weight = 0.0
  # Weight of imitation.direction_readout_penalty (the layer gain reads RMS(d) only where
  # a rule needs it); 0 as the shipped executor was trained.
  config.direction_readout_penalty = 0.0
  # Rules the penalty leaves out: those that read the direction's RMS themselves
  # (lamb and lars: trust ratio; adafactor: update clipping). () penalizes every rule.
  config.readout_penalty_exempt = ()
  # Weight of imitation.normalizer_mixture_penalty (each rule's normalizer divides by one of
  # its three terms, not a blend); 0 as the shipped executor was trained.
  config.normalizer_mixture_penalty = 0.0
  # Rules the mixture penalty leaves out (e.g. ("adafactor",): its vectors and factored
  # matrices divide by different terms). () penalizes every rule.
  config.mixture_penalty_exempt = ()
  config.log_every = 25
  config.checkpoint_every = 100
  config.keep_checkpoints = 3
  return config


def _transfer(config: ml_collections.ConfigDict) -> None:
  config.executor.prior = "sgd"
  ranges = rule_ranges()
  config.rules = {k: ranges[k] for k in ("sgd", "rmsprop", "adam")}
  config.pretrain_steps = 300        # SGD (with and without momentum) and RMSProp only
  config.adam_steps = 400            # then Adam is added (both arms count these)
  config.cosine_threshold = 0.98
  config.num_structures = 2
  config.unroll = 20
  config.batch_size = 6
  config.log_every = 10
  config.checkpoint_every = 100


def all_rule_ranges() -> dict:
  """rule_ranges() and the other six rules of learned_opt.algorithms: every rule the
  executor's embedding has (Muon with its AdamW half's keywords)."""
  return dict(rule_ranges(), **{
      "adamw": {"learning_rate": ("log", 1e-4, 1e-2), "b1": ("uniform", 0.8, 0.95),
                "weight_decay": ("log", 1e-4, 1e-1)},
      "nadam": {"learning_rate": ("log", 1e-4, 1e-2), "b1": ("uniform", 0.8, 0.95)},
      "adabelief": {"learning_rate": ("log", 1e-4, 1e-2), "b1": ("uniform", 0.8, 0.95)},
      "adagrad": {"learning_rate": ("log", 1e-3, 1e-1)},
      "lars": {"learning_rate": ("log", 1e-2, 1e0), "momentum": ("uniform", 0.8, 0.95)},
      "muon": {"learning_rate": ("log", 3e-3, 1e-1), "beta": ("uniform", 0.85, 0.98),
               "nesterov": ("choice", (True, False)), "adam_b1": ("uniform", 0.8, 0.95)},
  })


def _all_rules(config: ml_collections.ConfigDict) -> None:
  """One executor for all 12 rules: the multi-hop processor runs Muon's rounds, which
  the round hints supervise."""
  config.executor.processor = "multi_hop"
  config.executor.extra_keywords = ("adam_b1", "adam_b2", "adam_eps_root",
                                    "adam_weight_decay")
  config.rules = all_rule_ranges()
  config.ns_hint_weight = 1.0


VARIANTS = ("", "transfer", "all_rules")


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """The default config (''), the transfer experiment's ('transfer') or one executor for
  every rule, Muon included ('all_rules')."""
  config = _default()
  if variant == "transfer":
    _transfer(config)
  elif variant == "all_rules":
    _all_rules(config)
  elif variant:
    raise ValueError(f"Unknown imitation config variant {variant!r}; known: "
                     f"{', '.join(repr(v) for v in VARIANTS)}.")
  return config
