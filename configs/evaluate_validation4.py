"""Fourth validation suite: 12 tasks written down for the fifteenth session's choice.

  python -m meta_train.evaluate --config=configs/evaluate_validation4.py --workdir=DIR \
      "--config.optimizers=('checkpoint:DIR_A','checkpoint:DIR_B','optax:adam')"

The 35 tasks of configs/evaluate_family.py, configs/evaluate_validation.py and
configs/evaluate_validation2.py chose several settings in turn, and
configs/evaluate_validation3.py checked the last of them, so none is independent of
the shipped setting any more. This suite is for the next choice: tasks of the
evaluation suite's kinds, weighted toward the deep and tabular MLPs and ConvNets
whose speedups sit near the evaluation suite's median, with other sizes, depths,
activations, batch sizes and data seeds than any other suite, written down before
any optimizer ran on them. Computed as configs/evaluate.py.
"""

import ml_collections

from configs import evaluate


def suite() -> dict:
  """label -> dict(name=registered task, kwargs=overrides, steps=optional)."""
  return {
      "mlp_160x4_digits": dict(name="digits_mlp", kwargs=dict(hidden=(160,) * 4, seed=6)),
      "mlp_64x3_tanh_digits": dict(name="digits_mlp",
                                   kwargs=dict(hidden=(64,) * 3, activation="tanh",
                                               batch_size=64, seed=7)),
      "mlp_112x3_relu_mnist1d": dict(name="mnist1d_mlp",
                                     kwargs=dict(hidden=(112,) * 3, batch_size=64),
                                     steps=1500),
      "mlp_breast_cancer_48x2": dict(name="breast_cancer_mlp",
                                     kwargs=dict(hidden=(48, 48), seed=6)),
      "mlp_wine_2layer": dict(name="wine_mlp", kwargs=dict(hidden=(32, 32), seed=6)),
      "mlp_iris_wide": dict(name="iris_mlp", kwargs=dict(hidden=(64,), seed=6)),
      "convnet_20x40_digits": dict(name="digits_convnet",
                                   kwargs=dict(channels=(20, 40), seed=6)),
      "convnet1d_wide_mnist1d": dict(name="mnist1d_convnet",
                                     kwargs=dict(channels=(24, 48, 48)), steps=800),
      "transformer_lm_2layer_d40": dict(name="text_transformer",
                                        kwargs=dict(d_model=40, num_heads=4, num_layers=2,
                                                    seq_len=40, seed=6)),
      "autoencoder_80_digits": dict(name="digits_autoencoder",
                                    kwargs=dict(hidden=(80,), latent=10, seed=6),
                                    steps=1500),
      "logistic_regression_48d": dict(name="logistic_regression",
                                      kwargs=dict(num_features=48, log10_condition=1.5,
                                                  seed=6)),
      "quadratic_48d_noisy": dict(name="quadratic",
                                  kwargs=dict(dim=48, log10_condition=2.0, noise_scale=0.3,
                                              seed=6)),
  }


def get_config() -> ml_collections.ConfigDict:
  return evaluate.held_out_config(suite())
