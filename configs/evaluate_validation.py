"""Validation suite: tasks of the evaluation suite's kinds, none of its tasks.

  python -m meta_train.evaluate --config=configs/evaluate_validation.py --workdir=DIR \
      "--config.optimizers=('checkpoint:DIR_A','checkpoint:DIR_B','optax:adam')"

configs/evaluate_family.py draws held-out tasks from the meta-training family:
memorizing image MLPs and quadratics. It cannot see what the evaluation suite's
noisy tasks (a language model, an autoencoder, minibatch regression) ask of a
step-size controller. This suite has tasks of those kinds with other
architectures, sizes, data or noise, so settings can be chosen on it and on
the family draws while configs/evaluate.py stays the test set. Tuned Adam,
the fraction of tasks at or below it and the speedups are computed as there.
"""

import ml_collections

from configs import evaluate


def suite() -> dict:
  """label -> dict(name=registered task, kwargs=overrides, steps=optional)."""
  return {
      "mlp_192x2_gelu_mnist1d": dict(name="mnist1d_mlp",
                                     kwargs=dict(hidden=(192,) * 2, activation="gelu"),
                                     steps=1500),
      "mlp_64x6_digits": dict(name="digits_mlp", kwargs=dict(hidden=(64,) * 6)),
      "convnet1d_small_mnist1d": dict(name="mnist1d_convnet",
                                      kwargs=dict(channels=(8, 16, 16), batch_size=128),
                                      steps=800),
      "transformer_lm_1layer": dict(name="text_transformer",
                                    kwargs=dict(d_model=48, num_heads=4, num_layers=1,
                                                seq_len=48, seed=1)),
      "autoencoder_wide_digits": dict(name="digits_autoencoder",
                                      kwargs=dict(hidden=(64,), latent=16), steps=1500),
      "linear_regression_noisy": dict(name="linear_regression",
                                      kwargs=dict(num_features=32, noise=0.5, seed=1)),
      "logistic_regression_64d": dict(name="logistic_regression",
                                      kwargs=dict(num_features=64, log10_condition=1.5,
                                                  seed=1)),
      "quadratic_32d_noisy": dict(name="quadratic",
                                  kwargs=dict(dim=32, log10_condition=2.0, noise_scale=0.1,
                                              seed=1)),
      "mlp_iris": dict(name="iris_mlp"),
  }


def get_config() -> ml_collections.ConfigDict:
  return evaluate.held_out_config(suite())
