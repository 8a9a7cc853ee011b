"""Haiku models of the tasks: MLP, ConvNet, a small Transformer LM, an autoencoder.

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
  """Multi-head causal attention with head-leading rank-3 weights.

  Query/key/value weights are `[heads, d_model, head_dim]` and the output
  weight `[heads, head_dim, d_model]`.
  """

  def __init__(self, num_heads: int, head_dim: int, name: str | None = None):
    super().__init__(name=name)
    self.num_heads = num_heads
    self.head_dim = head_dim

  def __call__(self, x: jax.Array) -> jax.Array:
    d_model = x.shape[-1]
    init = hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")
    shape = (self.num_heads, d_model, self.head_dim)
    q, k, v = (jnp.einsum("btd,hdk->bhtk", x, hk.get_parameter(n, shape, init=init))
               for n in ("query", "key", "value"))
    logits = jnp.einsum("bhqk,bhsk->bhqs", q, k) / jnp.sqrt(self.head_dim)
    t = x.shape[1]
    mask = jnp.tril(jnp.ones((t, t), bool))
    logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    out = jnp.einsum("bhqs,bhsk->bhqk", jax.nn.softmax(logits, axis=-1), v)
    w_out = hk.get_parameter(
        "output", (self.num_heads, self.head_dim, d_model),
        init=hk.initializers.VarianceScaling(1.0 / self.num_heads, "fan_in",
                                             "truncated_normal"))
    return jnp.einsum("bhtk,hkd->btd", out, w_out)


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
      h = _layer_norm(f"ln_attn_{i}")(x)
      x = x + CausalSelfAttention(self.num_heads, self.d_model // self.num_heads,
                                  name=f"attn_{i}")(h)
      h = _layer_norm(f"ln_mlp_{i}")(x)
      h = jax.nn.gelu(hk.Linear(self.mlp_ratio * self.d_model, name=f"mlp_in_{i}")(h))
      x = x + hk.Linear(self.d_model, name=f"mlp_out_{i}")(h)
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
