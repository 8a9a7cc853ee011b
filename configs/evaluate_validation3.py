"""Third validation suite: 12 tasks written down after the fourteenth session's choice.

  python -m meta_train.evaluate --config=configs/evaluate_validation3.py --workdir=DIR \
      "--config.optimizers=('checkpoint:DIR_A','checkpoint:DIR_B','optax:adam')"

The 35 tasks of configs/evaluate_family.py, configs/evaluate_validation.py and
configs/evaluate_validation2.py have now chosen several step-size settings in turn,
so what they say about a setting is no longer independent of it. This suite is a
fresh check of a choice already made: tasks of the evaluation suite's kinds
(weighted toward the minibatch-noisy ones and deep MLPs, where the settings
differ), with other sizes, depths, activations and data seeds than any other suite,
written down before any optimizer ran on them. Computed as configs/evaluate.py.
"""

import ml_collections

from configs import evaluate


def suite() -> dict:
  """label -> dict(name=registered task, kwargs=overrides, steps=optional)."""
  return {
      "mlp_64x4_gelu_mnist1d": dict(name="mnist1d_mlp",
                                    kwargs=dict(hidden=(64,) * 4, activation="gelu",
                                                batch_size=64), steps=1500),
      "mlp_200x3_digits": dict(name="digits_mlp", kwargs=dict(hidden=(200,) * 3, seed=4)),
      "mlp_24x6_tanh_digits": dict(name="digits_mlp",
                                   kwargs=dict(hidden=(24,) * 6, activation="tanh", seed=5)),
      "convnet_narrow_digits": dict(name="digits_convnet",
                                    kwargs=dict(channels=(12, 24), seed=4)),
      "convnet1d_narrow_mnist1d": dict(name="mnist1d_convnet",
                                       kwargs=dict(channels=(8, 16, 16)), steps=800),
      "transformer_lm_d48": dict(name="text_transformer",
                                 kwargs=dict(d_model=48, num_heads=4, num_layers=2, seed=4)),
      "transformer_lm_long_seq": dict(name="text_transformer",
                                      kwargs=dict(num_layers=1, seq_len=48, seed=5)),
      "autoencoder_48_digits": dict(name="digits_autoencoder",
                                    kwargs=dict(hidden=(48,), latent=12, seed=4), steps=1500),
      "autoencoder_96x48_digits": dict(name="digits_autoencoder",
                                       kwargs=dict(hidden=(96, 48), latent=16, seed=5),
                                       steps=1500),
      "regression_diabetes_2layer": dict(name="diabetes_mlp",
                                         kwargs=dict(hidden=(32, 32), seed=4), steps=2000),
      "linear_regression_32d": dict(name="linear_regression",
                                    kwargs=dict(num_features=32, log10_condition=2.0,
                                                noise=0.2, seed=4)),
      # Noise-free, so the loss is bounded below by 0.
      "quadratic_32d_cond300": dict(name="quadratic",
                                    kwargs=dict(dim=32, log10_condition=2.5,
                                                noise_scale=0.0, seed=4)),
  }


def get_config() -> ml_collections.ConfigDict:
  return evaluate.held_out_config(suite())
