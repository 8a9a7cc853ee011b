"""Real data that ships inside scikit-learn (no download ever).

`digits` are 8x8 grayscale images of handwritten digits (1797 examples). The
bundled tables: iris, wine and breast_cancer (classification), diabetes
(regression) and linnerud (3-output regression, 20 examples).
"""

import functools

import numpy as np

from tasks.data.arrays import (SplitArrays, optional_import, read_only, shuffle_split,
                               standardize)

CLASSIFICATION_TABLES = ("iris", "wine", "breast_cancer")
REGRESSION_TABLES = ("diabetes", "linnerud")
TABLES = CLASSIFICATION_TABLES + REGRESSION_TABLES


@functools.lru_cache(maxsize=None)
def load_digits(seed: int = 0) -> SplitArrays:
  """Digits as `x: float32[n, 8, 8, 1]` in [0, 1] and `y: int32[n]` (10 classes).

  Args:
    seed: seed of the shuffle before the 70/15/15 train/valid/test cut.
  """
  datasets = optional_import("sklearn.datasets", "scikit-learn")
  raw = datasets.load_digits()
  x = (raw.images / 16.0).astype(np.float32)[..., None]
  y = raw.target.astype(np.int32)
  return read_only(shuffle_split({"x": x, "y": y}, seed))


@functools.lru_cache(maxsize=None)
def load_table(name: str, seed: int = 0) -> SplitArrays:
  """A bundled table, features standardized with train statistics.

  Classification tables give `y: int32[n]`; regression tables give standardized
  `y: float32[n, outputs]`.

  Args:
    name: one of `TABLES`.
    seed: seed of the shuffle before the 70/15/15 train/valid/test cut.
  """
  if name not in TABLES:
    raise ValueError(f"Unknown scikit-learn table {name!r}; use one of {TABLES}.")
  datasets = optional_import("sklearn.datasets", "scikit-learn")
  raw = getattr(datasets, f"load_{name}")()
  x = np.asarray(raw.data, np.float32)
  if name in CLASSIFICATION_TABLES:
    y = np.asarray(raw.target, np.int32)
  else:
    y = np.asarray(raw.target, np.float32).reshape(len(x), -1)
  splits = standardize(shuffle_split({"x": x, "y": y}, seed), "x")
  if name in REGRESSION_TABLES:
    splits = standardize(splits, "y")
  return read_only(splits)


def num_classes(name: str) -> int:
  """Classes of a classification table or of 'digits'."""
  if name == "digits":
    return 10
  return max(int(s["y"].max()) for s in load_table(name).values()) + 1
