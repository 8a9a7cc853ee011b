"""Seventh validation suite: 12 tasks written down after the fifteenth session's last choice.

  python -m meta_train.evaluate --config=configs/evaluate_validation7.py --workdir=DIR \
      "--config.optimizers=('checkpoint:DIR_A','checkpoint:DIR_B','optax:adam')"

configs/evaluate_validation6.py chose the vector momentum and validation5 guarded it.
This suite is a fresh check of that choice: tasks of the evaluation suite's kinds, with
other sizes, depths, activations, batch sizes and data seeds than any other suite,
written down before any optimizer ran on them. Computed as configs/evaluate.py.
"""

import ml_collections

from configs import evaluate


def suite() -> dict:
  """label -> dict(name=registered task, kwargs=overrides, steps=optional)."""
  return {
      "mlp_112x4_gelu_digits": dict(name="digits_mlp",
                                    kwargs=dict(hidden=(112,) * 4, activation="gelu",
                                                seed=12)),
      "mlp_32x6_relu_digits": dict(name="digits_mlp", kwargs=dict(hidden=(32,) * 6, seed=13)),
      "mlp_160x2_relu_mnist1d": dict(name="mnist1d_mlp",
                                     kwargs=dict(hidden=(160, 160), batch_size=64),
                                     steps=1500),
      "mlp_wine_3layer": dict(name="wine_mlp", kwargs=dict(hidden=(24, 24, 24), seed=12)),
      "mlp_breast_cancer_96x2": dict(name="breast_cancer_mlp",
                                     kwargs=dict(hidden=(96, 96), seed=12)),
      "convnet_32x32_digits": dict(name="digits_convnet",
                                   kwargs=dict(channels=(32, 32), seed=12)),
      "convnet1d_16x16x32_mnist1d": dict(name="mnist1d_convnet",
                                         kwargs=dict(channels=(16, 16, 32), batch_size=32),
                                         steps=800),
      "transformer_lm_1layer_d40_seq40": dict(name="text_transformer",
                                              kwargs=dict(d_model=40, num_heads=4,
                                                          num_layers=1, seq_len=40,
                                                          seed=12)),
      "autoencoder_128_digits": dict(name="digits_autoencoder",
                                     kwargs=dict(hidden=(128,), latent=12, seed=12),
                                     steps=1500),
      "logistic_regression_40d_cond100": dict(name="logistic_regression",
                                              kwargs=dict(num_features=40,
                                                          log10_condition=2.0, seed=12)),
      "linear_regression_24d_noisy": dict(name="linear_regression",
                                          kwargs=dict(num_features=24, log10_condition=1.0,
                                                      noise=0.5, seed=12)),
      # Noise-free, so the loss is bounded below by 0.
      "quadratic_56d_cond100": dict(name="quadratic",
                                    kwargs=dict(dim=56, log10_condition=2.0,
                                                noise_scale=0.0, seed=12)),
  }


def get_config() -> ml_collections.ConfigDict:
  return evaluate.held_out_config(suite())
