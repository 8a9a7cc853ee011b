"""Evaluation suite: the shipped learned optimizer against learning-rate-tuned Adam.

  python -m meta_train.evaluate --config=configs/evaluate.py --workdir=DIR

"pretrained" means `learned_opt.pretrained()`, the best optimizer shipped with
this install, used with no tuning; "optax:adam" is swept over
`learning_rates` and the best rate per task ("tuned Adam") is the reference.
Compare another optimizer with e.g.
`--config.optimizers='("pretrained:executor:adam:1e-3", "checkpoint:/path", "optax:adam")'`.

The shipped optimizer's meta-training saw image MLPs (digits / MNIST-1D, widths
16-128, depths 1-3). Every suite task lies outside that: wider and deeper MLPs, ConvNets, a
Transformer LM, an autoencoder, regressions, a quadratic, tabular data, and
TFDS image tasks (run only when their data is prepared; otherwise listed as
skipped). The long-horizon entry trains a meta-training-like network for 10x
the meta-training episode length (truncation_length x num_truncations of
configs/meta_train.py; `meta_train_horizon`, 200 without that file) and must
stay finite and keep improving. The default run takes roughly 10 minutes on
2 CPU cores (TFDS tasks add to that when present).
"""

import ml_collections

LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def suite() -> dict:
  """label -> dict(name=registered task, kwargs=overrides, steps=optional)."""
  return {
      "mlp_256x4_digits": dict(name="digits_mlp", kwargs=dict(hidden=(256,) * 4)),
      "mlp_128x3_gelu_mnist1d": dict(name="mnist1d_mlp",
                                     kwargs=dict(hidden=(128,) * 3, activation="gelu"),
                                     steps=2000),
      "mlp_32x8_tanh_digits": dict(name="digits_mlp",
                                   kwargs=dict(hidden=(32,) * 8, activation="tanh")),
      "convnet_digits": dict(name="digits_convnet"),
      "convnet1d_mnist1d": dict(name="mnist1d_convnet", steps=800),
      "transformer_lm_text": dict(name="text_transformer"),
      "autoencoder_digits": dict(name="digits_autoencoder", steps=2000),
      "regression_diabetes": dict(name="diabetes_mlp", steps=2000),
      "linear_regression_cond100": dict(name="linear_regression",
                                        kwargs=dict(log10_condition=2.0)),
      "logistic_regression": dict(name="logistic_regression"),
      # Noise-free, so the training loss is >= 0 (log plots) and exact.
      "quadratic_64d_cond1000": dict(name="quadratic",
                                     kwargs=dict(dim=64, log10_condition=3.0,
                                                 noise_scale=0.0)),
      "mlp_breast_cancer": dict(name="breast_cancer_mlp"),
      "mlp_wine": dict(name="wine_mlp"),
      # TFDS: evaluated when the data is prepared, skipped with the reason otherwise.
      "mlp_mnist": dict(name="mnist_mlp"),
      "mlp_fashion_mnist": dict(name="fashion_mnist_mlp"),
      "mlp_cifar10_8x8": dict(name="cifar10_8x8_mlp"),
  }


def meta_train_horizon(default: int = 200) -> int:
  """Inner steps of one meta-training episode, read from configs/meta_train.py.

  That is `truncation_length * num_truncations` (the longest run the learned
  optimizer sees while meta-training); `default` when the config is absent.
  """
  try:
    from configs import meta_train  # pylint: disable=import-outside-toplevel
  except ImportError:
    return default
  config = meta_train.get_config()
  if "truncation_length" in config and "num_truncations" in config:
    return int(config.truncation_length * config.num_truncations)
  return default


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 3
  config.steps = 1000                     # default per task; entries may set `steps`
  config.optimizers = ("pretrained", "optax:adam")
  config.baseline = "optax:adam"          # tuned over the sweep: the reference
  config.learning_rates = LEARNING_RATES  # sweep for every "optax:NAME" spec
  config.tasks = suite()
  # Long horizon: 10x the meta-training episode length (configs/meta_train.py).
  config.meta_train_horizon = meta_train_horizon()
  config.long_horizon = ml_collections.ConfigDict(dict(
      label="long_horizon_mlp_32x2_mnist1d", name="mnist1d_mlp",
      kwargs=dict(hidden=(32, 32)),
      steps=config.get_ref("meta_train_horizon") * 10))
  config.final_fraction = 0.05            # final loss = mean of the last 5% of steps
  config.log_points = 100                 # curve points per run (steps-to-target resolution)
  config.divergence_factor = 10.0         # final loss above this x initial loss: diverged
  config.eval_batches = 20                # valid/test loss over at most this many batches
  return config


def held_out_config(tasks: dict) -> ml_collections.ConfigDict:
  """This protocol on another task list, without the long-horizon run (the
  validation suites: configs/evaluate_validation*.py)."""
  config = get_config()
  config.tasks = tasks
  config.long_horizon = None
  return config
