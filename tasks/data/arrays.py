"""Host-side helpers shared by the loaders: splitting, scaling, the cache dir."""

import importlib
import os
import pathlib
from types import ModuleType
from collections.abc import Mapping, Sequence

import numpy as np

# split name -> array name -> numpy array with a leading example axis.
SplitArrays = dict[str, dict[str, np.ndarray]]

CACHE_ENV = "LEARNED_OPT_CACHE"


def optional_import(module: str, distribution: str) -> ModuleType:
  """Imports `module`, an optional dependency (the `data` extra), or says how to get it.

  Raises:
    ImportError: naming the package to install, e.g. `pip install 'learned-opt[data]'`.
  """
  try:
    return importlib.import_module(module)
  except ImportError as err:
    raise ImportError(
        f"This task's data needs {distribution!r}, which is not installed. Install the "
        f"package's data extra (pip install 'learned-opt[data]') or {distribution} "
        "itself.") from err


def cache_dir() -> pathlib.Path:
  """Where generated data is cached: $LEARNED_OPT_CACHE or ~/.cache/learned_opt."""
  path = os.environ.get(CACHE_ENV) or os.path.join("~", ".cache", "learned_opt")
  return pathlib.Path(path).expanduser()


def shuffle_split(arrays: Mapping[str, np.ndarray], seed: int,
                  fractions: Sequence[float] = (0.7, 0.15, 0.15)) -> SplitArrays:
  """Shuffles examples with `seed` and cuts them into train/valid/test."""
  n = len(next(iter(arrays.values())))
  perm = np.random.default_rng(seed).permutation(n)
  n_train = int(round(fractions[0] * n))
  n_valid = int(round(fractions[1] * n))
  cuts = {"train": perm[:n_train], "valid": perm[n_train:n_train + n_valid],
          "test": perm[n_train + n_valid:]}
  return {s: {k: v[idx] for k, v in arrays.items()} for s, idx in cuts.items()}


def standardize(splits: SplitArrays, key: str) -> SplitArrays:
  """Scales `key` to zero mean, unit variance per feature (train statistics)."""
  x = splits["train"][key].astype(np.float64)
  mean, std = x.mean(0), x.std(0)
  std = np.where(std > 0, std, 1.0)
  out = {}
  for name, arrays in splits.items():
    arrays = dict(arrays)
    arrays[key] = ((arrays[key] - mean) / std).astype(np.float32)
    out[name] = arrays
  return out


def read_only(splits: SplitArrays) -> SplitArrays:
  """Marks arrays read-only so cached copies cannot be changed by a caller."""
  for arrays in splits.values():
    for v in arrays.values():
      v.setflags(write=False)
  return splits
