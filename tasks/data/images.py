"""Image classification data by name, offline or through TFDS.

Names: 'digits' (scikit-learn, 8x8x1), 'mnist1d' (40-long signals) and the
TFDS sets 'mnist', 'fashion_mnist', 'cifar10', each also downsampled as
'<name>_8x8' and '<name>_16x16' (area averaging, as the learned-optimizer
literature does with its small image tasks).

TFDS images are held as uint8 at full size and normalized per batch by a
static `PixelNormalize` decode (4x less memory); downsampled ones are stored
normalized float32. Valid is the last 10% of TFDS's train split.
"""

import dataclasses
import re

import numpy as np

from tasks.data import mnist1d, sklearn, tfds
from tasks.data.arrays import SplitArrays
from tasks.data.splits import Datasets, Decode, array_datasets

TFDS_IMAGES = ("mnist", "fashion_mnist", "cifar10")
OFFLINE = ("digits", "mnist1d")
SIZES = (8, 16)


def names() -> list[str]:
  """Every image dataset name this module understands."""
  out = list(OFFLINE)
  for base in TFDS_IMAGES:
    out += [base] + [f"{base}_{s}x{s}" for s in SIZES]
  return out


def parse(name: str) -> tuple[str, int | None]:
  """'cifar10_8x8' -> ('cifar10', 8); 'mnist' -> ('mnist', None)."""
  m = re.fullmatch(r"(.+?)(?:_(\d+)x(\d+))?", name)
  base, h, w = m.groups()
  if base not in TFDS_IMAGES + OFFLINE or h != w or (h and int(h) not in SIZES):
    raise ValueError(f"Unknown image dataset {name!r}; use one of {names()}.")
  if h and base in OFFLINE:
    raise ValueError(f"{base!r} cannot be resized; use one of {names()}.")
  return base, int(h) if h else None


def needs_tfds(name: str) -> bool:
  return parse(name)[0] in TFDS_IMAGES


def area_matrix(size_in: int, size_out: int) -> np.ndarray:
  """`[out, in]` weights averaging the input cells each output cell covers."""
  edges_out = np.linspace(0.0, size_in, size_out + 1)
  lo = np.maximum(edges_out[:-1, None], np.arange(size_in)[None, :])
  hi = np.minimum(edges_out[1:, None], np.arange(size_in)[None, :] + 1)
  return np.clip(hi - lo, 0.0, None) * (size_out / size_in)


def area_resize(images: np.ndarray, size: int, chunk: int = 4096) -> np.ndarray:
  """Area-average `[n, h, w, c]` images to `[n, size, size, c]` float32."""
  a_h = area_matrix(images.shape[1], size).astype(np.float32)
  a_w = area_matrix(images.shape[2], size).astype(np.float32)
  out = [np.einsum("ih,nhwc,jw->nijc", a_h, images[i:i + chunk].astype(np.float32), a_w)
         for i in range(0, len(images), chunk)]
  return np.concatenate(out) if out else np.zeros((0, size, size, images.shape[3]),
                                                  np.float32)


@dataclasses.dataclass(frozen=True)
class PixelNormalize:
  """Static decode: uint8 pixels -> (x / 255 - mean) / std, per channel."""

  mean: tuple[float, ...]
  std: tuple[float, ...]
  key: str = "x"

  def __call__(self, batch):
    x = batch[self.key].astype(np.float32) * np.float32(1 / 255)
    x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
    return {**batch, self.key: x}


def _tfds_splits(base: str, data_dir: str | None, backend: str,
                 valid_fraction: float) -> SplitArrays:
  keys = ("image", "label")
  train = tfds.load(base, "train", keys, data_dir, backend)
  test = tfds.load(base, "test", keys, data_dir, backend)
  n = len(train["label"])
  cut = n - max(1, int(round(valid_fraction * n)))

  def pack(arrays, lo=None, hi=None):
    return {"x": np.asarray(arrays["image"][lo:hi], np.uint8),
            "y": np.asarray(arrays["label"][lo:hi], np.int32)}

  return {"train": pack(train, None, cut), "valid": pack(train, cut),
          "test": pack(test)}


def load(name: str, *, data_dir: str | None = None, backend: str = "auto",
         valid_fraction: float = 0.1) -> tuple[SplitArrays, Decode | None, int]:
  """Host arrays of an image dataset, the decode to apply, and the class count.

  Args:
    name: see `names()`.
    data_dir: TFDS data dir (TFDS names only).
    backend: TFDS read path, see `tasks.data.tfds.load`.
    valid_fraction: share of TFDS's train split held out as valid.
  """
  base, size = parse(name)
  if base == "digits":
    return sklearn.load_digits(), None, 10
  if base == "mnist1d":
    return mnist1d.load_mnist1d(), None, mnist1d.NUM_CLASSES
  splits = _tfds_splits(base, data_dir, backend, valid_fraction)
  x = splits["train"]["x"].astype(np.float64) / 255.0
  mean = tuple(float(m) for m in x.mean(axis=(0, 1, 2)))
  std = tuple(float(s) if s > 0 else 1.0 for s in x.std(axis=(0, 1, 2)))
  normalize = PixelNormalize(mean, std)
  if size is None:
    return splits, normalize, 10
  out = {}
  for split, arrays in splits.items():
    out[split] = normalize({"x": area_resize(arrays["x"], size), "y": arrays["y"]})
  return out, None, 10


def datasets(name: str, batch_size: int, **kwargs) -> tuple[Datasets, int]:
  """`Datasets` of an image dataset and its class count (kwargs: see `load`)."""
  splits, decode, classes = load(name, **kwargs)
  return array_datasets(splits, batch_size, decode), classes
