"""The TFDS path: real `tfds` API on `tfds.testing.mock_data`, and the errors
without the extra or without prepared data.

CI installs tensorflow-datasets (the `test` extra) but not TensorFlow, so the
`tfds.data_source` read path runs everywhere; the `tfds.load` path runs where
TensorFlow is installed (the `tfds` extra).
"""

import sys

import jax
import numpy as np
import pytest

import tasks
from tasks.data import tfds as tfds_data

BACKENDS = [
    "data_source",
    pytest.param("tf", marks=pytest.mark.skipif(
        not tfds_data.has_tensorflow(), reason="TensorFlow not installed "
        "(pip install -e \".[tfds]\" runs this backend)")),
]


@pytest.fixture
def tfds():
  return pytest.importorskip("tensorflow_datasets")


@pytest.mark.parametrize("backend", BACKENDS)
def test_image_task_on_mock_data(tfds, backend):
  with tfds.testing.mock_data(num_examples=40):
    task = tasks.get("mnist_mlp", batch_size=8, backend=backend)
  train = task.datasets.train
  assert train.num_examples == 36 and task.datasets.valid.num_examples == 4
  assert task.datasets.test.num_examples == 40
  assert train.arrays["x"].dtype == np.uint8  # full-size images stay uint8
  batch = train.sample(jax.random.PRNGKey(0))
  assert batch["x"].shape == (8, 28, 28, 1) and batch["x"].dtype == np.float32
  assert abs(float(batch["x"].mean())) < 1.0  # normalized per channel
  assert batch["y"].dtype == np.int32 and ((0 <= batch["y"]) & (batch["y"] < 10)).all()
  host = next(iter(task.datasets.test))
  assert host["x"].shape == (8, 28, 28, 1) and host["x"].dtype == np.float32


@pytest.mark.parametrize("backend", BACKENDS)
def test_text_task_on_mock_data(tfds, backend):
  with tfds.testing.mock_data(num_examples=30):
    task = tasks.get("lm1b_transformer", batch_size=4, seq_len=16, backend=backend)
  batch = task.datasets.train.sample(jax.random.PRNGKey(0))
  assert batch["tokens"].shape == (4, 17)
  assert len(task.datasets.valid.tokens) > 17


def test_downsampled_cifar_on_mock_data(tfds):
  with tfds.testing.mock_data(num_examples=20):
    task = tasks.get("cifar10_8x8_mlp", batch_size=4, backend="data_source")
  x = task.datasets.train.arrays["x"]
  assert x.shape == (18, 8, 8, 3) and x.dtype == np.float32
  np.testing.assert_allclose(np.asarray(x).mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
  assert task.batch_spec["x"].shape == (4, 8, 8, 3)


def test_family_with_a_tfds_dataset(tfds):
  family = tasks.families.ImageMLPFamily(datasets=("fashion_mnist_16x16",),
                                         backend="data_source")
  with tfds.testing.mock_data(num_examples=20):
    task = family.task(family.sample(jax.random.PRNGKey(0)))
  assert task.batch_spec["x"].shape[1:] == (16, 16, 1)


def test_missing_extra_says_which_extra_to_install(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
  with pytest.raises(tasks.MissingExtraError) as info:
    tasks.get("mnist_mlp")
  message = str(info.value)
  assert 'pip install -e ".[tfds]"' in message
  assert "download_and_prepare" in message
  assert isinstance(info.value, ImportError)


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_data_says_how_to_prepare_it(tfds, tmp_path, backend):
  del tfds
  with pytest.raises(tasks.DatasetNotPreparedError) as info:
    tasks.get("cifar10_convnet", data_dir=str(tmp_path), backend=backend)
  message = str(info.value)
  assert "'cifar10'" in message and str(tmp_path) in message
  assert 'pip install -e ".[tfds]"' in message
  assert "tfds.builder('cifar10').download_and_prepare()" in message
  assert "never downloads" in message
  assert not list(tmp_path.rglob("*.tfrecord*"))  # nothing was fetched


def test_bad_backend(tfds):
  del tfds
  with pytest.raises(ValueError, match="backend"):
    tfds_data.load("mnist", "train", ("image",), backend="torch")
