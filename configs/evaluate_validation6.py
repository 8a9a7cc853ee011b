"""Sixth validation suite: 12 tasks written down for the fifteenth session's last round.

  python -m meta_train.evaluate --config=configs/evaluate_validation6.py --workdir=DIR \
      "--config.optimizers=('checkpoint:DIR_A','checkpoint:DIR_B','optax:adam')"

configs/evaluate_validation5.py checked the matrix momentum; this suite chooses the
next setting, with validation5 as its guard. Tasks of the evaluation suite's kinds,
with other sizes, depths, activations, batch sizes and data seeds than any other
suite, written down before any optimizer ran on them. Computed as configs/evaluate.py.
"""

import ml_collections

from configs import evaluate


def suite() -> dict:
  """label -> dict(name=registered task, kwargs=overrides, steps=optional)."""
  return {
      "mlp_144x3_digits": dict(name="digits_mlp", kwargs=dict(hidden=(144,) * 3, seed=10)),
      "mlp_56x5_tanh_digits": dict(name="digits_mlp",
                                   kwargs=dict(hidden=(56,) * 5, activation="tanh", seed=11)),
      "mlp_72x2_gelu_mnist1d": dict(name="mnist1d_mlp",
                                    kwargs=dict(hidden=(72, 72), activation="gelu",
                                                batch_size=256), steps=1500),
      "mlp_iris_2layer": dict(name="iris_mlp", kwargs=dict(hidden=(24, 24), seed=10)),
      "mlp_breast_cancer_wide": dict(name="breast_cancer_mlp",
                                     kwargs=dict(hidden=(128,), seed=10)),
      "convnet_16x16_digits": dict(name="digits_convnet",
                                   kwargs=dict(channels=(16, 16), seed=10)),
      "convnet1d_8x32_mnist1d": dict(name="mnist1d_convnet",
                                     kwargs=dict(channels=(8, 32)), steps=800),
      "transformer_lm_2layer_d32": dict(name="text_transformer",
                                        kwargs=dict(num_layers=2, seq_len=24, seed=10)),
      "autoencoder_40x20_digits": dict(name="digits_autoencoder",
                                       kwargs=dict(hidden=(40, 20), latent=6, seed=10),
                                       steps=1500),
      "linear_regression_48d_cond30": dict(name="linear_regression",
                                           kwargs=dict(num_features=48, log10_condition=1.5,
                                                       noise=0.05, seed=10)),
      "regression_diabetes_narrow": dict(name="diabetes_mlp",
                                         kwargs=dict(hidden=(16,), seed=10), steps=2000),
      # Noise-free, so the loss is bounded below by 0.
      "quadratic_40d_cond200": dict(name="quadratic",
                                    kwargs=dict(dim=40, log10_condition=2.3,
                                                noise_scale=0.0, seed=10)),
  }


def get_config() -> ml_collections.ConfigDict:
  return evaluate.held_out_config(suite())
