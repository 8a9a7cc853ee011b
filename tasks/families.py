"""Task families for meta-training: image MLPs, autoencoders, residual MLPs, patch
Transformers, recurrent language models, noisy quadratics, mixtures.

Each family's config is a `TaskConfig(static, dynamic)` (see `tasks.base`):

* `ImageMLPFamily`: static = dataset, width (log-uniform integer in
  [16, 256]), depth (1 to 4), activation, batch size, layer norm; dynamic =
  `init_scale` (log-uniform in [0.5, 2], multiplies the initial weights).
* `ImageAutoencoderFamily`: static = dataset, width, depth per side, latent
  width (log-uniform integer in [4, 16]), activation, batch size; dynamic =
  `init_scale`, as for the image MLPs.
* `ResidualMLPFamily`: static = dataset, width (log-uniform integer in
  [16, 128]), residual blocks (1 to 8), activation, batch size; dynamic =
  `init_scale`.
* `PatchTransformerFamily` (the digits): static = patch side (2 or 4), model
  width, heads, blocks (1 to 3), batch size; dynamic = `init_scale`.
* `RecurrentLMFamily` (the stdlib text): static = cell (LSTM or GRU), token
  level (byte or character), embedding and state widths (log-uniform), sequence
  length, batch size; dynamic = `init_scale`.
* `QuadraticFamily`: static = dimension, batch size; dynamic =
  `log10_condition` (uniform in [0, 4]), `noise_scale` (uniform in [0, 0.5]),
  `init_scale` and `seed` (uint32[2], draws the eigenbasis and the optimum).
* `MixtureFamily`: static = (member name, the member's static); dynamic = the
  member's.

A population shares the static part and vmaps the dynamic part. Get data
splits with `family.datasets(static)` (shared by the whole population) and
pass them to the jitted step as arguments:

  pop = family.sample_population(key, n)
  train = family.datasets(pop.static).train
  def step(cfg, params, opt_state, key, train):
    task = family.task(cfg)                # traced cfg.dynamic
    batch = train.sample(key)
    ...
  jax.jit(jax.vmap(step, in_axes=(0, 0, 0, 0, None)))(pop, ..., train)
"""

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tasks import models
from tasks.base import Task, TaskConfig, TaskFamily, key_seed
from tasks.data import images, text
from tasks.data.splits import Datasets, SequenceSplit
from tasks.quadratic import QuadraticTask, noise_datasets
from tasks.supervised import AutoencoderTask, LanguageModelTask, SupervisedTask


def _log_uniform(key: jax.Array, lo: float, hi: float) -> jax.Array:
  return jnp.exp(jax.random.uniform(key, (), jnp.float32, math.log(lo), math.log(hi)))


def _log_uniform_int(rng: np.random.Generator, lo: int, hi: int) -> int:
  """Integer in [lo, hi] whose log is uniform (endpoints as likely as inner)."""
  return int(np.clip(np.floor(np.exp(rng.uniform(np.log(lo), np.log(hi + 1)))), lo, hi))


def _raw_key(key: jax.Array) -> jax.Array:
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    return jax.random.key_data(key)
  return key


def _check(static: Any, static_type: type) -> None:
  if not isinstance(static, static_type):
    raise TypeError(f"Expected a config with {static_type.__name__} structure, "
                    f"got {type(static).__name__}.")


@dataclasses.dataclass(frozen=True)
class ImageMLPStatic:
  """Structure of an image MLP task (fixes shapes and the compiled program)."""

  dataset: str
  width: int
  depth: int
  activation: str
  batch_size: int
  layer_norm: bool = False


class ImageMLPFamily(TaskFamily):
  """MLP classifiers on image datasets, with sampled architecture and init."""

  name = "image_mlp"

  def __init__(self, datasets=("digits", "mnist1d"), widths=(16, 256),
               depths=(1, 4), activations=("relu", "gelu", "tanh", "silu", "elu"),
               batch_sizes=(32, 64, 128), init_scales=(0.5, 2.0),
               layer_norm=(False, True), data_dir: str | None = None,
               backend: str = "auto"):
    """Configures the distribution.

    Args:
      datasets: image dataset names (see `tasks.data.images.names()`; TFDS
        ones such as 'mnist_8x8' need the tfds extra).
      widths: (min, max) hidden width, log-uniform integer.
      depths: (min, max) number of hidden layers, uniform integer.
      activations: activation names to choose from.
      batch_sizes: batch sizes to choose from.
      init_scales: (min, max) weight-init multiplier, log-uniform.
      layer_norm: choices of whether hidden layers use LayerNorm.
      data_dir: TFDS data dir (TFDS datasets only).
      backend: TFDS read path.
    """
    for name in datasets:
      images.parse(name)
    self.dataset_names = tuple(datasets)
    self.widths, self.depths = tuple(widths), tuple(depths)
    self.activations = tuple(activations)
    for a in self.activations:
      models.get_activation(a)
    self.batch_sizes = tuple(batch_sizes)
    self.init_scales = tuple(init_scales)
    self.layer_norm = tuple(layer_norm)
    self._tfds = dict(data_dir=data_dir, backend=backend)
    self._data: dict[tuple[str, int], tuple[Datasets, int]] = {}

  def sample_static(self, key: jax.Array) -> ImageMLPStatic:
    rng = np.random.default_rng(key_seed(key))
    return ImageMLPStatic(
        dataset=str(rng.choice(self.dataset_names)),
        width=_log_uniform_int(rng, *self.widths),
        depth=int(rng.integers(self.depths[0], self.depths[1] + 1)),
        activation=str(rng.choice(self.activations)),
        batch_size=int(rng.choice(self.batch_sizes)),
        layer_norm=bool(rng.choice(self.layer_norm)))

  def sample_dynamic(self, key: jax.Array, static: ImageMLPStatic) -> dict[str, jax.Array]:
    del static
    return {"init_scale": _log_uniform(key, *self.init_scales)}

  def datasets(self, static: ImageMLPStatic) -> Datasets:
    """The (cached) data of a structure, shared by its whole population."""
    return self._load(static)[0]

  def _load(self, static: ImageMLPStatic) -> tuple[Datasets, int]:
    k = (static.dataset, static.batch_size)
    if k not in self._data:
      with jax.ensure_compile_time_eval():   # concrete arrays even when first built under jit
        self._data[k] = images.datasets(static.dataset, static.batch_size, **self._tfds)
    return self._data[k]

  def task(self, config: TaskConfig) -> SupervisedTask:
    _check(config.static, ImageMLPStatic)
    s = config.static
    data, classes = self._load(s)
    name = (f"image_mlp/{s.dataset}/{s.width}x{s.depth}/{s.activation}"
            f"{'/ln' if s.layer_norm else ''}/b{s.batch_size}")
    hidden, act, ln = (s.width,) * s.depth, s.activation, s.layer_norm
    return SupervisedTask(
        name, data, lambda x: models.MLP(hidden, classes, act, ln)(x),
        init_scale=config.dynamic["init_scale"])


@dataclasses.dataclass(frozen=True)
class ImageAutoencoderStatic:
  """Structure of an image autoencoder task."""

  dataset: str
  width: int
  depth: int
  latent: int
  activation: str
  batch_size: int


class ImageAutoencoderFamily(ImageMLPFamily):
  """MLP autoencoders on the same images: encoder of `depth` hidden layers of
  `width` to a `latent` bottleneck, mirrored decoder, mean squared reconstruction
  error. Minibatch-noisy regression of a kind the image MLPs are not, where a
  step-size controller tuned on classifiers can read noise as overshoot."""

  name = "image_autoencoder"

  def __init__(self, datasets=("digits", "mnist1d"), widths=(16, 128), depths=(1, 2),
               latents=(4, 16), activations=("relu", "gelu", "tanh"),
               batch_sizes=(32, 64, 128), init_scales=(0.5, 2.0),
               data_dir: str | None = None, backend: str = "auto"):
    """Configures the distribution.

    Args:
      datasets: image dataset names, as for `ImageMLPFamily`.
      widths: (min, max) hidden width, log-uniform integer.
      depths: (min, max) hidden layers on each side, uniform integer.
      latents: (min, max) bottleneck width, log-uniform integer.
      activations: activation names to choose from.
      batch_sizes: batch sizes to choose from.
      init_scales: (min, max) weight-init multiplier, log-uniform.
      data_dir: TFDS data dir (TFDS datasets only).
      backend: TFDS read path.
    """
    super().__init__(datasets, widths, depths, activations, batch_sizes, init_scales,
                     (False,), data_dir, backend)
    self.latents = tuple(latents)

  def sample_static(self, key: jax.Array) -> ImageAutoencoderStatic:
    mlp = super().sample_static(key)
    rng = np.random.default_rng(key_seed(jax.random.fold_in(key, 1)))
    return ImageAutoencoderStatic(mlp.dataset, mlp.width, mlp.depth,
                                  _log_uniform_int(rng, *self.latents), mlp.activation,
                                  mlp.batch_size)

  def task(self, config: TaskConfig) -> AutoencoderTask:
    _check(config.static, ImageAutoencoderStatic)
    s = config.static
    data = self._load(s)[0]
    name = (f"image_autoencoder/{s.dataset}/{s.width}x{s.depth}/z{s.latent}/"
            f"{s.activation}/b{s.batch_size}")
    hidden, latent, act = (s.width,) * s.depth, s.latent, s.activation
    return AutoencoderTask(name, data, lambda x: models.Autoencoder(hidden, latent, act)(x),
                           init_scale=config.dynamic["init_scale"])


@dataclasses.dataclass(frozen=True)
class ResidualMLPStatic:
  """Structure of a residual MLP task."""

  dataset: str
  width: int
  depth: int
  activation: str
  batch_size: int


class ResidualMLPFamily(ImageMLPFamily):
  """Residual MLPs with pre-LayerNorm blocks (`models.ResidualMLP`) on the same
  images: `depth` blocks at `width`, so depth adds no vanishing signal path."""

  name = "residual_mlp"

  def __init__(self, datasets=("digits", "mnist1d"), widths=(16, 128), depths=(1, 8),
               activations=("relu", "gelu", "tanh", "silu"), batch_sizes=(32, 64, 128),
               init_scales=(0.5, 2.0), data_dir: str | None = None, backend: str = "auto"):
    """Configures the distribution.

    Args:
      datasets: image dataset names, as for `ImageMLPFamily`.
      widths: (min, max) residual width, log-uniform integer.
      depths: (min, max) number of residual blocks, uniform integer.
      activations: activation names to choose from.
      batch_sizes: batch sizes to choose from.
      init_scales: (min, max) weight-init multiplier, log-uniform.
      data_dir: TFDS data dir (TFDS datasets only).
      backend: TFDS read path.
    """
    super().__init__(datasets, widths, depths, activations, batch_sizes, init_scales,
                     (False,), data_dir, backend)

  def sample_static(self, key: jax.Array) -> ResidualMLPStatic:
    mlp = super().sample_static(key)
    return ResidualMLPStatic(mlp.dataset, mlp.width, mlp.depth, mlp.activation,
                             mlp.batch_size)

  def task(self, config: TaskConfig) -> SupervisedTask:
    _check(config.static, ResidualMLPStatic)
    s = config.static
    data, classes = self._load(s)
    name = f"residual_mlp/{s.dataset}/{s.width}x{s.depth}/{s.activation}/b{s.batch_size}"
    width, depth, act = s.width, s.depth, s.activation
    return SupervisedTask(name, data,
                          lambda x: models.ResidualMLP(width, depth, classes, act)(x),
                          init_scale=config.dynamic["init_scale"])


@dataclasses.dataclass(frozen=True)
class PatchTransformerStatic:
  """Structure of a patch-Transformer task on the 8x8 digits."""

  patch: int
  d_model: int
  num_heads: int
  num_layers: int
  batch_size: int


class PatchTransformerFamily(TaskFamily):
  """Patch Transformers (`models.PatchTransformer`) classifying the 8x8 digits."""

  name = "patch_transformer"

  def __init__(self, patches=(2, 4), d_models=(16, 32, 48, 64), num_heads=(1, 2, 4),
               num_layers=(1, 3), batch_sizes=(32, 64, 128), init_scales=(0.5, 2.0)):
    """Configures the distribution.

    Args:
      patches: patch sides to choose from (divisors of 8).
      d_models: model widths to choose from (each divisible by every head count).
      num_heads: head counts to choose from.
      num_layers: (min, max) number of blocks, uniform integer.
      batch_sizes: batch sizes to choose from.
      init_scales: (min, max) weight-init multiplier, log-uniform.

    Raises:
      ValueError: a patch side that does not divide 8, or a width not divisible
        by a head count.
    """
    if any(8 % p for p in patches) or any(d % h for d in d_models for h in num_heads):
      raise ValueError(f"Patches {patches} must divide 8 and widths {d_models} must be "
                       f"divisible by every head count {num_heads}.")
    self.patches, self.d_models, self.num_heads = tuple(patches), tuple(d_models), tuple(
        num_heads)
    self.num_layers, self.batch_sizes = tuple(num_layers), tuple(batch_sizes)
    self.init_scales = tuple(init_scales)
    self._data: dict[int, Datasets] = {}

  def sample_static(self, key: jax.Array) -> PatchTransformerStatic:
    rng = np.random.default_rng(key_seed(key))
    return PatchTransformerStatic(
        patch=int(rng.choice(self.patches)), d_model=int(rng.choice(self.d_models)),
        num_heads=int(rng.choice(self.num_heads)),
        num_layers=int(rng.integers(self.num_layers[0], self.num_layers[1] + 1)),
        batch_size=int(rng.choice(self.batch_sizes)))

  def sample_dynamic(self, key: jax.Array,
                     static: PatchTransformerStatic) -> dict[str, jax.Array]:
    del static
    return {"init_scale": _log_uniform(key, *self.init_scales)}

  def datasets(self, static: PatchTransformerStatic) -> Datasets:
    """The (cached) digits of a batch size, shared by the whole population."""
    if static.batch_size not in self._data:
      with jax.ensure_compile_time_eval():   # concrete arrays even when first built under jit
        self._data[static.batch_size] = images.datasets("digits", static.batch_size)[0]
    return self._data[static.batch_size]

  def task(self, config: TaskConfig) -> SupervisedTask:
    _check(config.static, PatchTransformerStatic)
    s = config.static
    name = (f"patch_transformer/digits/p{s.patch}/d{s.d_model}h{s.num_heads}"
            f"l{s.num_layers}/b{s.batch_size}")
    return SupervisedTask(name, self.datasets(s), lambda x: models.PatchTransformer(
        10, s.patch, s.d_model, s.num_heads, s.num_layers)(x),
                          init_scale=config.dynamic["init_scale"])


@dataclasses.dataclass(frozen=True)
class RecurrentLMStatic:
  """Structure of a recurrent language-model task on the stdlib text."""

  cell: str
  level: str
  embed_dim: int
  hidden_size: int
  seq_len: int
  batch_size: int


class RecurrentLMFamily(TaskFamily):
  """LSTM and GRU language models (`models.RNNLM`) on the stdlib text, at the byte
  or character level (`tasks.data.text.streams`)."""

  name = "recurrent_lm"

  def __init__(self, cells=("lstm", "gru"), levels=("byte", "char"), embed_dims=(8, 64),
               hidden_sizes=(16, 128), seq_lens=(16, 32), batch_sizes=(8, 16, 32),
               init_scales=(0.5, 2.0), max_bytes: int = 1 << 20):
    """Configures the distribution.

    Args:
      cells: recurrent cells to choose from (`models.RNN_CELLS`).
      levels: token levels to choose from (`text.LEVELS`).
      embed_dims: (min, max) embedding width, log-uniform integer.
      hidden_sizes: (min, max) recurrent state width, log-uniform integer.
      seq_lens: sequence lengths to choose from.
      batch_sizes: batch sizes to choose from.
      init_scales: (min, max) weight-init multiplier, log-uniform.
      max_bytes: size of the text corpus.
    """
    for cell in cells:
      if cell not in models.RNN_CELLS:
        raise ValueError(f"Unknown recurrent cell {cell!r}; use one of {models.RNN_CELLS}.")
    for level in levels:
      text.vocab_size(level)
    self.cells, self.levels = tuple(cells), tuple(levels)
    self.embed_dims, self.hidden_sizes = tuple(embed_dims), tuple(hidden_sizes)
    self.seq_lens, self.batch_sizes = tuple(seq_lens), tuple(batch_sizes)
    self.init_scales, self.max_bytes = tuple(init_scales), max_bytes
    self._data: dict[tuple[str, int, int], Datasets] = {}

  def sample_static(self, key: jax.Array) -> RecurrentLMStatic:
    rng = np.random.default_rng(key_seed(key))
    return RecurrentLMStatic(
        cell=str(rng.choice(self.cells)), level=str(rng.choice(self.levels)),
        embed_dim=_log_uniform_int(rng, *self.embed_dims),
        hidden_size=_log_uniform_int(rng, *self.hidden_sizes),
        seq_len=int(rng.choice(self.seq_lens)), batch_size=int(rng.choice(self.batch_sizes)))

  def sample_dynamic(self, key: jax.Array, static: RecurrentLMStatic) -> dict[str, jax.Array]:
    del static
    return {"init_scale": _log_uniform(key, *self.init_scales)}

  def datasets(self, static: RecurrentLMStatic) -> Datasets:
    """The (cached) token windows of a structure, shared by its whole population."""
    k = (static.level, static.batch_size, static.seq_len)
    if k not in self._data:
      streams = text.streams(static.level, self.max_bytes)
      with jax.ensure_compile_time_eval():   # concrete arrays even when first built under jit
        self._data[k] = Datasets(*(SequenceSplit.from_numpy(streams[s], static.batch_size,
                                                            static.seq_len)
                                   for s in Datasets._fields))
    return self._data[k]

  def task(self, config: TaskConfig) -> LanguageModelTask:
    _check(config.static, RecurrentLMStatic)
    s = config.static
    name = (f"recurrent_lm/{s.cell}/{s.level}/e{s.embed_dim}h{s.hidden_size}/"
            f"t{s.seq_len}/b{s.batch_size}")
    vocab = text.vocab_size(s.level)
    return LanguageModelTask(name, self.datasets(s), lambda tokens: models.RNNLM(
        vocab, s.cell, s.embed_dim, s.hidden_size)(tokens),
                             init_scale=config.dynamic["init_scale"])


@dataclasses.dataclass(frozen=True)
class QuadraticStatic:
  """Structure of a quadratic task."""

  dim: int
  batch_size: int


class QuadraticFamily(TaskFamily):
  """Noisy quadratics of sampled dimension, conditioning and noise."""

  name = "quadratic"

  def __init__(self, dims=(8, 64), batch_sizes=(8,), log10_conditions=(0.0, 4.0),
               noise_scales=(0.0, 0.5), init_scales=(0.5, 2.0)):
    """Configures the distribution.

    Args:
      dims: (min, max) dimension, log-uniform integer.
      batch_sizes: noise batch sizes to choose from.
      log10_conditions: (min, max) log10 condition number, uniform.
      noise_scales: (min, max) gradient noise scale, uniform.
      init_scales: (min, max) standard deviation of the initial x, log-uniform.
    """
    self.dims = tuple(dims)
    self.batch_sizes = tuple(batch_sizes)
    self.log10_conditions = tuple(log10_conditions)
    self.noise_scales = tuple(noise_scales)
    self.init_scales = tuple(init_scales)

  def sample_static(self, key: jax.Array) -> QuadraticStatic:
    rng = np.random.default_rng(key_seed(key))
    return QuadraticStatic(dim=_log_uniform_int(rng, *self.dims),
                           batch_size=int(rng.choice(self.batch_sizes)))

  def sample_dynamic(self, key: jax.Array, static: QuadraticStatic) -> dict[str, jax.Array]:
    del static
    k_cond, k_noise, k_init, k_seed = jax.random.split(key, 4)
    return {
        "log10_condition": jax.random.uniform(k_cond, (), jnp.float32,
                                              *self.log10_conditions),
        "noise_scale": jax.random.uniform(k_noise, (), jnp.float32, *self.noise_scales),
        "init_scale": _log_uniform(k_init, *self.init_scales),
        "seed": _raw_key(k_seed),
    }

  def datasets(self, static: QuadraticStatic) -> Datasets:
    """Noise splits of a structure, shared by its whole population."""
    return noise_datasets(static.dim, static.batch_size)

  def task(self, config: TaskConfig) -> QuadraticTask:
    _check(config.static, QuadraticStatic)
    s, d = config.static, config.dynamic
    return QuadraticTask(f"quadratic/d{s.dim}/b{s.batch_size}", s.dim,
                         d["log10_condition"], d["seed"], d["noise_scale"],
                         s.batch_size, d["init_scale"])


@dataclasses.dataclass(frozen=True)
class MixtureStatic:
  """Structure of a mixture's task: the member family's name and its structure."""

  member: str
  static: Any


class MixtureFamily(TaskFamily):
  """Several families in one: a structure belongs to one member, drawn by share.

  A population still shares one structure (so it compiles once), and thus one
  member; meta-training on a mixture gives each member its own populations.
  `sample_structures(key, n)` gives member i round(n * share_i) of the `n`
  structures (largest remainders, at least one each where n allows), so a run's
  mix does not depend on luck; `sample_static` draws the member at random by
  share.
  """

  name = "mixture"

  def __init__(self, members: Mapping[str, TaskFamily],
               shares: Mapping[str, float] | None = None):
    """Configures the mixture.

    Args:
      members: name -> family; the names label the structures.
      shares: name -> positive weight (default: equal).

    Raises:
      ValueError: on no members, or shares that are not positive or name
        other families than `members`.
    """
    if not members:
      raise ValueError("A mixture needs at least one member family.")
    shares = dict(shares) if shares is not None else {k: 1.0 for k in members}
    if set(shares) != set(members):
      raise ValueError(f"Shares name {sorted(shares)} but the members are {sorted(members)}; "
                       "give one share per member.")
    if any(not v > 0 for v in shares.values()):
      raise ValueError(f"Shares must be positive, got {shares}.")
    self.members = dict(members)
    total = sum(shares.values())
    self.shares = {k: float(v) / total for k, v in shares.items()}

  def _member(self, static: MixtureStatic) -> TaskFamily:
    _check(static, MixtureStatic)
    if static.member not in self.members:
      raise ValueError(f"Unknown member {static.member!r}; this mixture has "
                       f"{sorted(self.members)}.")
    return self.members[static.member]

  def counts(self, n: int) -> dict[str, int]:
    """Structures per member out of `n`: largest-remainder rounding of the shares."""
    names = sorted(self.members)
    exact = {k: n * self.shares[k] for k in names}
    counts = {k: int(math.floor(v)) for k, v in exact.items()}
    if n >= len(names):   # every member gets one before any gets a second
      for k in names:
        if counts[k] == 0:
          counts[k] = 1
    while sum(counts.values()) > n:
      k = max((k for k in names if counts[k] > 1), key=lambda k: counts[k] - exact[k])
      counts[k] -= 1
    by_remainder = sorted(names, key=lambda k: counts[k] - exact[k])
    for k in by_remainder[:n - sum(counts.values())]:
      counts[k] += 1
    return counts

  def sample_structures(self, key: jax.Array, n: int) -> list[MixtureStatic]:
    out = []
    for i, (name, count) in enumerate(sorted(self.counts(n).items())):
      if count:
        sub = jax.random.fold_in(key, i)
        out += [MixtureStatic(name, s)
                for s in self.members[name].sample_structures(sub, count)]
    return out

  def sample_static(self, key: jax.Array) -> MixtureStatic:
    k_member, k_static = jax.random.split(key)
    names = sorted(self.members)
    rng = np.random.default_rng(key_seed(k_member))
    name = str(rng.choice(names, p=[self.shares[k] for k in names]))
    return MixtureStatic(name, self.members[name].sample_static(k_static))

  def sample_dynamic(self, key: jax.Array, static: MixtureStatic) -> dict[str, jax.Array]:
    return self._member(static).sample_dynamic(key, static.static)

  def datasets(self, static: MixtureStatic) -> Datasets:
    return self._member(static).datasets(static.static)

  def task(self, config: TaskConfig) -> Task:
    member = self._member(config.static)
    return member.task(TaskConfig(config.static.static, config.dynamic))


FAMILY_CLASSES = {"image_mlp": ImageMLPFamily, "image_autoencoder": ImageAutoencoderFamily,
                  "residual_mlp": ResidualMLPFamily,
                  "patch_transformer": PatchTransformerFamily,
                  "recurrent_lm": RecurrentLMFamily, "quadratic": QuadraticFamily}


def _one_family(spec: dict[str, Any]) -> TaskFamily:
  spec = dict(spec)
  name = spec.pop("name", "image_mlp")
  if name not in FAMILY_CLASSES:
    raise ValueError(f"Unknown task family {name!r}; use one of {sorted(FAMILY_CLASSES)} "
                     "or 'mixture'.")
  return FAMILY_CLASSES[name](**spec)


def _plain(spec: Any) -> Any:
  """A nested mapping (dict or ml_collections.ConfigDict) as plain dicts."""
  spec = spec.to_dict() if hasattr(spec, "to_dict") else spec
  return {k: _plain(v) for k, v in spec.items()} if isinstance(spec, Mapping) else spec


def from_spec(spec: Mapping[str, Any]) -> TaskFamily:
  """A family from its spec: {name, **kwargs}, or a mixture of such.

  A single family is {name: one of `FAMILY_CLASSES` ('image_mlp', 'image_autoencoder',
  'residual_mlp', 'patch_transformer', 'recurrent_lm', 'quadratic'), **kwargs}
  (name defaults to 'image_mlp'). A mixture is {name: 'mixture', members:
  {label: {name, share, **kwargs}}}: each member is a family spec plus its share.

  Raises:
    ValueError: an unknown family name, or a mixture without members or with
      other keys.
  """
  spec = _plain(spec)
  if spec.get("name") != "mixture":
    return _one_family(spec)
  unknown = set(spec) - {"name", "members"}
  if unknown or not spec.get("members"):
    raise ValueError(f"A mixture family takes 'name' and 'members' (label -> family spec "
                     f"with a 'share'); got keys {sorted(spec)}.")
  members, shares = {}, {}
  for label, member in spec["members"].items():   # fresh dicts (_plain): pop in place
    shares[label] = member.pop("share", 1.0)
    members[label] = _one_family(member)
  return MixtureFamily(members, shares)


def sample_task(spec: Mapping[str, Any], seed: int = 0) -> Task:
  """One task drawn from the family `spec` (see `from_spec`) with PRNGKey(seed).

  Registered as the task 'family_sample', so an evaluation can measure a learned
  optimizer on fresh draws from the distribution it was meta-trained on.
  """
  family = from_spec(spec)
  return family.task(family.sample(jax.random.PRNGKey(seed)))
