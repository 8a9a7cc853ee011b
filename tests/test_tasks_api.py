"""The tasks API: registry, Task contract, splits, stacked batches, evaluation."""

import ast
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tasks
from tasks.data.splits import ArraySplit, SequenceSplit


def test_names_are_sorted_and_split_by_tfds():
  names = tasks.names()
  assert names == sorted(names)
  offline, online = tasks.names(tfds=False), tasks.names(tfds=True)
  assert sorted(offline + online) == names and not set(offline) & set(online)
  for expected in ("digits_mlp", "mnist1d_mlp", "mnist1d_convnet", "quadratic",
                   "linear_regression", "logistic_regression", "text_transformer",
                   "digits_autoencoder"):
    assert expected in offline
  for expected in ("mnist_mlp", "fashion_mnist_mlp", "cifar10_8x8_mlp",
                   "cifar10_convnet", "lm1b_transformer"):
    assert expected in online


def test_unknown_name_lists_the_names():
  with pytest.raises(KeyError) as info:
    tasks.get("digits_mpl")
  message = str(info.value)
  assert "Unknown task 'digits_mpl'" in message
  assert "Did you mean 'digits_mlp'" in message
  for name in tasks.names():
    assert name in message
  assert isinstance(info.value, tasks.UnknownTaskError)


def test_register_refuses_duplicates():
  with pytest.raises(ValueError, match="already registered"):
    tasks.register("digits_mlp")(lambda: None)


def test_tasks_never_import_learned_opt_or_meta_train():
  root = pathlib.Path(tasks.__file__).parent
  for path in root.rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
      names = []
      if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        names = [node.module or ""]
      for name in names:
        assert not name.split(".")[0] in ("learned_opt", "meta_train"), path


@pytest.fixture(scope="module")
def digits():
  return tasks.get("digits_mlp", batch_size=32)


def test_task_contract(digits):
  key = jax.random.PRNGKey(0)
  assert digits.name == "digits_mlp" and "digits_mlp" in repr(digits)
  params = digits.init(key)
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(
      jnp.shape, digits.init(jax.random.PRNGKey(1)))
  spec = digits.batch_spec
  assert spec == {"x": jax.ShapeDtypeStruct((32, 8, 8, 1), jnp.float32),
                  "y": jax.ShapeDtypeStruct((32,), jnp.int32)}
  batch = digits.datasets.train.sample(key)
  assert jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), batch) == spec
  loss, metrics = jax.jit(digits.loss_and_metrics)(params, key, batch)
  assert loss.shape == () and np.isfinite(loss)
  assert 0.0 <= metrics["accuracy"] <= 1.0
  assert jnp.allclose(jax.jit(digits.loss)(params, key, batch), loss)
  # Initial loss is about log(10) for 10 balanced classes.
  assert 1.5 < float(loss) < 3.5


def test_host_iterators_yield_fixed_shape_numpy(digits):
  for name in ("train", "valid", "test"):
    it = iter(digits.datasets.split(name))
    for _ in range(12):  # more than one epoch of valid/test (270 examples)
      batch = next(it)
      assert set(batch) == {"x", "y"}
      assert isinstance(batch["x"], np.ndarray) and batch["x"].shape == (32, 8, 8, 1)
      assert batch["y"].dtype == np.int32 and batch["y"].shape == (32,)
  a, b = iter(digits.datasets.train), iter(digits.datasets.train)
  np.testing.assert_array_equal(next(a)["x"], next(b)["x"])  # seeded


def test_unknown_split_name(digits):
  with pytest.raises(ValueError, match="Unknown split"):
    digits.datasets.split("validation")


def test_stacked_batches_for_scan(digits):
  key = jax.random.PRNGKey(3)
  stack = digits.datasets.train.stacked(key, 5)
  assert stack["x"].shape == (5, 32, 8, 8, 1)
  assert tasks.stacked_spec(digits.batch_spec, 5)["x"].shape == (5, 32, 8, 8, 1)
  again = jax.jit(lambda s, k: s.stacked(k, 5))(digits.datasets.train, key)
  np.testing.assert_array_equal(stack["x"], again["x"])  # deterministic per key
  assert not np.array_equal(stack["x"][0], stack["x"][1])
  host = tasks.stack_batches(iter(digits.datasets.train), 4)
  assert host["x"].shape == (4, 32, 8, 8, 1) and isinstance(host["x"], np.ndarray)


def test_array_split_epochs_and_eval_chunks_cover_each_example_once():
  split = ArraySplit.from_numpy({"i": np.arange(10)}, batch_size=4)
  it = iter(split)
  first = np.concatenate([next(it)["i"] for _ in range(3)])[:10]
  assert sorted(first.tolist()) == list(range(10))  # epoch = permutation
  chunks = split.eval_chunks()
  assert [c["i"].shape for c in chunks] == [(2, 4), (1, 2)]
  assert np.concatenate([np.ravel(c["i"]) for c in chunks]).tolist() == list(range(10))
  assert [c["i"].shape for c in split.eval_chunks(max_batches=1)] == [(1, 4)]
  sample = split.sample(jax.random.PRNGKey(0))["i"]
  assert sample.shape == (4,) and ((0 <= sample) & (sample < 10)).all()
  with pytest.raises(ValueError):
    ArraySplit.from_numpy({"a": np.zeros(3), "b": np.zeros(4)}, 2)


def test_sequence_split_windows_are_contiguous():
  stream = np.arange(100, dtype=np.uint8)
  split = SequenceSplit.from_numpy(stream, batch_size=3, seq_len=7)
  batch = split.sample(jax.random.PRNGKey(0))["tokens"]
  assert batch.shape == (3, 8) and batch.dtype == jnp.int32
  np.testing.assert_array_equal(np.diff(np.asarray(batch), axis=1), 1)
  stack = split.stacked(jax.random.PRNGKey(1), 4)["tokens"]
  assert stack.shape == (4, 3, 8)
  np.testing.assert_array_equal(np.diff(np.asarray(stack), axis=-1), 1)
  host = next(iter(split))["tokens"]
  assert host.shape == (3, 8) and (host[:, 0] % 7 == 0).all()  # non-overlapping
  windows = np.concatenate([np.asarray(c["tokens"]).reshape(-1, 8)
                            for c in split.eval_chunks()])
  assert len(windows) == 99 // 7 and (windows[:, 0] == np.arange(14) * 7).all()


def test_evaluate_is_the_exact_mean_over_the_split():
  task = tasks.get("linear_regression", batch_size=64)
  params = task.init(jax.random.PRNGKey(0))
  split = task.datasets.valid
  whole = {k: v for k, v in split.arrays.items()}  # 307 examples: 4 batches + 51
  expected = float(task.loss(params, jax.random.PRNGKey(0), whole))
  result = task.evaluate(params, "valid")
  assert set(result) == {"loss"}
  assert result["loss"] == pytest.approx(expected, rel=1e-5)


def test_evaluate_reports_metrics(digits):
  params = digits.init(jax.random.PRNGKey(0))
  result = digits.evaluate(params, "test", max_batches=2)
  assert set(result) == {"loss", "accuracy"}
  assert 0.0 <= result["accuracy"] <= 1.0


def test_data_is_deterministic_under_a_seed():
  a, b = tasks.get("digits_mlp"), tasks.get("digits_mlp")
  np.testing.assert_array_equal(a.datasets.valid.arrays["x"], b.datasets.valid.arrays["x"])
  c = tasks.get("digits_mlp", seed=1)
  assert not np.array_equal(a.datasets.valid.arrays["y"], c.datasets.valid.arrays["y"])
  q1, q2 = tasks.get("quadratic"), tasks.get("quadratic")
  np.testing.assert_array_equal(q1.hessian, q2.hessian)


def test_overrides_reach_the_task():
  task = tasks.get("text_transformer", batch_size=4, seq_len=8)
  assert task.batch_spec["tokens"].shape == (4, 9)
  params = jax.eval_shape(task.init, jax.random.PRNGKey(0))
  shapes = [p.shape for p in jax.tree.leaves(params)]
  assert (2, 32, 16) in shapes  # attention weights: [heads, d_model, head_dim]
