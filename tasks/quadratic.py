"""Noisy quadratics with controlled conditioning.

loss(x) = 1/2 (x - x*)^T H (x - x*) + s <mean_b noise_b, x>, with
H = Q diag(spectrum) Q^T (eigenvalues log-spaced in [10^-c, 1]), a random
optimum x*, and Gaussian noise batches that perturb the gradient with standard
deviation s / sqrt(batch). The noise has mean zero, so the expected loss is
the quadratic; the valid and test splits carry zero noise (exact loss).
"""

import jax
import jax.numpy as jnp

from tasks.base import Metrics, Params, Task
from tasks.data.splits import Batch, Datasets, GeneratedSplit
from tasks.data.synthetic import GaussianNoise, quadratic_matrix


def noise_datasets(dim: int, batch_size: int) -> Datasets:
  """Unit Gaussian noise for train; zeros for valid and test."""
  return Datasets(
      train=GeneratedSplit(GaussianNoise(dim, 1.0), batch_size, seed=0),
      valid=GeneratedSplit(GaussianNoise(dim, 0.0), batch_size, seed=1,
                           num_eval_batches=1),
      test=GeneratedSplit(GaussianNoise(dim, 0.0), batch_size, seed=2,
                          num_eval_batches=1))


class QuadraticTask(Task):
  """A quadratic bowl; every argument but `dim`/`batch_size` may be traced."""

  def __init__(self, name: str, dim: int, log10_condition: jax.Array | float,
               seed: jax.Array, noise_scale: jax.Array | float = 0.0,
               batch_size: int = 8, init_scale: jax.Array | float = 1.0):
    """Builds the quadratic.

    Args:
      name: task name.
      dim: number of parameters.
      log10_condition: log10 of H's condition number.
      seed: PRNG key (raw uint32[2] or typed) of H's eigenbasis and x*.
      noise_scale: gradient noise scale s.
      batch_size: noise vectors averaged per batch.
      init_scale: standard deviation of the initial x.
    """
    self.name = name
    self.dim = dim
    k_rotation, k_optimum = jax.random.split(seed)
    self.hessian = quadratic_matrix(k_rotation, dim, log10_condition)
    self.optimum = jax.random.normal(k_optimum, (dim,))
    self.noise_scale = noise_scale
    self.init_scale = init_scale
    self.datasets = noise_datasets(dim, batch_size)

  def init(self, key: jax.Array) -> Params:
    return {"x": self.init_scale * jax.random.normal(key, (self.dim,))}

  def loss_and_metrics(self, params: Params, key: jax.Array,
                       batch: Batch) -> tuple[jax.Array, Metrics]:
    del key
    x = params["x"]
    r = x - self.optimum
    noise = self.noise_scale * jnp.mean(batch["noise"], axis=0)
    return 0.5 * r @ self.hessian @ r + noise @ x, {}
