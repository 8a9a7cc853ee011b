"""Tasks built from a haiku network: supervised learning and autoencoding."""

from collections.abc import Callable

import haiku as hk
import jax
import jax.numpy as jnp
import optax

from tasks.base import Metrics, Params, Task
from tasks.data.splits import Batch, Datasets

LOSSES = ("softmax", "sigmoid", "mse")


def scale_weights(params: Params, scale: jax.Array | float) -> Params:
  """Multiplies every leaf of rank >= 2 (weights, kernels, embeddings) by `scale`.

  Biases and norm parameters (rank 1) keep their initial values.
  """
  return jax.tree.map(lambda p: p * scale if p.ndim >= 2 else p, params)


class HaikuTask(Task):
  """Base for tasks whose parameters come from a haiku function of `x`."""

  def __init__(self, name: str, datasets: Datasets,
               net_fn: Callable[[jax.Array], jax.Array],
               init_scale: jax.Array | float = 1.0, input_key: str = "x"):
    """Builds the task.

    Args:
      name: task name.
      datasets: train/valid/test splits.
      net_fn: haiku function (modules are created inside it) of the input.
      init_scale: multiplies the initial weights (may be a traced array).
      input_key: batch entry fed to the network.
    """
    self.name = name
    self.datasets = datasets
    self.net = hk.without_apply_rng(hk.transform(net_fn))
    # Jitted even when called eagerly: op-by-op haiku init is slow (seconds).
    self._net_init = jax.jit(self.net.init)
    self.init_scale = init_scale
    self.input_key = input_key

  def init(self, key: jax.Array) -> Params:
    example = self.batch_spec[self.input_key]
    x = jnp.zeros(example.shape, example.dtype)
    return scale_weights(self._net_init(key, x), self.init_scale)


class SupervisedTask(HaikuTask):
  """Predict `batch['y']` from `batch['x']`.

  Losses: 'softmax' (cross-entropy over classes, int labels; reports
  accuracy), 'sigmoid' (binary cross-entropy on one logit, labels 0/1;
  reports accuracy), 'mse' (mean squared error to float targets).
  """

  def __init__(self, name: str, datasets: Datasets,
               net_fn: Callable[[jax.Array], jax.Array], loss: str = "softmax",
               init_scale: jax.Array | float = 1.0):
    if loss not in LOSSES:
      raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
    super().__init__(name, datasets, net_fn, init_scale)
    self.loss_type = loss

  def loss_and_metrics(self, params: Params, key: jax.Array,
                       batch: Batch) -> tuple[jax.Array, Metrics]:
    del key  # deterministic networks
    out = self.net.apply(params, batch["x"])
    y = batch["y"]
    if self.loss_type == "softmax":
      loss = optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
      return loss, {"accuracy": (out.argmax(-1) == y).mean()}
    if self.loss_type == "sigmoid":
      logit = out[..., 0]
      loss = optax.sigmoid_binary_cross_entropy(logit, y.astype(logit.dtype)).mean()
      return loss, {"accuracy": ((logit > 0) == (y > 0)).mean()}
    return jnp.mean((out - y) ** 2), {}


class AutoencoderTask(HaikuTask):
  """Reconstruct `batch['x']`; mean squared error."""

  def loss_and_metrics(self, params: Params, key: jax.Array,
                       batch: Batch) -> tuple[jax.Array, Metrics]:
    del key
    x = batch["x"]
    return jnp.mean((self.net.apply(params, x) - x) ** 2), {}


class LanguageModelTask(HaikuTask):
  """Next-token prediction on `batch['tokens']` `[batch, seq_len + 1]`."""

  def __init__(self, name: str, datasets: Datasets,
               net_fn: Callable[[jax.Array], jax.Array],
               init_scale: jax.Array | float = 1.0):
    super().__init__(name, datasets, net_fn, init_scale, input_key="tokens")

  def init(self, key: jax.Array) -> Params:
    spec = self.batch_spec["tokens"]
    tokens = jnp.zeros((spec.shape[0], spec.shape[1] - 1), spec.dtype)
    return scale_weights(self._net_init(key, tokens), self.init_scale)

  def loss_and_metrics(self, params: Params, key: jax.Array,
                       batch: Batch) -> tuple[jax.Array, Metrics]:
    del key
    tokens = batch["tokens"]
    logits = self.net.apply(params, tokens[:, :-1])
    targets = tokens[:, 1:]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
    return loss, {"accuracy": (logits.argmax(-1) == targets).mean()}
