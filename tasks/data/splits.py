"""Dataset splits that live on device and hand out fixed-shape batches.

A split is a pytree: its arrays are leaves (held on device once), its batch
size and preprocessing are static. Inside a jitted inner-training step, pass
the split as an *argument* and call `split.sample(key)` or
`split.stacked(key, steps)`: indices are drawn with `jax.random` and the batch
is gathered on device, so loading data never costs a host round trip. (Do not
close over a split inside `jax.jit`: closed-over arrays are baked into the
program as constants, which is slow to compile for real datasets.)

Every split also iterates on the host, `iter(split)`, yielding an endless
stream of fixed-shape numpy batches (epochs of a seeded permutation), and
`eval_chunks()` covers the split exactly once for evaluation.

Device sampling draws examples with replacement (uniform indices); host
iteration walks epochs without replacement.
"""

import abc
import dataclasses
import itertools
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Batch = dict[str, jax.Array]
Decode = Callable[[dict[str, Any]], dict[str, Any]]


@partial(jax.jit, static_argnums=2)
def _stacked(split: "Split", key: jax.Array, steps: int) -> Batch:
  return split._stacked(key, steps)  # pylint: disable=protected-access


@jax.jit
def _sample(split: "Split", key: jax.Array) -> Batch:
  return split._sample(key)  # pylint: disable=protected-access


class Split(abc.ABC):
  """Base class: one split (train, valid or test) of a task's data."""

  batch_size: int

  @abc.abstractmethod
  def _sample(self, key: jax.Array) -> Batch:
    """One batch drawn on device from `key` (traceable)."""

  @abc.abstractmethod
  def iterate(self, seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Endless host iterator of fixed-shape numpy batches, seeded."""

  @abc.abstractmethod
  def eval_chunks(self, max_batches: int | None = None) -> list[Batch]:
    """Batches stacked as `[num_batches, batch, ...]` covering the split once.

    All chunks but possibly the last have `batch_size` examples per batch; the
    last may hold one smaller batch (the remainder), so that means weighted by
    example count are exact.

    Args:
      max_batches: cap on the number of batches (the first ones are used).
    """

  def _stacked(self, key: jax.Array, steps: int) -> Batch:
    """`steps` batches; subclasses draw all indices in one call (cheaper to
    compile and run than vmapping `_sample`)."""
    return jax.vmap(self._sample)(jax.random.split(key, steps))

  def sample(self, key: jax.Array) -> Batch:
    """One batch drawn on device; jittable (pass the split as an argument)."""
    return _sample(self, key)

  def stacked(self, key: jax.Array, steps: int) -> Batch:
    """`steps` batches stacked as `[steps, batch, ...]` for `lax.scan`."""
    return _stacked(self, key, steps)

  @property
  def spec(self) -> dict[str, jax.ShapeDtypeStruct]:
    """Shape and dtype of one batch."""
    return jax.eval_shape(self._sample, jax.random.PRNGKey(0))

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self.iterate(0)


def stacked_spec(spec: Mapping[str, jax.ShapeDtypeStruct],
                 steps: int) -> dict[str, jax.ShapeDtypeStruct]:
  """The spec of `steps` stacked batches (leading axis `steps`)."""
  return {k: jax.ShapeDtypeStruct((steps,) + tuple(v.shape), v.dtype)
          for k, v in spec.items()}


def stack_batches(iterator: Iterator[Mapping[str, np.ndarray]],
                  steps: int) -> dict[str, np.ndarray]:
  """Stacks `steps` host batches from an iterator into `[steps, batch, ...]`."""
  batches = [next(iterator) for _ in range(steps)]
  return {k: np.stack([b[k] for b in batches]) for k in batches[0]}


def _epoch_indices(n: int, seed: int) -> Iterator[int]:
  rng = np.random.default_rng(seed)
  while True:
    yield from rng.permutation(n)


def _take(stream: Iterator[int], count: int) -> np.ndarray:
  return np.fromiter(stream, dtype=np.int64, count=count)


def _apply(decode: Decode | None, batch: dict[str, Any]) -> dict[str, Any]:
  return dict(decode(batch)) if decode is not None else batch


@partial(jax.tree_util.register_dataclass, data_fields=["arrays"],
         meta_fields=["batch_size", "decode"])
@dataclasses.dataclass(frozen=True, eq=False)
class ArraySplit(Split):
  """Examples held as arrays with a leading example axis.

  Attributes:
    arrays: name -> array `[num_examples, ...]` (on device).
    batch_size: examples per batch.
    decode: optional static, hashable function applied to each gathered
      batch (e.g. uint8 pixels -> normalized float32); it must work on numpy
      and jax arrays alike.
  """

  arrays: dict[str, jax.Array]
  batch_size: int
  decode: Decode | None = None

  @classmethod
  def from_numpy(cls, arrays: Mapping[str, np.ndarray], batch_size: int,
                 decode: Decode | None = None) -> "ArraySplit":
    """Puts host arrays on the default device once."""
    sizes = {len(v) for v in arrays.values()}
    if len(sizes) != 1 or 0 in sizes:
      raise ValueError(f"Arrays need one non-zero example count, got "
                       f"{ {k: np.shape(v) for k, v in arrays.items()} }.")
    return cls({k: jnp.asarray(v) for k, v in arrays.items()}, int(batch_size),
               decode)

  @property
  def num_examples(self) -> int:
    return len(next(iter(self.arrays.values())))

  def _gather(self, key: jax.Array, lead: tuple[int, ...]) -> Batch:
    idx = jax.random.randint(key, lead + (self.batch_size,), 0, self.num_examples)
    return _apply(self.decode, {k: v[idx] for k, v in self.arrays.items()})

  def _sample(self, key: jax.Array) -> Batch:
    return self._gather(key, ())

  def _stacked(self, key: jax.Array, steps: int) -> Batch:
    return self._gather(key, (steps,))

  def iterate(self, seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
    host = {k: np.asarray(v) for k, v in self.arrays.items()}
    stream = _epoch_indices(self.num_examples, seed)
    while True:
      idx = _take(stream, self.batch_size)
      batch = _apply(self.decode, {k: v[idx] for k, v in host.items()})
      yield {k: np.asarray(v) for k, v in batch.items()}

  def eval_chunks(self, max_batches: int | None = None) -> list[Batch]:
    n, b = self.num_examples, self.batch_size
    if max_batches is not None:
      n = min(n, max_batches * b)
    full = n // b
    chunks = []
    if full:
      chunks.append(_apply(self.decode, {
          k: v[:full * b].reshape((full, b) + v.shape[1:])
          for k, v in self.arrays.items()}))
    if n % b:
      chunks.append(_apply(self.decode, {
          k: v[full * b:n][None] for k, v in self.arrays.items()}))
    return chunks


@partial(jax.tree_util.register_dataclass, data_fields=["tokens"],
         meta_fields=["batch_size", "seq_len"])
@dataclasses.dataclass(frozen=True, eq=False)
class SequenceSplit(Split):
  """One long token stream; batches are random windows of `seq_len + 1`.

  Batches are `{"tokens": int32[batch, seq_len + 1]}`: a language model reads
  `tokens[:, :-1]` and predicts `tokens[:, 1:]`.
  """

  tokens: jax.Array
  batch_size: int
  seq_len: int

  @classmethod
  def from_numpy(cls, tokens: np.ndarray, batch_size: int,
                 seq_len: int) -> "SequenceSplit":
    if tokens.ndim != 1 or len(tokens) < seq_len + 1:
      raise ValueError(f"Need a 1-D stream of at least {seq_len + 1} tokens, "
                       f"got shape {tokens.shape}.")
    return cls(jnp.asarray(tokens), int(batch_size), int(seq_len))

  @property
  def window(self) -> int:
    return self.seq_len + 1

  def _windows(self, tokens, starts):
    idx = starts[..., None] + jnp.arange(self.window)
    return {"tokens": tokens[idx].astype(jnp.int32)}

  def _draw(self, key: jax.Array, lead: tuple[int, ...]) -> Batch:
    starts = jax.random.randint(key, lead + (self.batch_size,), 0,
                                len(self.tokens) - self.window + 1)
    return self._windows(self.tokens, starts)

  def _sample(self, key: jax.Array) -> Batch:
    return self._draw(key, ())

  def _stacked(self, key: jax.Array, steps: int) -> Batch:
    return self._draw(key, (steps,))

  def iterate(self, seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
    host = np.asarray(self.tokens)
    num = (len(host) - 1) // self.seq_len  # non-overlapping windows
    stream = _epoch_indices(num, seed)
    while True:
      starts = _take(stream, self.batch_size) * self.seq_len
      idx = starts[:, None] + np.arange(self.window)
      yield {"tokens": host[idx].astype(np.int32)}

  def eval_chunks(self, max_batches: int | None = None) -> list[Batch]:
    num = (len(self.tokens) - 1) // self.seq_len
    b = self.batch_size
    if max_batches is not None:
      num = min(num, max_batches * b)
    starts = jnp.arange(num) * self.seq_len
    full = num // b
    chunks = []
    if full:
      w = self._windows(self.tokens, starts[:full * b])
      chunks.append({k: v.reshape((full, b) + v.shape[1:]) for k, v in w.items()})
    if num % b:
      w = self._windows(self.tokens, starts[full * b:])
      chunks.append({k: v[None] for k, v in w.items()})
    return chunks


@partial(jax.tree_util.register_dataclass, data_fields=[],
         meta_fields=["generate", "batch_size", "seed", "num_eval_batches"])
@dataclasses.dataclass(frozen=True)
class GeneratedSplit(Split):
  """Batches computed from the key alone (synthetic noise, no stored data).

  Attributes:
    generate: static function `(key, batch_size) -> batch`.
    batch_size: examples per batch.
    seed: seed of the host iterator's and the evaluation's keys.
    num_eval_batches: how many batches `eval_chunks` draws.
  """

  generate: Callable[[jax.Array, int], Batch]
  batch_size: int
  seed: int = 0
  num_eval_batches: int = 4

  def _sample(self, key: jax.Array) -> Batch:
    return self.generate(key, self.batch_size)

  def iterate(self, seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
    base = jax.random.PRNGKey(seed)
    for i in itertools.count():
      batch = self.sample(jax.random.fold_in(base, i))
      yield {k: np.asarray(v) for k, v in batch.items()}

  def eval_chunks(self, max_batches: int | None = None) -> list[Batch]:
    num = self.num_eval_batches
    if max_batches is not None:
      num = min(num, max_batches)
    return [self.stacked(jax.random.PRNGKey(self.seed), num)]


class Datasets(NamedTuple):
  """The train, valid and test splits of a task (a pytree)."""

  train: Split
  valid: Split
  test: Split

  def split(self, name: str) -> Split:
    """The split called `name` ('train', 'valid' or 'test')."""
    if name not in self._fields:
      raise ValueError(f"Unknown split {name!r}; use one of {self._fields}.")
    return getattr(self, name)


def array_datasets(splits: Mapping[str, Mapping[str, np.ndarray]],
                   batch_size: int, decode: Decode | None = None) -> Datasets:
  """`Datasets` of `ArraySplit`s from host arrays keyed by split name."""
  return Datasets(*(ArraySplit.from_numpy(splits[name], batch_size, decode)
                    for name in Datasets._fields))
