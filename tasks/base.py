"""`Task` and `TaskFamily`: the inner problems optimizers train on.

A `Task` is pure functions plus data: `init(key) -> params`,
`loss(params, key, batch) -> scalar` (and `loss_and_metrics` for aux metrics
such as accuracy), `datasets` (train/valid/test `Split`s) and a `name`.

A `TaskFamily` is a distribution over tasks for meta-training. Its config,
`TaskConfig`, splits in two:

* `static`: hashable structure that fixes shapes and so the compiled program
  (dataset, widths, depth, activation, batch size). It is pytree *aux data*,
  so jit treats it as a constant and vmap cannot batch it.
* `dynamic`: a dict of arrays (init scale, condition number, data seeds...).
  These are pytree leaves: they can be traced, jitted and vmapped.

`family.sample(key)` draws both (host-side: the static choice must be
concrete). `family.sample_dynamic(key, static)` is jittable and vmappable, and
`family.sample_population(key, n)` draws one static structure with `n`
dynamic parameter sets stacked on a leading axis. `family.task(config)` only
builds closures over `config.dynamic`, so it may be called inside
`jax.vmap`/`jax.jit` with traced dynamic leaves: a population of tasks of one
architecture trains in one vectorized call, e.g.

  pop = family.sample_population(key, 8)
  params = jax.vmap(lambda c, k: family.task(c).init(k))(pop, keys)
"""

import abc
import dataclasses
import functools
from collections.abc import Hashable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tasks.data.splits import Batch, Datasets

Params = Any  # a pytree of arrays
Metrics = dict[str, jax.Array]


class Task(abc.ABC):
  """An inner problem: parameters, a stochastic loss and its data.

  Subclasses implement `init` and `loss_and_metrics` and set `name` and
  `datasets`. All methods are pure and jittable; pass data splits to jitted
  code as arguments (see `tasks.data.splits`).
  """

  name: str
  datasets: Datasets

  @abc.abstractmethod
  def init(self, key: jax.Array) -> Params:
    """Initial parameters."""

  @abc.abstractmethod
  def loss_and_metrics(self, params: Params, key: jax.Array,
                       batch: Batch) -> tuple[jax.Array, Metrics]:
    """Scalar loss and aux metrics (e.g. {'accuracy': ...}) on one batch."""

  def loss(self, params: Params, key: jax.Array, batch: Batch) -> jax.Array:
    """Scalar loss on one batch (`key` feeds any randomness of the loss)."""
    return self.loss_and_metrics(params, key, batch)[0]

  @property
  def batch_spec(self) -> dict[str, jax.ShapeDtypeStruct]:
    """Shape/dtype of one training batch (see `tasks.stacked_spec`)."""
    return self.datasets.train.spec

  @functools.cached_property
  def _eval_chunk(self):
    def run(params, key, stack):
      def one(batch):
        loss, metrics = self.loss_and_metrics(params, key, batch)
        return {"loss": loss, **metrics}
      return jax.tree.map(lambda v: jnp.mean(v, 0), lax.map(one, stack))
    return jax.jit(run)

  def evaluate(self, params: Params, split: str = "valid",
               key: jax.Array | None = None,
               max_batches: int | None = None) -> dict[str, float]:
    """Mean loss and metrics over a whole split (exact, example-weighted).

    Args:
      params: parameters to evaluate.
      split: 'train', 'valid' or 'test'.
      key: key passed to the loss (default PRNGKey(0)).
      max_batches: evaluate on at most this many batches (the first ones).
    """
    key = jax.random.PRNGKey(0) if key is None else key
    totals, count = {}, 0
    for stack in self.datasets.split(split).eval_chunks(max_batches):
      n = int(np.prod(next(iter(stack.values())).shape[:2]))
      means = self._eval_chunk(params, key, stack)
      for k, v in means.items():
        totals[k] = totals.get(k, 0.0) + float(v) * n
      count += n
    return {k: v / count for k, v in totals.items()}

  def __repr__(self) -> str:
    return f"{type(self).__name__}({self.name!r})"


@functools.partial(jax.tree_util.register_dataclass, data_fields=["dynamic"],
                   meta_fields=["static"])
@dataclasses.dataclass(frozen=True)
class TaskConfig:
  """A sampled task: static structure (aux data) + dynamic arrays (leaves)."""

  static: Hashable
  dynamic: Mapping[str, jax.Array]


def key_seed(key: jax.Array) -> list[int]:
  """The concrete bits of a (raw or typed) PRNG key, to seed numpy."""
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return [int(v) for v in np.asarray(key).ravel()]


class TaskFamily(abc.ABC):
  """A distribution over tasks; see the module docstring for the config split."""

  name: str

  @abc.abstractmethod
  def sample_static(self, key: jax.Array) -> Hashable:
    """Structure (shapes): host-side, needs a concrete key."""

  @abc.abstractmethod
  def sample_dynamic(self, key: jax.Array, static: Hashable) -> dict[str, jax.Array]:
    """Array-valued parameters: jittable and vmappable over `key`."""

  @abc.abstractmethod
  def task(self, config: TaskConfig) -> Task:
    """The task of a config; callable under jit/vmap (dynamic leaves traced)."""

  def sample_structures(self, key: jax.Array, n: int) -> list[Hashable]:
    """`n` distinct structures, drawn from successive splits of `key`.

    Raises:
      ValueError: if 1000 * n draws give fewer than `n` distinct structures.
    """
    out: list[Hashable] = []
    for _ in range(1000 * n):
      if len(out) == n:
        break
      key, sub = jax.random.split(key)
      static = self.sample_static(sub)
      if static not in out:
        out.append(static)
    if len(out) == n:
      return out
    raise ValueError(f"The {self.name} family has fewer than {n} distinct structures; "
                     "ask for fewer or widen its ranges.")

  def sample(self, key: jax.Array) -> TaskConfig:
    """One config (host-side, because the structure must be concrete)."""
    k_static, k_dynamic = jax.random.split(key)
    static = self.sample_static(k_static)
    return TaskConfig(static, self.sample_dynamic(k_dynamic, static))

  def sample_population(self, key: jax.Array, n: int,
                        static: Hashable | None = None) -> TaskConfig:
    """`n` tasks of one structure; dynamic leaves get a leading axis `n`."""
    k_static, k_dynamic = jax.random.split(key)
    if static is None:
      static = self.sample_static(k_static)
    dynamic = jax.vmap(lambda k: self.sample_dynamic(k, static))(
        jax.random.split(k_dynamic, n))
    return TaskConfig(static, dynamic)
