"""Synthetic problems: quadratics with controlled conditioning, regression data.

The spectrum and rotation helpers are written in `jax.numpy` so that a
quadratic's Hessian can be built from traced, vmapped family parameters (a
condition number and a seed) inside a jitted meta-training step.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from tasks.data.arrays import SplitArrays, read_only, shuffle_split


def spectrum(dim: int, log10_condition: jax.Array | float) -> jax.Array:
  """Eigenvalues log-spaced from 1 down to 1/condition (largest first)."""
  t = jnp.linspace(0.0, 1.0, dim)
  return 10.0 ** (-jnp.asarray(log10_condition, jnp.float32) * t)


def orthonormalize(a: jax.Array) -> jax.Array:
  """The Q of a's QR decomposition with R's diagonal positive: Gram-Schmidt, twice.

  Written with `jax.numpy` and `lax.fori_loop` instead of `jnp.linalg.qr`: on
  CPU, jaxlib's batched LAPACK QR kernel splits its batch over the same thread
  pool that runs it, and two of them running at once on a 2-thread pool wait on
  each other forever (seen as idle, hung meta-training on quadratics under vmap).
  Reorthogonalizing once ("twice is enough") keeps Q orthogonal to float
  precision for the well-conditioned Gaussian matrices used here.
  """
  n = a.shape[-1]
  columns = jnp.arange(n)

  def column(j, q):
    v, before = a[:, j], (columns < j).astype(a.dtype)
    for _ in range(2):
      v = v - q @ (before * (q.T @ v))
    return q.at[:, j].set(v / jnp.linalg.norm(v))

  return jax.lax.fori_loop(0, n, column, jnp.zeros_like(a))


def random_rotation(key: jax.Array, dim: int) -> jax.Array:
  """A Haar-random orthogonal matrix (QR of a Gaussian, R's diagonal made positive)."""
  return orthonormalize(jax.random.normal(key, (dim, dim)))


def quadratic_matrix(key: jax.Array, dim: int,
                     log10_condition: jax.Array | float) -> jax.Array:
  """Symmetric positive definite `Q diag(spectrum) Q^T`, condition 10^log10."""
  q = random_rotation(key, dim)
  return (q * spectrum(dim, log10_condition)[None, :]) @ q.T


@dataclasses.dataclass(frozen=True)
class GaussianNoise:
  """Static batch generator: `{"noise": N(0, 1)[batch, dim]}` (or zeros)."""

  dim: int
  scale: float = 1.0

  def __call__(self, key: jax.Array, batch_size: int) -> dict[str, jax.Array]:
    noise = jax.random.normal(key, (batch_size, self.dim))
    return {"noise": noise * self.scale}


@functools.lru_cache(maxsize=None)
def regression_data(kind: str, num_features: int = 16,
                    num_examples: int = 2048, log10_condition: float = 1.0,
                    noise: float = 0.1, seed: int = 0) -> SplitArrays:
  """Linear or logistic regression data from a random teacher.

  Features are Gaussian with covariance `Q diag(spectrum) Q^T` scaled to unit
  mean variance, so `log10_condition` sets the conditioning of the problem.
  Linear: `y = x w + noise * eps` (float32[n, 1]). Logistic: `y = 1[x w +
  noise * eps > 0]` (int32[n], two classes).

  Args:
    kind: 'linear' or 'logistic'.
    num_features: input dimension.
    num_examples: total examples, cut 70/15/15 into train/valid/test.
    log10_condition: log10 of the feature covariance's condition number.
    noise: label noise scale.
    seed: numpy seed of everything above.
  """
  if kind not in ("linear", "logistic"):
    raise ValueError(f"kind must be 'linear' or 'logistic', got {kind!r}.")
  rng = np.random.default_rng(seed)
  eig = 10.0 ** (-log10_condition * np.linspace(0.0, 1.0, num_features))
  eig = eig / eig.mean()
  q, r = np.linalg.qr(rng.standard_normal((num_features, num_features)))
  q = q * np.sign(np.diag(r))
  x = (rng.standard_normal((num_examples, num_features)) * np.sqrt(eig)) @ q.T
  w = rng.standard_normal(num_features) / np.sqrt(num_features)
  signal = x @ w + noise * rng.standard_normal(num_examples)
  if kind == "linear":
    y = signal.astype(np.float32)[:, None]
  else:
    y = (signal > 0).astype(np.int32)
  return read_only(shuffle_split({"x": x.astype(np.float32), "y": y}, seed))
