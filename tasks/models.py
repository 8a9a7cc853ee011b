"""Haiku models of the tasks: MLPs (plain and residual with LayerNorm), ConvNets
(plain and residual), Transformers (a causal LM and a patch classifier on
images), recurrent networks (LSTM/GRU language models and sequence
classifiers) and an autoencoder.

Every weight follows the parameter-graph convention of `learned_opt.graph`:
the last two axes of a weight are (in, out) neurons and leading axes are edge
multiplicity (conv kernel positions; attention heads, which this Transformer
keeps as a leading axis of rank-3 weights). Biases and norm scales are rank 1.
"""

from collections.abc import Callable, Sequence

import haiku as hk
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
    "elu": jax.nn.elu,
    "sigmoid": jax.nn.sigmoid,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
  """The activation function called `name` (see `ACTIVATIONS`)."""
  if name not in ACTIVATIONS:
    raise ValueError(f"Unknown activation {name!r}; use one of {sorted(ACTIVATIONS)}.")
  return ACTIVATIONS[name]


def _layer_norm(name: str) -> hk.LayerNorm:
  return hk.LayerNorm(axis=-1, create_scale=True, create_offset=True, name=name)


class MLP(hk.Module):
  """Flattens its input, then Linear (LayerNorm) activation per hidden layer."""

  def __init__(self, hidden_sizes: Sequence[int], output_size: int,
               activation: str = "relu", layer_norm: bool = False,
               name: str | None = None):
    super().__init__(name=name)
    self.hidden_sizes = tuple(hidden_sizes)
    self.output_size = output_size
    self.act = get_activation(activation)
    self.layer_norm = layer_norm

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.reshape(x.shape[0], -1)
    for i, width in enumerate(self.hidden_sizes):
      x = hk.Linear(width, name=f"linear_{i}")(x)
      if self.layer_norm:
        x = _layer_norm(f"layer_norm_{i}")(x)
      x = self.act(x)
    return hk.Linear(self.output_size, name=f"linear_{len(self.hidden_sizes)}")(x)


class ConvNet(hk.Module):
  """Strided convolutions, global average pooling, a linear head.

  Works in 1, 2 or 3 spatial dimensions; an input without a channel axis
  (rank = spatial dims + 1, e.g. MNIST-1D `[batch, 40]`) gets one.
  """

  def __init__(self, channels: Sequence[int], output_size: int,
               spatial_dims: int = 2, kernel_size: int = 3, stride: int = 2,
               activation: str = "relu", name: str | None = None):
    super().__init__(name=name)
    self.channels = tuple(channels)
    self.output_size = output_size
    self.spatial_dims = spatial_dims
    self.kernel_size = kernel_size
    self.stride = stride
    self.act = get_activation(activation)

  def __call__(self, x: jax.Array) -> jax.Array:
    if x.ndim == self.spatial_dims + 1:
      x = x[..., None]
    for i, c in enumerate(self.channels):
      x = hk.ConvND(self.spatial_dims, c, self.kernel_size, stride=self.stride,
                    name=f"conv_{i}")(x)
      x = self.act(x)
    x = x.mean(axis=tuple(range(1, 1 + self.spatial_dims)))
    return hk.Linear(self.output_size, name="head")(x)


class CausalSelfAttention(hk.Module):
  """Multi-head self-attention (causal by default) with head-leading rank-3 weights.

  Query/key/value weights are `[heads, d_model, head_dim]` and the output
  weight `[heads, head_dim, d_model]`.
  """

  def __init__(self, num_heads: int, head_dim: int, causal: bool = True,
               name: str | None = None):
    super().__init__(name=name)
    self.num_heads = num_heads
    self.head_dim = head_dim
    self.causal = causal

  def __call__(self, x: jax.Array) -> jax.Array:
    d_model = x.shape[-1]
    init = hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")
    shape = (self.num_heads, d_model, self.head_dim)
    q, k, v = (jnp.einsum("btd,hdk->bhtk", x, hk.get_parameter(n, shape, init=init))
               for n in ("query", "key", "value"))
    logits = jnp.einsum("bhqk,bhsk->bhqs", q, k) / jnp.sqrt(self.head_dim)
    if self.causal:
      t = x.shape[1]
      mask = jnp.tril(jnp.ones((t, t), bool))
      logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    out = jnp.einsum("bhqs,bhsk->bhqk", jax.nn.softmax(logits, axis=-1), v)
    w_out = hk.get_parameter(
        "output", (self.num_heads, self.head_dim, d_model),
        init=hk.initializers.VarianceScaling(1.0 / self.num_heads, "fan_in",
                                             "truncated_normal"))
    return jnp.einsum("bhtk,hkd->btd", out, w_out)


def transformer_block(x: jax.Array, index: int, num_heads: int, mlp_ratio: int,
                      causal: bool) -> jax.Array:
  """One pre-LayerNorm block: x + attn(LN(x)), then x + W_out gelu(W_in LN(x)).

  Creates its modules in the calling module's scope, named by `index`.
  """
  d_model = x.shape[-1]
  h = _layer_norm(f"ln_attn_{index}")(x)
  x = x + CausalSelfAttention(num_heads, d_model // num_heads, causal,
                              name=f"attn_{index}")(h)
  h = _layer_norm(f"ln_mlp_{index}")(x)
  h = jax.nn.gelu(hk.Linear(mlp_ratio * d_model, name=f"mlp_in_{index}")(h))
  return x + hk.Linear(d_model, name=f"mlp_out_{index}")(h)


class TransformerLM(hk.Module):
  """A small pre-LayerNorm decoder-only Transformer over byte tokens."""

  def __init__(self, vocab_size: int = 256, d_model: int = 32,
               num_heads: int = 2, num_layers: int = 2, mlp_ratio: int = 4,
               max_len: int = 512, name: str | None = None):
    super().__init__(name=name)
    self.vocab_size = vocab_size
    self.d_model = d_model
    self.num_heads = num_heads
    self.num_layers = num_layers
    self.mlp_ratio = mlp_ratio
    self.max_len = max_len

  def __call__(self, tokens: jax.Array) -> jax.Array:
    t = tokens.shape[1]
    embed = hk.Embed(self.vocab_size, self.d_model, name="embed")
    pos = hk.get_parameter("position", (self.max_len, self.d_model),
                           init=hk.initializers.TruncatedNormal(0.02))
    x = embed(tokens) + pos[:t]
    for i in range(self.num_layers):
      x = transformer_block(x, i, self.num_heads, self.mlp_ratio, causal=True)
    x = _layer_norm("ln_final")(x)
    return hk.Linear(self.vocab_size, name="unembed")(x)


class Autoencoder(hk.Module):
  """MLP encoder to a bottleneck, mirrored MLP decoder; output shaped like x."""

  def __init__(self, hidden_sizes: Sequence[int], latent_size: int,
               activation: str = "relu", name: str | None = None):
    super().__init__(name=name)
    self.hidden_sizes = tuple(hidden_sizes)
    self.latent_size = latent_size
    self.activation = activation

  def __call__(self, x: jax.Array) -> jax.Array:
    flat = x.reshape(x.shape[0], -1)
    z = MLP(self.hidden_sizes, self.latent_size, self.activation, name="encoder")(flat)
    out = MLP(self.hidden_sizes[::-1], flat.shape[-1], self.activation,
              name="decoder")(z)
    return out.reshape(x.shape)


class ResidualMLP(hk.Module):
  """Flattens, projects to `width`, then `depth` pre-LayerNorm residual blocks
  x <- x + W2 act(W1 LN(x)) (hidden width `expansion * width`), a final
  LayerNorm and a linear head."""

  def __init__(self, width: int, depth: int, output_size: int, activation: str = "relu",
               expansion: int = 2, name: str | None = None):
    super().__init__(name=name)
    self.width, self.depth, self.output_size = width, depth, output_size
    self.act = get_activation(activation)
    self.expansion = expansion

  def __call__(self, x: jax.Array) -> jax.Array:
    x = hk.Linear(self.width, name="embed")(x.reshape(x.shape[0], -1))
    for i in range(self.depth):
      h = _layer_norm(f"layer_norm_{i}")(x)
      h = self.act(hk.Linear(self.expansion * self.width, name=f"block_{i}_in")(h))
      x = x + hk.Linear(self.width, name=f"block_{i}_out")(h)
    x = _layer_norm("layer_norm_final")(x)
    return hk.Linear(self.output_size, name="head")(x)


class ResidualConvNet(hk.Module):
  """A ConvNet of residual blocks: a stride-1 stem convolution to `channels[0]`;
  per stage i, a stride-2 convolution to `channels[i]` (not in the first stage)
  and `blocks` residual blocks x <- x + conv(act(conv(act(x)))); global average
  pooling and a linear head. In 1 or 2 spatial dimensions (an input without a
  channel axis gets one)."""

  def __init__(self, channels: Sequence[int], output_size: int, blocks: int = 1,
               spatial_dims: int = 2, kernel_size: int = 3, activation: str = "relu",
               name: str | None = None):
    super().__init__(name=name)
    self.channels, self.output_size, self.blocks = tuple(channels), output_size, blocks
    self.spatial_dims, self.kernel_size = spatial_dims, kernel_size
    self.act = get_activation(activation)

  def _conv(self, channels: int, name: str, stride: int = 1) -> hk.ConvND:
    return hk.ConvND(self.spatial_dims, channels, self.kernel_size, stride=stride, name=name)

  def __call__(self, x: jax.Array) -> jax.Array:
    if x.ndim == self.spatial_dims + 1:
      x = x[..., None]
    x = self._conv(self.channels[0], "stem")(x)
    for i, c in enumerate(self.channels):
      if i:
        x = self._conv(c, f"down_{i}", stride=2)(self.act(x))
      for j in range(self.blocks):
        h = self._conv(c, f"block_{i}_{j}_a")(self.act(x))
        x = x + self._conv(c, f"block_{i}_{j}_b")(self.act(h))
    x = self.act(x).mean(axis=tuple(range(1, 1 + self.spatial_dims)))
    return hk.Linear(self.output_size, name="head")(x)


class PatchTransformer(hk.Module):
  """A Vision-Transformer-style classifier: `patch` x `patch` patches of an image
  `[batch, H, W, C]` embedded linearly plus learned positions, `num_layers`
  non-causal pre-LayerNorm blocks (`transformer_block`), mean pooling over
  patches, a final LayerNorm and a linear head."""

  def __init__(self, output_size: int, patch: int = 2, d_model: int = 32,
               num_heads: int = 2, num_layers: int = 2, mlp_ratio: int = 2,
               name: str | None = None):
    super().__init__(name=name)
    self.output_size, self.patch = output_size, patch
    self.d_model, self.num_heads = d_model, num_heads
    self.num_layers, self.mlp_ratio = num_layers, mlp_ratio

  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    p = self.patch
    x = x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    x = hk.Linear(self.d_model, name="patch_embed")(x.reshape(b, (h // p) * (w // p), -1))
    pos = hk.get_parameter("position", x.shape[1:], init=hk.initializers.TruncatedNormal(0.02))
    x = x + pos
    for i in range(self.num_layers):
      x = transformer_block(x, i, self.num_heads, self.mlp_ratio, causal=False)
    x = _layer_norm("ln_final")(x.mean(axis=1))
    return hk.Linear(self.output_size, name="head")(x)


RNN_CELLS = ("lstm", "gru")


def rnn_core(cell: str, hidden_size: int) -> hk.RNNCore:
  """`hk.LSTM` or `hk.GRU` of `hidden_size` units (`cell` in `RNN_CELLS`)."""
  if cell == "lstm":
    return hk.LSTM(hidden_size, name="lstm")
  if cell == "gru":
    return hk.GRU(hidden_size, name="gru")
  raise ValueError(f"Unknown recurrent cell {cell!r}; use one of {RNN_CELLS}.")


def _unroll(cell: str, hidden_size: int, x: jax.Array) -> jax.Array:
  """Outputs `[batch, time, hidden]` of a recurrent core run over `x` `[batch, time, d]`
  from its zero state (`hk.dynamic_unroll`: one `lax.scan`)."""
  core = rnn_core(cell, hidden_size)
  out, _ = hk.dynamic_unroll(core, x, core.initial_state(x.shape[0]), time_major=False)
  return out


class RNNLM(hk.Module):
  """Token embedding, an LSTM or GRU over time, a linear readout to next-token logits."""

  def __init__(self, vocab_size: int, cell: str = "lstm", embed_dim: int = 32,
               hidden_size: int = 64, name: str | None = None):
    super().__init__(name=name)
    self.vocab_size, self.cell = vocab_size, cell
    self.embed_dim, self.hidden_size = embed_dim, hidden_size

  def __call__(self, tokens: jax.Array) -> jax.Array:
    x = hk.Embed(self.vocab_size, self.embed_dim, name="embed")(tokens)
    return hk.Linear(self.vocab_size, name="readout")(_unroll(self.cell, self.hidden_size, x))


class RNNClassifier(hk.Module):
  """Reads an input as `time_steps` steps of its remaining features (e.g. the rows of
  an image) with an LSTM or GRU; a linear head on the last step's output."""

  def __init__(self, output_size: int, time_steps: int, cell: str = "lstm",
               hidden_size: int = 64, name: str | None = None):
    super().__init__(name=name)
    self.output_size, self.time_steps = output_size, time_steps
    self.cell, self.hidden_size = cell, hidden_size

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.reshape(x.shape[0], self.time_steps, -1)
    out = _unroll(self.cell, self.hidden_size, x)
    return hk.Linear(self.output_size, name="head")(out[:, -1])
