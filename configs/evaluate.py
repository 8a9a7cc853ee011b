"""Evaluation suites of meta_train.evaluate: optimizers against the best tuned rule.

  python -m meta_train.evaluate --config=configs/evaluate.py --workdir=DIR
  python -m meta_train.evaluate --config=configs/evaluate.py:VARIANT --workdir=DIR \
      "--config.optimizers=('checkpoint:DIR_A','checkpoint:DIR_B')"

"pretrained" means `learned_opt.pretrained()`, the best optimizer shipped with
this install, used with no tuning. The baselines are Adam swept over
`LEARNING_RATES` and `optax.contrib.muon` swept over `MUON_LEARNING_RATES` (Adam
at the task's tuned rate on the leaves Muon does not orthogonalize); per task
the best of them is the reference (see meta_train.evaluate for the training and
test metrics). Compare another optimizer with e.g.
`--config.optimizers='("pretrained:executor:adam:1e-3", "checkpoint:/path")'`.
Every variant runs the same protocol (seeds, sweep, final loss, targets, speedups);
they differ in their tasks (VARIANTS):

  reporting (the default, "" too)  the test suite the reported results come from
      (`reporting_suite`): 18 offline tasks of every kind (MLPs, ConvNets plain and
      residual, a Transformer LM, a patch Transformer, LSTM/GRU language models
      at the byte and character level, an LSTM sequence classifier, a residual
      LayerNorm MLP, an autoencoder, regressions, a quadratic, tabular data), all
      but the quadratic with held-out validation and test splits. The shipped
      optimizer's meta-training saw image MLPs (digits / MNIST-1D, widths 16-128,
      depths 1-3). The long-horizon entry trains a meta-training-like network for
      10x the meta-training episode length (`META_TRAIN_HORIZON`) and must stay
      finite and keep improving.
  reporting_v1  the first reporting suite (wider and deeper MLPs, ConvNets, a
      Transformer LM, an autoencoder, regressions, a quadratic, tabular data and
      TFDS image tasks, run only when their data is prepared) with tuned Adam as
      the only baseline, as its published table was measured.
  quick  3 small tasks, 300 steps, 1 seed (tests, `make demo`).
  family  12 held-out draws from the family the shipped optimizer was meta-trained
      on (image MLPs 32-256 wide and 1-4 deep, and noisy quadratics), each drawn
      with its own seed from 1000 on, away from the seeds meta-training draws from,
      and trained for one meta-training episode of that run.
  validation, validation2, ..., validation7  suites of the reporting suite's kinds
      of task (MLPs, ConvNets, Transformer LMs, autoencoders, regressions,
      quadratics, tabular MLPs) with other sizes, depths, activations, batch sizes,
      noise and data seeds; none shares a task with the reporting suite or with
      another suite, and none has a long-horizon run. `validation` has 9 tasks,
      `validation2` 14 weighted toward the minibatch-noisy kinds (language models,
      autoencoders, regressions) and deep MLPs, `validation3` 12 weighted the same
      way, `validation4` 12 weighted toward deep and tabular MLPs and ConvNets, and
      `validation5` to `validation7` 12 each spread over every kind.
  validation8, validation9, validation10  12 tasks each of every kind of the
      reporting suite (the new recurrent, residual and patch-Transformer kinds
      included) with other sizes, cells, token levels and data seeds.
  sealed  12 tasks of every kind (`sealed_suite`), written before any final run
      and used for no choice: run only on a finished candidate, for the honest
      generalization figure. Run once so far: results/pretrained/sealed.md.
  long_horizon  the reporting suite's long-horizon run alone, at 10x the longest
      episode configs/pretrained.py meta-trains on (50000 steps).

The family and validation suites are for choosing between candidate optimizers
(settings, checkpoints) without looking at the reporting suite's tasks, which stay
a test set. validation1-7 have all been used for choices or checks, so none is
independent of the shipped settings; validation8-10 were written fresh, before
any optimizer ran on them. No validation or sealed suite shares a task (name
and keyword overrides) or a label with another one or with either reporting
suite.
"""

from collections.abc import Callable

import ml_collections

LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
MUON_LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
# Inner steps of one meta-training episode of configs/meta_train.py (its default):
# truncation_length (20) x num_truncations (25).
META_TRAIN_HORIZON = 500
# The family variant's steps: one episode of the shipped optimizer's meta-training
# (truncation_length 20 x num_truncations 100).
FAMILY_EPISODE_STEPS = 2000


def _small_reporting_tasks() -> dict:
  """The fast tasks both reporting suites hold: autoencoder, regressions, quadratic,
  tabular MLPs."""
  return {
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
  }


def reporting_suite_v1() -> dict:
  """The first reporting suite (variant reporting_v1): label -> dict(name=registered
  task, kwargs=overrides, steps=optional)."""
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
      **_small_reporting_tasks(),
      # TFDS: evaluated when the data is prepared, skipped with the reason otherwise.
      "mlp_mnist": dict(name="mnist_mlp"),
      "mlp_fashion_mnist": dict(name="fashion_mnist_mlp"),
      "mlp_cifar10_8x8": dict(name="cifar10_8x8_mlp"),
  }


def reporting_suite() -> dict:
  """The reporting suite: label -> dict(name=registered task, kwargs=overrides,
  steps=optional).

  18 offline tasks of every kind, 17 with held-out validation and test splits
  (not the quadratic), two of them 3000 steps long; sizes are chosen so that
  the whole suite, with both sweeps and the shipped optimizer over 3 seeds, runs
  within an hour on 2 CPU cores.
  """
  return {
      "mlp_128x4_digits": dict(name="digits_mlp", kwargs=dict(hidden=(128,) * 4)),
      "mlp_128x3_gelu_mnist1d": dict(name="mnist1d_mlp",
                                     kwargs=dict(hidden=(128,) * 3, activation="gelu")),
      "mlp_32x8_tanh_digits": dict(name="digits_mlp",
                                   kwargs=dict(hidden=(32,) * 8, activation="tanh")),
      "residual_mlp_mnist1d": dict(name="residual_mlp", kwargs=dict(dataset="mnist1d")),
      "convnet_digits": dict(name="digits_convnet"),
      "residual_convnet_digits": dict(name="residual_convnet",
                                      kwargs=dict(channels=(8, 16), batch_size=32),
                                      steps=600),
      "transformer_lm_text": dict(name="text_transformer", steps=600),
      "patch_transformer_digits": dict(name="digits_patch_transformer",
                                       kwargs=dict(patch=4)),
      "lstm_lm_bytes": dict(name="text_lstm", kwargs=dict(hidden_size=48), steps=600),
      "gru_lm_chars": dict(name="text_gru", kwargs=dict(level="char"), steps=3000),
      "lstm_sequence_digits": dict(name="sequence_lstm", steps=3000),
      **_small_reporting_tasks(),
  }


def _reporting() -> ml_collections.ConfigDict:
  """The reporting suite and the protocol every variant shares."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 3
  config.steps = 1000                     # default per task; entries may set `steps`
  config.optimizers = ("pretrained",)     # candidates, compared with the best tuned rule
  # Tuned rules, each swept over its rates, in order: Muon's non-matrix leaves take
  # the task's tuned Adam rate, so Adam comes first.
  config.baselines = (("optax:adam", LEARNING_RATES),
                      ("optax:contrib.muon", MUON_LEARNING_RATES))
  config.learning_rates = LEARNING_RATES  # sweep for a candidate "optax:NAME" spec
  config.tasks = reporting_suite()
  config.meta_train_horizon = META_TRAIN_HORIZON
  # Long horizon: 10x the meta-training episode length.
  config.long_horizon = ml_collections.ConfigDict(dict(
      label="long_horizon_mlp_32x2_mnist1d", name="mnist1d_mlp",
      kwargs=dict(hidden=(32, 32)),
      steps=config.get_ref("meta_train_horizon") * 10))
  config.final_fraction = 0.05            # final loss = mean of the last 5% of steps
  config.log_points = 100                 # curve points per run (steps-to-target resolution)
  config.divergence_factor = 10.0         # final loss above this x initial loss: diverged
  config.eval_batches = 20                # valid/test loss over at most this many batches
  config.test_curve_points = 10           # test-loss curve points per run (held-out tasks)
  config.test_curve_batches = 4           # test batches each curve point averages
  return config


def _reporting_v1() -> ml_collections.ConfigDict:
  """The first reporting suite with its protocol: tuned Adam the only baseline."""
  config = _reporting()
  config.tasks = reporting_suite_v1()
  config.baselines = (("optax:adam", LEARNING_RATES),)
  return config


def _held_out(tasks: dict) -> ml_collections.ConfigDict:
  """The shared protocol on another task list, without the long-horizon run."""
  config = _reporting()
  config.tasks = tasks
  config.long_horizon = None
  return config


def _quick() -> ml_collections.ConfigDict:
  config = _held_out({
      "mlp_128x3_digits": dict(name="digits_mlp", kwargs=dict(hidden=(128, 128, 128))),
      "autoencoder_digits": dict(name="digits_autoencoder"),
      "diabetes_regression": dict(name="diabetes_mlp"),
  })
  config.num_seeds = 1
  config.steps = 300
  return config


def meta_training_family() -> dict:
  """The task family the shipped optimizer was meta-trained on, as a family spec.

  That is configs/meta_train.py's mixture variant (three parts image MLPs, one
  part noisy quadratics) with image MLPs 32-256 wide and 1-4 deep, as the shipped
  run set them; written out here because no config imports another.
  """
  image = dict(activations=("relu", "tanh", "gelu"), batch_sizes=(64, 128),
               datasets=("digits", "mnist1d"), depths=(1, 4), layer_norm=(False,),
               name="image_mlp", share=3.0, widths=(32, 256))
  quadratic = dict(batch_sizes=(8,), dims=(8, 48), log10_conditions=(0.0, 4.0),
                   name="quadratic", noise_scales=(0.0, 0.5), share=1.0)
  return dict(members=dict(image=image, quadratic=quadratic), name="mixture")


def _family() -> ml_collections.ConfigDict:
  num_draws, first_seed = 12, 1000
  family = meta_training_family()
  config = _held_out({
      f"draw_{seed}": dict(name="family_sample", kwargs=dict(family=family, seed=seed))
      for seed in range(first_seed, first_seed + num_draws)})
  config.steps = FAMILY_EPISODE_STEPS
  return config


def _validation() -> dict:
  """The first validation suite: 9 tasks, one of most of the reporting suite's kinds."""
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


def _validation2() -> dict:
  """14 tasks, weighted toward minibatch-noisy tasks and deep MLPs."""
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


def _validation3() -> dict:
  """12 tasks, weighted toward minibatch-noisy tasks and deep MLPs."""
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


def _validation4() -> dict:
  """12 tasks, weighted toward deep and tabular MLPs and ConvNets."""
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


def _validation5() -> dict:
  """12 tasks spread over every kind."""
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


def _validation6() -> dict:
  """12 tasks spread over every kind."""
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


def _validation7() -> dict:
  """12 tasks spread over every kind."""
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


def _validation8() -> dict:
  """12 tasks of every kind of the reporting suite, new sizes, data seed 4."""
  return {
      "mlp_96x3_silu_digits": dict(name="digits_mlp", kwargs=dict(hidden=(96,) * 3,
                                                                  activation="silu", seed=4)),
      "mlp_64x2_b64_mnist1d": dict(name="mnist1d_mlp", kwargs=dict(batch_size=64)),
      "convnet_c8c16_seed4_digits": dict(name="digits_convnet",
                                    kwargs=dict(channels=(8, 16), seed=4)),
      "residual_convnet_mnist1d": dict(name="residual_convnet",
                                       kwargs=dict(dataset="mnist1d", channels=(8, 16)),
                                       steps=500),
      "transformer_lm_d24": dict(name="text_transformer",
                                 kwargs=dict(d_model=24, num_heads=2, num_layers=1, seed=4),
                                 steps=600),
      "patch_transformer_p2_d16": dict(name="digits_patch_transformer",
                                       kwargs=dict(patch=2, d_model=16, num_layers=1,
                                                   seed=4), steps=600),
      "gru_lm_bytes": dict(name="text_gru", kwargs=dict(hidden_size=32, seed=4), steps=600),
      "gru_sequence_mnist1d": dict(name="sequence_lstm",
                                   kwargs=dict(dataset="mnist1d", cell="gru", hidden_size=32),
                                   steps=500),
      "residual_mlp_32x6_digits": dict(name="residual_mlp",
                                       kwargs=dict(width=32, depth=6, seed=4)),
      "autoencoder_z4_digits": dict(name="digits_autoencoder", kwargs=dict(latent=4, seed=4),
                                    steps=1500),
      "logistic_regression_32d": dict(name="logistic_regression",
                                      kwargs=dict(num_features=32, seed=4)),
      "quadratic_16d_cond100_seed4": dict(name="quadratic",
                                    kwargs=dict(dim=16, log10_condition=2.0, noise_scale=0.0,
                                                seed=4)),
  }


def _validation9() -> dict:
  """12 tasks of every kind of the reporting suite, new sizes, data seed 5."""
  return {
      "mlp_160x2_digits": dict(name="digits_mlp", kwargs=dict(hidden=(160,) * 2, seed=5)),
      "mlp_48x5_tanh_mnist1d": dict(name="mnist1d_mlp",
                                    kwargs=dict(hidden=(48,) * 5, activation="tanh")),
      "convnet1d_8x8x16_mnist1d": dict(name="mnist1d_convnet",
                                       kwargs=dict(channels=(8, 8, 16)), steps=600),
      "residual_convnet_2blocks_digits": dict(name="residual_convnet",
                                              kwargs=dict(channels=(8, 8), blocks=2,
                                                          batch_size=32, seed=5),
                                              steps=500),
      "transformer_lm_2layer_d16": dict(name="text_transformer",
                                        kwargs=dict(d_model=16, num_layers=2, seed=5),
                                        steps=600),
      "patch_transformer_p4_d48": dict(name="digits_patch_transformer",
                                       kwargs=dict(patch=4, d_model=48, num_heads=4, seed=5)),
      "lstm_lm_chars": dict(name="text_lstm",
                            kwargs=dict(level="char", hidden_size=32, seed=5), steps=600),
      "gru_sequence_digits": dict(name="sequence_lstm",
                                  kwargs=dict(cell="gru", hidden_size=32, seed=5)),
      "residual_mlp_48x3_gelu_mnist1d": dict(name="residual_mlp",
                                             kwargs=dict(dataset="mnist1d", width=48,
                                                         depth=3, activation="gelu")),
      "linear_regression_cond1000": dict(name="linear_regression",
                                         kwargs=dict(log10_condition=3.0, seed=5)),
      "mlp_16x2_wine": dict(name="wine_mlp", kwargs=dict(hidden=(16, 16), seed=5)),
      "quadratic_48d_noise02": dict(name="quadratic",
                                  kwargs=dict(dim=48, log10_condition=1.5, noise_scale=0.2,
                                              seed=5)),
  }


def _validation10() -> dict:
  """12 tasks of every kind of the reporting suite, new sizes, data seed 6."""
  return {
      "mlp_256x2_gelu_digits": dict(name="digits_mlp",
                                    kwargs=dict(hidden=(256,) * 2, activation="gelu", seed=6)),
      "mlp_24x6_mnist1d": dict(name="mnist1d_mlp", kwargs=dict(hidden=(24,) * 6)),
      "convnet_b32_digits": dict(name="digits_convnet",
                                 kwargs=dict(channels=(16, 16), batch_size=32, seed=6)),
      "residual_convnet_1stage_mnist1d": dict(name="residual_convnet",
                                              kwargs=dict(dataset="mnist1d", channels=(8,),
                                                          blocks=2), steps=500),
      "transformer_lm_seq16": dict(name="text_transformer",
                                   kwargs=dict(seq_len=16, num_layers=1, seed=6), steps=600),
      "patch_transformer_p2_3layer": dict(name="digits_patch_transformer",
                                          kwargs=dict(patch=2, d_model=24, num_layers=3,
                                                      seed=6), steps=600),
      "gru_lm_chars_h96": dict(name="text_gru",
                               kwargs=dict(level="char", hidden_size=96, seed=6), steps=600),
      "lstm_sequence_h16_digits": dict(name="sequence_lstm",
                                       kwargs=dict(hidden_size=16, seed=6)),
      "residual_mlp_96x2_tanh_digits": dict(name="residual_mlp",
                                            kwargs=dict(width=96, depth=2, activation="tanh",
                                                        seed=6)),
      "autoencoder_deep_z6_digits": dict(name="digits_autoencoder",
                                         kwargs=dict(hidden=(48, 24), latent=6, seed=6),
                                         steps=1500),
      "mlp_64_breast_cancer": dict(name="breast_cancer_mlp",
                                   kwargs=dict(hidden=(64,), seed=6)),
      "logistic_regression_noisy_24d": dict(name="logistic_regression",
                                            kwargs=dict(num_features=24, noise=0.3, seed=6)),
  }


def sealed_suite() -> dict:
  """12 tasks for the honest generalization figure: written before any final run,
  used for no choice, run only on a finished candidate (variant "sealed")."""
  return {
      "mlp_192x3_digits": dict(name="digits_mlp", kwargs=dict(hidden=(192,) * 3, seed=7)),
      "mlp_80x4_elu_mnist1d": dict(name="mnist1d_mlp",
                                   kwargs=dict(hidden=(80,) * 4, activation="elu")),
      "convnet_c32c32_seed7_digits": dict(name="digits_convnet",
                                  kwargs=dict(channels=(32, 32), seed=7)),
      "residual_convnet_c12_digits": dict(name="residual_convnet",
                                          kwargs=dict(channels=(12, 24), batch_size=32,
                                                      seed=7), steps=500),
      "transformer_lm_d40": dict(name="text_transformer",
                                 kwargs=dict(d_model=40, num_heads=4, seq_len=24, seed=7),
                                 steps=600),
      "patch_transformer_p4_2layer": dict(name="digits_patch_transformer",
                                          kwargs=dict(patch=4, d_model=24, num_layers=2,
                                                      seed=7)),
      "lstm_lm_bytes_h80": dict(name="text_lstm", kwargs=dict(hidden_size=80, seed=7),
                                steps=600),
      "gru_lm_chars_e16": dict(name="text_gru",
                               kwargs=dict(level="char", embed_dim=16, seed=7), steps=600),
      "lstm_sequence_mnist1d": dict(name="sequence_lstm",
                                    kwargs=dict(dataset="mnist1d", hidden_size=48),
                                    steps=500),
      "residual_mlp_64x8_mnist1d": dict(name="residual_mlp",
                                        kwargs=dict(dataset="mnist1d", width=64, depth=8)),
      "mlp_64_diabetes": dict(name="diabetes_mlp", kwargs=dict(hidden=(64,), seed=7),
                              steps=2000),
      "quadratic_96d_cond10000": dict(name="quadratic",
                                      kwargs=dict(dim=96, log10_condition=4.0,
                                                  noise_scale=0.0, seed=7)),
  }


VALIDATION_SUITES: dict[str, Callable[[], dict]] = {
    "validation": _validation, "validation2": _validation2, "validation3": _validation3,
    "validation4": _validation4, "validation5": _validation5, "validation6": _validation6,
    "validation7": _validation7, "validation8": _validation8, "validation9": _validation9,
    "validation10": _validation10}
def _long_horizon() -> ml_collections.ConfigDict:
  """The reporting protocol's long-horizon run alone, at 10x a longer meta-training
  episode: `meta_train_horizon` = 5000, configs/pretrained.py's longest."""
  config = _reporting()
  config.tasks = {}
  config.meta_train_horizon = 5000
  return config


_BUILDERS: dict[str, Callable[[], ml_collections.ConfigDict]] = {
    "reporting": _reporting, "reporting_v1": _reporting_v1, "quick": _quick, "family": _family,
    **{name: (lambda suite=suite: _held_out(suite())) for name, suite in VALIDATION_SUITES.items()},
    "sealed": lambda: _held_out(sealed_suite()), "long_horizon": _long_horizon}
VARIANTS = tuple(_BUILDERS)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """The evaluation config of `variant` (see the module docstring; "" is "reporting").

  Raises:
    ValueError: `variant` is not one of VARIANTS (the message lists them).
  """
  name = variant or "reporting"
  if name not in _BUILDERS:
    raise ValueError(f"Unknown evaluate config variant {variant!r}; known variants: "
                     f"{', '.join(VARIANTS)} (or '' for reporting).")
  return _BUILDERS[name]()
