"""Second validation suite: 14 more tasks for choosing settings, none of the test suite's.

  python -m meta_train.evaluate --config=configs/evaluate_validation2.py --workdir=DIR \
      "--config.optimizers=('checkpoint:DIR_A','checkpoint:DIR_B','optax:adam')"

configs/evaluate_validation.py's 9 tasks and the 12 family draws of
configs/evaluate_family.py tied four step-size-controller settings at 17 of 21.
This suite adds resolution, weighted toward the kinds where those settings
differ: minibatch-noisy tasks (language models, autoencoders, regressions) and
deep MLPs, which can stall on plateaus, plus a noise-free quadratic. Its tasks were
written down before any optimizer was run on them, with other sizes, depths,
activations and data seeds than either other suite. Tuned Adam, the fraction
of tasks at or below it and the speedups are computed as in configs/evaluate.py.
"""

import ml_collections

from configs import evaluate


def suite() -> dict:
  """label -> dict(name=registered task, kwargs=overrides, steps=optional)."""
  return {
      "mlp_96x3_mnist1d": dict(name="mnist1d_mlp", kwargs=dict(hidden=(96,) * 3),
                               steps=1500),
      "mlp_128x5_digits": dict(name="digits_mlp", kwargs=dict(hidden=(128,) * 5, seed=2)),
      "mlp_48x4_tanh_digits": dict(name="digits_mlp",
                                   kwargs=dict(hidden=(48,) * 4, activation="tanh", seed=3)),
      "convnet_wide_digits": dict(name="digits_convnet",
                                  kwargs=dict(channels=(24, 48), seed=2)),
      "convnet1d_deep_mnist1d": dict(name="mnist1d_convnet",
                                     kwargs=dict(channels=(16, 16, 32, 32)), steps=800),
      "transformer_lm_3layer": dict(name="text_transformer",
                                    kwargs=dict(num_layers=3, seed=2)),
      "transformer_lm_wide": dict(name="text_transformer",
                                  kwargs=dict(d_model=64, num_heads=4, num_layers=1,
                                              seq_len=24, seed=3)),
      "autoencoder_deep_digits": dict(name="digits_autoencoder",
                                      kwargs=dict(hidden=(64, 32), latent=8, seed=2),
                                      steps=1500),
      "autoencoder_narrow_digits": dict(name="digits_autoencoder",
                                        kwargs=dict(hidden=(16,), latent=4, seed=3),
                                        steps=2000),
      "regression_diabetes_wide": dict(name="diabetes_mlp",
                                       kwargs=dict(hidden=(64,), seed=2), steps=2000),
      "linear_regression_64d": dict(name="linear_regression",
                                    kwargs=dict(num_features=64, log10_condition=1.5,
                                                noise=0.3, seed=2)),
      "logistic_regression_cond300": dict(name="logistic_regression",
                                          kwargs=dict(num_features=32,
                                                      log10_condition=2.5, seed=2)),
      # Noise-free, so the loss is bounded below by 0.
      "quadratic_16d_cond100": dict(name="quadratic",
                                    kwargs=dict(dim=16, log10_condition=2.0,
                                                noise_scale=0.0, seed=2)),
      "mlp_breast_cancer_2layer": dict(name="breast_cancer_mlp",
                                       kwargs=dict(hidden=(64, 64), seed=2)),
  }


def get_config() -> ml_collections.ConfigDict:
  return evaluate.held_out_config(suite())
