"""Every named task is learnable: Adam at a stated learning rate brings the
loss below a stated value within a stated number of steps.

Training runs as one jitted `lax.scan` over batches stacked on device
(`split.stacked`). The loss is the mean over 8 fixed batches of the stated split
(train by default: learnability is about optimization; the quadratic uses its
noise-free valid split), before and after training. TFDS tasks run on `tfds.testing.mock_data`
(random images/text), where learnable means memorizing 58 examples; they
live in test_tasks_learnable_tfds.py so that pytest-xdist's loadfile
scheduling can run the two halves on different workers.
"""

import dataclasses

import jax
import optax
import pytest
from jax import lax

import tasks


@dataclasses.dataclass(frozen=True)
class Recipe:
  learning_rate: float
  steps: int
  below: float  # the evaluated loss must end below this
  split: str = "train"
  kwargs: tuple = ()  # overrides passed to tasks.get
  fast_compile: bool = True  # convolutions run too slowly when compiled at -O0


RECIPES = {
    # offline
    "digits_mlp": Recipe(1e-2, 150, 0.3),
    "digits_convnet": Recipe(1e-2, 100, 0.6, fast_compile=False),
    "digits_autoencoder": Recipe(1e-2, 150, 0.05),
    "mnist1d_mlp": Recipe(3e-3, 200, 1.6),
    "mnist1d_convnet": Recipe(1e-2, 150, 1.3, fast_compile=False),
    "iris_mlp": Recipe(1e-2, 100, 0.35),
    "wine_mlp": Recipe(1e-2, 100, 0.2),
    "breast_cancer_mlp": Recipe(1e-2, 100, 0.2),
    "diabetes_mlp": Recipe(1e-2, 150, 0.8),
    "linnerud_mlp": Recipe(1e-2, 150, 1.0),
    "linear_regression": Recipe(3e-2, 150, 0.1),
    "logistic_regression": Recipe(3e-2, 150, 0.3),
    "quadratic": Recipe(1e-1, 200, 0.2, split="valid"),
    "text_transformer": Recipe(1e-2, 100, 3.0),
    "family_sample": Recipe(1e-2, 150, 0.5),   # seed 0 of the default image-MLP family
    "text_lstm": Recipe(1e-2, 150, 3.0),                               # bytes
    "text_gru": Recipe(1e-2, 150, 2.8, kwargs=(("level", "char"),)),  # characters
    "sequence_lstm": Recipe(1e-2, 150, 0.5),                   # digit rows
    "residual_mlp": Recipe(1e-2, 150, 0.2),
    "digits_patch_transformer": Recipe(1e-2, 150, 0.8),
    "residual_convnet": Recipe(1e-2, 80, 0.8, fast_compile=False),
    # TFDS, on mock data (64 examples per split, 58 of them train)
    "mnist_mlp": Recipe(1e-3, 60, 0.5, kwargs=(("batch_size", 16),)),
    "fashion_mnist_mlp": Recipe(1e-3, 60, 0.5, kwargs=(("batch_size", 16),)),
    "cifar10_8x8_mlp": Recipe(3e-3, 60, 0.5, kwargs=(("batch_size", 16),)),
    "cifar10_16x16_mlp": Recipe(3e-3, 60, 0.5, kwargs=(("batch_size", 16),)),
    "cifar10_convnet": Recipe(3e-3, 50, 1.8, kwargs=(("batch_size", 16),),
                              fast_compile=False),
    "lm1b_transformer": Recipe(1e-2, 60, 3.0, kwargs=(
        ("seq_len", 32), ("d_model", 16), ("num_heads", 2), ("num_layers", 1))),
    "tiny_shakespeare_transformer": Recipe(1e-2, 60, 3.0, kwargs=(
        ("seq_len", 32), ("d_model", 16), ("num_heads", 2), ("num_layers", 1))),
}


# Test-only: XLA's cheapest CPU backend optimization level compiles these
# small programs ~3x faster, and compiling is most of this file's runtime.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def train(task: tasks.Task, recipe: Recipe, seed: int = 0):
  """Adam in one jitted scan; returns (initial, final) loss on the recipe's
  split (mean over 8 batches drawn with a fixed key) and the train losses."""
  opt = optax.adam(recipe.learning_rate)

  def run(key, train_split, eval_split):
    params = task.init(key)
    batches = train_split.stacked(key, recipe.steps)

    def step(carry, inputs):
      params, opt_state = carry
      batch, k = inputs
      loss, grads = jax.value_and_grad(task.loss)(params, k, batch)
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    (final, _), losses = lax.scan(step, (params, opt.init(params)),
                                  (batches, jax.random.split(key, recipe.steps)))
    held = eval_split.stacked(jax.random.PRNGKey(seed + 1), 8)
    mean_loss = lambda p: lax.map(lambda b: task.loss(p, key, b), held).mean()
    return mean_loss(params), mean_loss(final), losses

  args = (jax.random.PRNGKey(seed), task.datasets.train,
          task.datasets.split(recipe.split))
  options = FAST_COMPILE if recipe.fast_compile else {}
  compiled = jax.jit(run).lower(*args).compile(compiler_options=options)
  return compiled(*args)


def check_learnable(task: tasks.Task, recipe: Recipe) -> None:
  spec = task.batch_spec
  assert jax.eval_shape(lambda k: task.datasets.train.stacked(k, 3),
                        jax.random.PRNGKey(0)) == tasks.stacked_spec(spec, 3)
  initial, final, losses = train(task, recipe)
  assert losses.shape == (recipe.steps,)
  assert initial > recipe.below, (task.name, float(initial), recipe)  # not trivial
  assert final < recipe.below, (task.name, float(final), recipe)


def test_every_named_task_has_a_recipe():
  assert set(RECIPES) == set(tasks.names())


@pytest.mark.parametrize("name", tasks.names(tfds=False))
def test_offline_task_is_learnable(name):
  recipe = RECIPES[name]
  check_learnable(tasks.get(name, **dict(recipe.kwargs)), recipe)
