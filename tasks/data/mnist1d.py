"""MNIST-1D, generated locally with the `mnist1d` package and cached on disk.

`mnist1d.data.get_dataset` may download a pickle from the internet; we never
call it. We call the generator, `mnist1d.data.make_dataset(args)`, which only
uses numpy/scipy, seeded by `args.seed`. The generator seeds numpy's and
Python's *global* random state; we save and restore both around the call so
loading data does not disturb a caller's randomness.

The result is cached as `.npz` under `cache_dir()/mnist1d/` (see
`tasks.data.arrays.cache_dir`, env var LEARNED_OPT_CACHE), written atomically.
"""

import functools
import os
import pathlib
import random
import tempfile

import numpy as np

from tasks.data.arrays import SplitArrays, cache_dir, optional_import, read_only

SEQ_LEN = 40
NUM_CLASSES = 10


def _generate(num_samples: int, seed: int) -> dict[str, np.ndarray]:
  mnist1d_data = optional_import("mnist1d.data", "mnist1d")

  args = mnist1d_data.get_dataset_args()
  args.num_samples = num_samples
  args.seed = seed
  np_state, py_state = np.random.get_state(), random.getstate()
  try:
    raw = mnist1d_data.make_dataset(args)
  finally:
    np.random.set_state(np_state)
    random.setstate(py_state)
  return {"x": raw["x"].astype(np.float32), "y": raw["y"].astype(np.int32),
          "x_test": raw["x_test"].astype(np.float32),
          "y_test": raw["y_test"].astype(np.int32)}


def cache_path(num_samples: int, seed: int) -> pathlib.Path:
  return cache_dir() / "mnist1d" / f"mnist1d_n{num_samples}_seed{seed}.npz"


def _load_or_generate(num_samples: int, seed: int) -> dict[str, np.ndarray]:
  path = cache_path(num_samples, seed)
  if path.exists():
    try:
      with np.load(path) as f:
        return {k: f[k] for k in f.files}
    except (OSError, ValueError):
      pass  # a corrupt cache file is regenerated below
  arrays = _generate(num_samples, seed)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **arrays)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return arrays


@functools.lru_cache(maxsize=None)
def load_mnist1d(num_samples: int = 5000, seed: int = 42,
                 valid_fraction: float = 0.125) -> SplitArrays:
  """MNIST-1D as `x: float32[n, 40]`, `y: int32[n]` (10 classes).

  The generator's own 80/20 train/test cut is kept; the last
  `valid_fraction` of its train part becomes the valid split (with the
  defaults: 3500 train, 500 valid, 1000 test).

  Args:
    num_samples: examples generated in total.
    seed: the generator's seed (42 is the published dataset's).
    valid_fraction: share of the generator's train part held out as valid.
  """
  raw = _load_or_generate(num_samples, seed)
  n_valid = int(round(valid_fraction * len(raw["y"])))
  cut = len(raw["y"]) - n_valid
  return read_only({
      "train": {"x": raw["x"][:cut], "y": raw["y"][:cut]},
      "valid": {"x": raw["x"][cut:], "y": raw["y"][cut:]},
      "test": {"x": raw["x_test"], "y": raw["y_test"]},
  })
