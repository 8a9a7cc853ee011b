"""Fifth validation suite: 12 tasks written down after the fifteenth session's choice.

  python -m meta_train.evaluate --config=configs/evaluate_validation5.py --workdir=DIR \
      "--config.optimizers=('checkpoint:DIR_A','checkpoint:DIR_B','optax:adam')"

configs/evaluate_validation4.py and configs/evaluate_validation3.py chose and checked
the matrix momentum over three rounds, so neither is independent of it. This suite
is a fresh check of that choice: tasks of the evaluation suite's kinds, spread over
all of them, with other sizes, depths, activations, batch sizes and data seeds than
any other suite, written down before any optimizer ran on them. Computed as
configs/evaluate.py.
"""

import ml_collections

from configs import evaluate


def suite() -> dict:
  """label -> dict(name=registered task, kwargs=overrides, steps=optional)."""
  return {
      "mlp_96x5_relu_digits": dict(name="digits_mlp", kwargs=dict(hidden=(96,) * 5, seed=8)),
      "mlp_40x3_gelu_digits": dict(name="digits_mlp",
                                   kwargs=dict(hidden=(40,) * 3, activation="gelu", seed=9)),
      "mlp_80x4_tanh_mnist1d": dict(name="mnist1d_mlp",
                                    kwargs=dict(hidden=(80,) * 4, activation="tanh"),
                                    steps=1500),
      "mlp_wine_wide": dict(name="wine_mlp", kwargs=dict(hidden=(96,), seed=8)),
      "mlp_breast_cancer_3layer": dict(name="breast_cancer_mlp",
                                       kwargs=dict(hidden=(32, 32, 32), seed=8)),
      "convnet_8x16_digits": dict(name="digits_convnet",
                                  kwargs=dict(channels=(8, 16), batch_size=128, seed=8)),
      "convnet1d_12x24x24_mnist1d": dict(name="mnist1d_convnet",
                                         kwargs=dict(channels=(12, 24, 24), batch_size=128),
                                         steps=800),
      "transformer_lm_1layer_d56": dict(name="text_transformer",
                                        kwargs=dict(d_model=56, num_heads=4, num_layers=1,
                                                    seed=8)),
      "autoencoder_64x16_digits": dict(name="digits_autoencoder",
                                       kwargs=dict(hidden=(64,), latent=16, seed=8),
                                       steps=1500),
      "regression_diabetes_3layer": dict(name="diabetes_mlp",
                                         kwargs=dict(hidden=(48, 24, 12), seed=8),
                                         steps=2000),
      "logistic_regression_24d_cond30": dict(name="logistic_regression",
                                             kwargs=dict(num_features=24,
                                                         log10_condition=1.5, noise=0.2,
                                                         seed=8)),
      # Noise-free, so the loss is bounded below by 0.
      "quadratic_24d_cond50": dict(name="quadratic",
                                   kwargs=dict(dim=24, log10_condition=1.7,
                                               noise_scale=0.0, seed=8)),
  }


def get_config() -> ml_collections.ConfigDict:
  return evaluate.held_out_config(suite())
