"""Train a Flax NNX MLP on scikit-learn's digits with the shipped learned optimizer.

  python examples/train_flax_nnx.py [--steps 300]

In NNX the learned optimizer is the `tx` of an `nnx.Optimizer` like any optax
rule; `optimizer.update(model, grads, value=loss)` forwards `value=` (the
minibatch loss, which the learned optimizer reads) to it.
"""

import argparse

import jax
import numpy as np
import optax
from flax import nnx

import learned_opt
import tasks


class MLP(nnx.Module):
  """8x8x1 images -> 10 logits: a 64-64-10 MLP."""

  def __init__(self, rngs: nnx.Rngs):
    self.hidden = nnx.Linear(64, 64, rngs=rngs)
    self.out = nnx.Linear(64, 10, rngs=rngs)

  def __call__(self, images):
    x = images.reshape(images.shape[0], -1)
    return self.out(jax.nn.relu(self.hidden(x)))


def main(steps: int, batch_size: int = 128, seed: int = 0) -> None:
  # {"train" | "valid" | "test": {"x": float32[n, 8, 8, 1], "y": int32[n]}}, as numpy.
  data = tasks.data.sklearn.load_digits()
  x_train, y_train = data["train"]["x"], data["train"]["y"]

  model = MLP(nnx.Rngs(seed))
  optimizer = nnx.Optimizer(model, learned_opt.pretrained(), wrt=nnx.Param)

  @nnx.jit
  def train_step(model, optimizer, x, y):
    def loss_fn(model):
      return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads, value=loss)   # updates the model in place
    return loss

  rng = np.random.default_rng(seed)
  for step in range(steps):
    batch = rng.integers(0, len(x_train), batch_size)
    loss = train_step(model, optimizer, x_train[batch], y_train[batch])
    if step % max(1, steps // 10) == 0 or step == steps - 1:
      print(f"step {step:5d}  train loss {float(loss):.4f}")

  accuracy = nnx.metrics.Accuracy()
  accuracy.update(logits=model(data["valid"]["x"]), labels=data["valid"]["y"])
  print(f"valid accuracy {float(accuracy.compute()):.3f}")


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=300, help="Training steps.")
  parser.add_argument("--seed", type=int, default=0, help="Initialization and batches.")
  args = parser.parse_args()
  main(args.steps, seed=args.seed)
