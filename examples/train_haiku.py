"""Train a Haiku MLP on scikit-learn's digits with the shipped learned optimizer.

  python examples/train_haiku.py [--steps 300]

`learned_opt.pretrained()` is an ordinary optax GradientTransformation with no
hyperparameters to set: use it wherever you would use `optax.adam(...)`. It also
reads the minibatch loss (`tx.update(..., value=loss)`); pass it when you have it.
"""

import argparse

import haiku as hk
import jax
import numpy as np
import optax

import learned_opt
import tasks


def forward(images):
  """8x8x1 images -> 10 logits: a 64-64-10 MLP."""
  return hk.nets.MLP([64, 10])(images.reshape(images.shape[0], -1))


def main(steps: int, batch_size: int = 128, seed: int = 0) -> None:
  # {"train" | "valid" | "test": {"x": float32[n, 8, 8, 1], "y": int32[n]}}, as numpy.
  data = tasks.data.sklearn.load_digits()
  x_train, y_train = data["train"]["x"], data["train"]["y"]

  model = hk.without_apply_rng(hk.transform(forward))
  params = model.init(jax.random.PRNGKey(seed), x_train[:1])

  def loss_fn(params, x, y):
    logits = model.apply(params, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  tx = learned_opt.pretrained()
  opt_state = tx.init(params)

  @jax.jit
  def train_step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = tx.update(grads, opt_state, params, value=loss)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = np.random.default_rng(seed)
  for step in range(steps):
    batch = rng.integers(0, len(x_train), batch_size)
    params, opt_state, loss = train_step(params, opt_state, x_train[batch], y_train[batch])
    if step % max(1, steps // 10) == 0 or step == steps - 1:
      print(f"step {step:5d}  train loss {float(loss):.4f}")

  logits = model.apply(params, data["valid"]["x"])
  accuracy = float(np.mean(np.argmax(logits, -1) == data["valid"]["y"]))
  print(f"valid accuracy {accuracy:.3f}")


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=300, help="Training steps.")
  main(parser.parse_args().steps)
