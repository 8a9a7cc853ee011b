"""Offline data: scikit-learn, MNIST-1D (generated, cached, never online),
synthetic problems, the stdlib text corpus, image resizing."""

import random
import socket

import hypothesis
import hypothesis.strategies as st
import jax
import numpy as np
import pytest

from tasks.data import arrays, images, mnist1d, sklearn, synthetic, text

ORTHONORMALIZE = jax.jit(synthetic.orthonormalize)


def test_cache_dir_respects_the_env_var(monkeypatch, tmp_path):
  monkeypatch.setenv(arrays.CACHE_ENV, str(tmp_path / "c"))
  assert arrays.cache_dir() == tmp_path / "c"
  monkeypatch.delenv(arrays.CACHE_ENV)
  assert str(arrays.cache_dir()).endswith("/.cache/learned_opt")


@pytest.fixture
def no_network(monkeypatch):
  def refuse(*args, **kwargs):
    raise AssertionError("tried to use the network")
  monkeypatch.setattr(socket.socket, "connect", refuse)
  monkeypatch.setattr(socket, "create_connection", refuse)
  import requests  # mnist1d's download path uses requests.get
  monkeypatch.setattr(requests, "get", refuse)


def test_mnist1d_is_generated_offline_cached_and_deterministic(
    monkeypatch, tmp_path, no_network):
  monkeypatch.setenv(arrays.CACHE_ENV, str(tmp_path))
  np.random.seed(123)
  random.seed(123)
  before = (np.random.get_state()[1].copy(), random.getstate())
  first = mnist1d._load_or_generate(200, seed=7)  # pylint: disable=protected-access
  # The generator's global seeding does not leak into the caller's RNG state.
  np.testing.assert_array_equal(np.random.get_state()[1], before[0])
  assert random.getstate() == before[1]
  path = mnist1d.cache_path(200, 7)
  assert path.exists() and path.parent == tmp_path / "mnist1d"
  assert first["x"].shape == (160, 40) and first["x"].dtype == np.float32
  assert first["y_test"].shape == (40,) and first["y"].dtype == np.int32

  def fail(*args):
    raise AssertionError("regenerated despite the cache")
  monkeypatch.setattr(mnist1d, "_generate", fail)
  cached = mnist1d._load_or_generate(200, seed=7)  # pylint: disable=protected-access
  for k in first:
    np.testing.assert_array_equal(first[k], cached[k])


def test_mnist1d_regenerates_a_corrupt_cache(monkeypatch, tmp_path, no_network):
  monkeypatch.setenv(arrays.CACHE_ENV, str(tmp_path))
  path = mnist1d.cache_path(100, 3)
  path.parent.mkdir(parents=True)
  path.write_bytes(b"not an npz")
  out = mnist1d._load_or_generate(100, seed=3)  # pylint: disable=protected-access
  assert out["x"].shape == (80, 40)
  with np.load(path) as f:
    np.testing.assert_array_equal(f["x"], out["x"])


def test_mnist1d_splits():
  splits = mnist1d.load_mnist1d()
  assert {k: v["x"].shape for k, v in splits.items()} == {
      "train": (3500, 40), "valid": (500, 40), "test": (1000, 40)}
  assert set(np.unique(splits["train"]["y"])) == set(range(10))
  with pytest.raises(ValueError):
    splits["train"]["x"][0, 0] = 1.0  # cached arrays are read-only


def test_digits_and_tables():
  digits = sklearn.load_digits()
  assert digits["train"]["x"].shape == (1258, 8, 8, 1)
  assert sum(len(s["y"]) for s in digits.values()) == 1797
  assert 0.0 <= digits["train"]["x"].min() and digits["train"]["x"].max() <= 1.0
  for name in sklearn.TABLES:
    splits = sklearn.load_table(name)
    x = splits["train"]["x"]
    np.testing.assert_allclose(x.mean(0), 0.0, atol=1e-4)
    assert x.dtype == np.float32 and len(splits["test"]["x"]) > 0
    if name in sklearn.CLASSIFICATION_TABLES:
      assert splits["train"]["y"].dtype == np.int32
    else:
      assert splits["train"]["y"].ndim == 2
  assert sklearn.num_classes("iris") == 3 and sklearn.num_classes("wine") == 3
  with pytest.raises(ValueError, match="Unknown scikit-learn table"):
    sklearn.load_table("titanic")


def test_shuffle_split_is_deterministic():
  data = {"i": np.arange(100)}
  a, b = arrays.shuffle_split(data, 0), arrays.shuffle_split(data, 0)
  np.testing.assert_array_equal(a["test"]["i"], b["test"]["i"])
  c = arrays.shuffle_split(data, 1)
  assert not np.array_equal(a["test"]["i"], c["test"]["i"])
  joined = np.concatenate([a[s]["i"] for s in ("train", "valid", "test")])
  assert sorted(joined.tolist()) == list(range(100))


def test_quadratic_conditioning():
  key = jax.random.PRNGKey(0)
  for log10_condition in (0.0, 1.0, 3.0):
    h = np.asarray(synthetic.quadratic_matrix(key, 16, log10_condition), np.float64)
    np.testing.assert_allclose(h, h.T, atol=1e-5)
    eig = np.linalg.eigvalsh(h)
    assert eig.max() == pytest.approx(1.0, rel=1e-3)
    assert eig.max() / eig.min() == pytest.approx(10**log10_condition, rel=2e-2)
  q = np.asarray(synthetic.random_rotation(key, 8))
  np.testing.assert_allclose(q @ q.T, np.eye(8), atol=1e-5)


def test_regression_data():
  lin = synthetic.regression_data("linear", seed=0)
  assert lin["train"]["x"].shape == (1434, 16) and lin["train"]["y"].shape == (1434, 1)
  again = synthetic.regression_data("linear", seed=0)
  assert again["valid"]["y"] is lin["valid"]["y"] or np.array_equal(
      again["valid"]["y"], lin["valid"]["y"])
  log = synthetic.regression_data("logistic", seed=0)
  assert set(np.unique(log["train"]["y"])) == {0, 1}
  assert 0.3 < log["train"]["y"].mean() < 0.7
  x = synthetic.regression_data("linear", num_examples=20000, log10_condition=2.0,
                                seed=1)["train"]["x"]
  eig = np.linalg.eigvalsh(np.cov(x.T))
  assert 50 < eig.max() / eig.min() < 200
  with pytest.raises(ValueError):
    synthetic.regression_data("poisson")


def test_text_corpus():
  streams = text.load_text(max_bytes=256 * 1024)
  sizes = {k: len(v) for k, v in streams.items()}
  assert sum(sizes.values()) == 256 * 1024
  assert sizes["valid"] == sizes["test"] == 3 * 4096
  assert all(v.dtype == np.uint8 for v in streams.values())
  again = text.load_text(max_bytes=256 * 1024, seed=0)
  np.testing.assert_array_equal(streams["test"], again["test"])
  other = text.load_text(max_bytes=256 * 1024, seed=1)
  assert not np.array_equal(streams["test"], other["test"])
  assert "def " in text.decode(streams["train"][:20000])  # Python sources
  assert text.decode(text.encode("héllo")) == "héllo"


def test_area_resize():
  img = np.arange(32 * 32 * 3, dtype=np.float32).reshape(1, 32, 32, 3)
  small = images.area_resize(img, 8)
  blocks = img.reshape(1, 8, 4, 8, 4, 3).mean(axis=(2, 4))
  np.testing.assert_allclose(small, blocks, rtol=1e-5)
  mnist_like = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
  for size in (8, 16):
    out = images.area_resize(mnist_like, size)
    assert out.shape == (5, size, size, 1)
    np.testing.assert_allclose(out.mean(axis=(1, 2)), mnist_like.mean(axis=(1, 2)),
                               rtol=1e-4)
  flat = np.full((2, 28, 28, 1), 7, np.uint8)
  np.testing.assert_allclose(images.area_resize(flat, 8), 7.0, rtol=1e-5)


def test_image_names():
  assert images.parse("cifar10_8x8") == ("cifar10", 8)
  assert images.parse("fashion_mnist") == ("fashion_mnist", None)
  assert images.parse("digits") == ("digits", None)
  assert images.needs_tfds("mnist_16x16") and not images.needs_tfds("mnist1d")
  for bad in ("svhn", "cifar10_7x7", "cifar10_8x16", "digits_4x4"):
    with pytest.raises(ValueError):
      images.parse(bad)


@hypothesis.settings(deadline=None, max_examples=20)
@hypothesis.given(dim=st.integers(1, 64), seed=st.integers(0, 2**31 - 1))
def test_orthonormalize_is_the_q_of_qr_with_positive_diagonal(dim, seed):
  a = jax.random.normal(jax.random.PRNGKey(seed), (dim, dim))
  q = np.asarray(ORTHONORMALIZE(a), np.float64)
  reference, r = np.linalg.qr(np.asarray(a, np.float64))   # LAPACK, in float64
  reference = reference * np.sign(np.diagonal(r))[None, :]
  np.testing.assert_allclose(q @ q.T, np.eye(dim), atol=2e-5)
  np.testing.assert_allclose(q, reference, atol=5e-4)


def test_quadratic_hessian_needs_no_lapack_call():
  # jaxlib's batched LAPACK QR can deadlock its CPU thread pool under vmap (see
  # synthetic.orthonormalize); the Hessian is built from plain jax.numpy instead.
  hlo = jax.jit(jax.vmap(lambda k: synthetic.quadratic_matrix(k, 16, 2.0))).lower(
      jax.random.split(jax.random.PRNGKey(0), 3)).as_text()
  assert "custom_call" not in hlo and "lapack" not in hlo.lower()
