"""The named tasks. Offline ones train in seconds on a CPU; the TFDS ones
need the `tfds` extra and prepared data (they raise a clear error otherwise).

Every factory takes keyword overrides (batch_size, seed, ...); TFDS factories
also take `data_dir` and `backend` (see `tasks.data.tfds.load`).
"""

from collections.abc import Mapping
from typing import Any

import jax

from tasks import families, models
from tasks.base import Task
from tasks.data import images, mnist1d, sklearn, synthetic, text, tfds
from tasks.data.splits import Datasets, SequenceSplit, array_datasets
from tasks.quadratic import QuadraticTask
from tasks.registry import register
from tasks.supervised import AutoencoderTask, LanguageModelTask, SupervisedTask


def _mlp(hidden, outputs, activation="relu", layer_norm=False):
  return lambda x: models.MLP(hidden, outputs, activation, layer_norm)(x)


def _convnet(channels, outputs, spatial_dims, kernel_size=3):
  return lambda x: models.ConvNet(channels, outputs, spatial_dims, kernel_size)(x)


def _transformer(**kwargs):
  return lambda tokens: models.TransformerLM(**kwargs)(tokens)


def _text_datasets(streams, batch_size, seq_len) -> Datasets:
  return Datasets(*(SequenceSplit.from_numpy(streams[s], batch_size, seq_len)
                    for s in Datasets._fields))


# ---------------------------------------------------------------- offline ----

@register("digits_mlp")
def digits_mlp(batch_size: int = 128, hidden=(32,), activation: str = "relu",
               seed: int = 0) -> SupervisedTask:
  """MLP 64-32-10 on scikit-learn's 8x8 digits."""
  data = array_datasets(sklearn.load_digits(seed), batch_size)
  return SupervisedTask("digits_mlp", data, _mlp(hidden, 10, activation))


@register("digits_convnet")
def digits_convnet(batch_size: int = 64, channels=(16, 32),
                   seed: int = 0) -> SupervisedTask:
  """Two strided 3x3 convolutions on the 8x8 digits."""
  data = array_datasets(sklearn.load_digits(seed), batch_size)
  return SupervisedTask("digits_convnet", data, _convnet(channels, 10, 2))


@register("digits_autoencoder")
def digits_autoencoder(batch_size: int = 64, hidden=(32,), latent: int = 8,
                       seed: int = 0) -> AutoencoderTask:
  """MLP autoencoder 64-32-8-32-64 on the digits (pixels in [0, 1])."""
  data = array_datasets(sklearn.load_digits(seed), batch_size)
  return AutoencoderTask("digits_autoencoder", data,
                         lambda x: models.Autoencoder(hidden, latent)(x))


@register("mnist1d_mlp")
def mnist1d_mlp(batch_size: int = 128, hidden=(64, 64),
                activation: str = "relu") -> SupervisedTask:
  """MLP 40-64-64-10 on MNIST-1D."""
  data = array_datasets(mnist1d.load_mnist1d(), batch_size)
  return SupervisedTask("mnist1d_mlp", data, _mlp(hidden, 10, activation))


@register("mnist1d_convnet")
def mnist1d_convnet(batch_size: int = 64, channels=(16, 32, 32)) -> SupervisedTask:
  """1-D ConvNet (kernel 5, stride 2) on MNIST-1D."""
  data = array_datasets(mnist1d.load_mnist1d(), batch_size)
  return SupervisedTask("mnist1d_convnet", data, _convnet(channels, 10, 1, 5))


def _register_table(table: str, batch_size: int, hidden=(32,)) -> None:
  def factory(batch_size: int = batch_size, hidden=hidden,
              seed: int = 0) -> SupervisedTask:
    splits = sklearn.load_table(table, seed)
    data = array_datasets(splits, batch_size)
    if table in sklearn.CLASSIFICATION_TABLES:
      net = _mlp(hidden, sklearn.num_classes(table))
      return SupervisedTask(f"{table}_mlp", data, net, "softmax")
    net = _mlp(hidden, splits["train"]["y"].shape[-1])
    return SupervisedTask(f"{table}_mlp", data, net, "mse")
  factory.__doc__ = f"MLP on scikit-learn's bundled '{table}' table."
  register(f"{table}_mlp")(factory)


_register_table("iris", 16)
_register_table("wine", 16)
_register_table("breast_cancer", 32)
_register_table("diabetes", 32)
_register_table("linnerud", 4, (8,))


@register("linear_regression")
def linear_regression(batch_size: int = 32, num_features: int = 16,
                      log10_condition: float = 1.0, noise: float = 0.1,
                      seed: int = 0) -> SupervisedTask:
  """Least squares on Gaussian features (condition 10), 10% label noise."""
  splits = synthetic.regression_data("linear", num_features, 2048,
                                     log10_condition, noise, seed)
  return SupervisedTask("linear_regression", array_datasets(splits, batch_size),
                        _mlp((), 1), "mse")


@register("logistic_regression")
def logistic_regression(batch_size: int = 32, num_features: int = 16,
                        log10_condition: float = 1.0, noise: float = 0.1,
                        seed: int = 0) -> SupervisedTask:
  """Binary logistic regression on a noisy linear teacher."""
  splits = synthetic.regression_data("logistic", num_features, 2048,
                                     log10_condition, noise, seed)
  return SupervisedTask("logistic_regression", array_datasets(splits, batch_size),
                        _mlp((), 1), "sigmoid")


@register("quadratic")
def quadratic(dim: int = 32, log10_condition: float = 2.0,
              noise_scale: float = 0.1, batch_size: int = 8,
              seed: int = 0) -> QuadraticTask:
  """32-d quadratic, condition number 100, light gradient noise."""
  return QuadraticTask("quadratic", dim, log10_condition, jax.random.PRNGKey(seed),
                       noise_scale, batch_size)


@register("family_sample")
def family_sample(family: Mapping[str, Any] | None = None, seed: int = 0) -> Task:
  """One draw from a task family spec (`tasks.families.from_spec`; default: image MLPs).

  The task is the family's own for PRNGKey(seed): the same architecture, data,
  batch size and init scale that meta-training would sample with that key.
  """
  return families.sample_task(family or {"name": "image_mlp"}, seed)


@register("text_transformer")
def text_transformer(batch_size: int = 16, seq_len: int = 32, d_model: int = 32,
                     num_heads: int = 2, num_layers: int = 2,
                     max_bytes: int = 1 << 20, seed: int = 0) -> LanguageModelTask:
  """Tiny byte-level Transformer LM on the Python stdlib's own sources."""
  data = _text_datasets(text.load_text(max_bytes, seed), batch_size, seq_len)
  net = _transformer(vocab_size=text.VOCAB_SIZE, d_model=d_model,
                     num_heads=num_heads, num_layers=num_layers, max_len=seq_len)
  return LanguageModelTask("text_transformer", data, net)


@register("text_lstm")
def text_lstm(level: str = "byte", batch_size: int = 16, seq_len: int = 32,
              embed_dim: int = 32, hidden_size: int = 64, max_bytes: int = 1 << 20,
              seed: int = 0, text_override: str | None = None) -> LanguageModelTask:
  """LSTM language model on the stdlib text, at the byte or character level.

  `text_override` trains on another text instead (split by `text.streams`).
  """
  return _rnn_lm("text_lstm", "lstm", level, batch_size, seq_len, embed_dim, hidden_size,
                 max_bytes, seed, text_override)


@register("text_gru")
def text_gru(level: str = "byte", batch_size: int = 16, seq_len: int = 32,
             embed_dim: int = 32, hidden_size: int = 64, max_bytes: int = 1 << 20,
             seed: int = 0, text_override: str | None = None) -> LanguageModelTask:
  """GRU language model on the stdlib text, at the byte or character level.

  `text_override` trains on another text instead (split by `text.streams`).
  """
  return _rnn_lm("text_gru", "gru", level, batch_size, seq_len, embed_dim, hidden_size,
                 max_bytes, seed, text_override)


def _rnn_lm(name, cell, level, batch_size, seq_len, embed_dim, hidden_size, max_bytes,
            seed, text_override) -> LanguageModelTask:
  data = _text_datasets(text.streams(level, max_bytes, seed, text_override), batch_size,
                        seq_len)
  vocab = text.vocab_size(level)
  return LanguageModelTask(f"{name}/{level}", data, lambda tokens: models.RNNLM(
      vocab, cell, embed_dim, hidden_size)(tokens))


# Offline image datasets, with the time steps a recurrent classifier reads them in:
# the 8 rows of a digit, or MNIST-1D's 40 samples.
_SEQUENCES = {"digits": 8, "mnist1d": 40}


def _offline_images(dataset: str, batch_size: int, seed: int) -> Datasets:
  """The digits (split by `seed`) or MNIST-1D; both have 10 classes."""
  if dataset not in _SEQUENCES:
    raise ValueError(f"Unknown offline dataset {dataset!r}; use one of {sorted(_SEQUENCES)}.")
  arrays = sklearn.load_digits(seed) if dataset == "digits" else mnist1d.load_mnist1d()
  return array_datasets(arrays, batch_size)


@register("sequence_lstm")
def sequence_lstm(dataset: str = "digits", cell: str = "lstm", hidden_size: int = 64,
                  batch_size: int = 64, seed: int = 0) -> SupervisedTask:
  """Recurrent classifier of a sequence: the 8 rows of a digit (8 features each), or
  MNIST-1D's 40 samples (1 feature each), read by an LSTM (or a GRU)."""
  steps = _SEQUENCES.get(dataset)
  data = _offline_images(dataset, batch_size, seed)
  return SupervisedTask(f"sequence_{cell}/{dataset}", data, lambda x: models.RNNClassifier(
      10, steps, cell, hidden_size)(x))


@register("residual_mlp")
def residual_mlp(dataset: str = "digits", width: int = 64, depth: int = 4,
                 activation: str = "relu", batch_size: int = 128,
                 seed: int = 0) -> SupervisedTask:
  """Residual MLP with pre-LayerNorm blocks (`models.ResidualMLP`) on the digits or
  MNIST-1D."""
  data = _offline_images(dataset, batch_size, seed)
  return SupervisedTask(f"residual_mlp/{dataset}", data, lambda x: models.ResidualMLP(
      width, depth, 10, activation)(x))


@register("digits_patch_transformer")
def digits_patch_transformer(patch: int = 2, d_model: int = 32, num_heads: int = 2,
                             num_layers: int = 2, batch_size: int = 64,
                             seed: int = 0) -> SupervisedTask:
  """Patch Transformer (`models.PatchTransformer`) on the 8x8 digits: 2x2 patches
  (16 tokens) or 4x4 (4 tokens)."""
  data = _offline_images("digits", batch_size, seed)
  return SupervisedTask("digits_patch_transformer", data, lambda x: models.PatchTransformer(
      10, patch, d_model, num_heads, num_layers)(x))


@register("residual_convnet")
def residual_convnet(dataset: str = "digits", channels=(16, 32), blocks: int = 1,
                     batch_size: int = 64, seed: int = 0) -> SupervisedTask:
  """ConvNet of residual blocks (`models.ResidualConvNet`) on the 8x8 digits (2-D,
  3x3 kernels) or MNIST-1D (1-D, kernel 5)."""
  data = _offline_images(dataset, batch_size, seed)
  spatial, kernel = (2, 3) if dataset == "digits" else (1, 5)
  return SupervisedTask(f"residual_convnet/{dataset}", data, lambda x: models.ResidualConvNet(
      channels, 10, blocks, spatial, kernel)(x))


# ------------------------------------------------------------------- TFDS ----

def _tfds_image_task(name: str, dataset: str, net, batch_size: int,
                     data_dir: str | None, backend: str) -> SupervisedTask:
  data, _ = images.datasets(dataset, batch_size, data_dir=data_dir, backend=backend)
  return SupervisedTask(name, data, net)


def _register_image(name: str, dataset: str, net, batch_size: int = 128) -> None:
  def factory(batch_size: int = batch_size, data_dir: str | None = None,
              backend: str = "auto") -> SupervisedTask:
    return _tfds_image_task(name, dataset, net, batch_size, data_dir, backend)
  factory.__doc__ = f"{name}: TFDS '{dataset}'."
  register(name, needs_tfds=True)(factory)


_register_image("mnist_mlp", "mnist", _mlp((128,), 10))
_register_image("fashion_mnist_mlp", "fashion_mnist", _mlp((128,), 10))
_register_image("cifar10_8x8_mlp", "cifar10_8x8", _mlp((64,), 10))
_register_image("cifar10_16x16_mlp", "cifar10_16x16", _mlp((128,), 10))
_register_image("cifar10_convnet", "cifar10", _convnet((16, 32, 64), 10, 2))


def _register_text(name: str, dataset: str, splits: dict[str, str]) -> None:
  def factory(batch_size: int = 16, seq_len: int = 64, d_model: int = 64,
              num_heads: int = 4, num_layers: int = 2, max_bytes: int = 1 << 23,
              data_dir: str | None = None, backend: str = "auto") -> LanguageModelTask:
    streams = tfds.load_text(dataset, splits, data_dir, backend, max_bytes=max_bytes)
    net = _transformer(vocab_size=text.VOCAB_SIZE, d_model=d_model,
                       num_heads=num_heads, num_layers=num_layers, max_len=seq_len)
    return LanguageModelTask(name, _text_datasets(streams, batch_size, seq_len), net)
  factory.__doc__ = f"{name}: byte-level Transformer LM on TFDS '{dataset}'."
  register(name, needs_tfds=True)(factory)


_register_text("lm1b_transformer", "lm1b",
               {"train": "train[:100000]", "valid": "test[:5000]",
                "test": "test[5000:10000]"})
_register_text("tiny_shakespeare_transformer", "tiny_shakespeare",
               {"train": "train", "valid": "validation", "test": "test"})
