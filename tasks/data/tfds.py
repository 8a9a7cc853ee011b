"""TensorFlow Datasets through the real `tfds` API, imported lazily.

The core install needs neither TensorFlow nor TFDS. With the `tfds` extra
(`pip install -e ".[tfds]"`) data is read with `tfds.load` (TensorFlow reads
the default TFRecord files). With `tensorflow-datasets` alone it is read with
`tfds.data_source` (random access, no TensorFlow; needs data prepared with
`file_format="array_record"`). Nothing is ever downloaded: every call passes
`download=False`, and a dataset that is not prepared raises
`DatasetNotPreparedError` saying how to prepare it.

Tests use `tfds.testing.mock_data`, which fakes the data on both paths.
"""

import importlib.util
from collections.abc import Sequence

import numpy as np

EXTRA_INSTALL = 'pip install -e ".[tfds]"'


class MissingExtraError(ImportError):
  """TensorFlow Datasets is not installed."""


class DatasetNotPreparedError(FileNotFoundError):
  """The TFDS dataset is not on disk (we never download it)."""


def import_tfds(dataset: str = "this dataset"):
  """Imports `tensorflow_datasets`, or says which extra to install."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise MissingExtraError(
        f"{dataset!r} is read with TensorFlow Datasets, which is not "
        f"installed. Install the extra: {EXTRA_INSTALL} (from a checkout) or "
        f"pip install \"learned-opt[tfds]\"; then prepare the data: "
        f"{_prepare_command(dataset)}") from e
  return tfds


def has_tensorflow() -> bool:
  """Whether TensorFlow is importable (decides `tfds.load` vs data_source)."""
  return importlib.util.find_spec("tensorflow") is not None


def _prepare_command(name: str) -> str:
  return (f"python -c \"import tensorflow_datasets as tfds; "
          f"tfds.builder('{name}').download_and_prepare()\" (needs internet "
          f"once; or `tfds build {name}`)")


def _not_prepared_message(name: str, split: str, data_dir: str | None,
                          backend: str, prepared: bool) -> str:
  where = data_dir or "$TFDS_DATA_DIR or ~/tensorflow_datasets"
  if prepared:  # on disk, but as TFRecords, which data_source cannot read
    return (f"TFDS dataset {name!r} is prepared in {where} as TFRecord files, "
            f"which only TensorFlow reads. Install the extra ({EXTRA_INSTALL}, "
            f"it brings tensorflow-cpu), or prepare it again with "
            f"tfds.builder('{name}').download_and_prepare("
            f"file_format='array_record').")
  return (f"TFDS dataset {name!r} (split {split!r}) is not prepared in "
          f"{where}, and learned_opt never downloads data. Install the extra "
          f"({EXTRA_INSTALL}) and prepare it once: {_prepare_command(name)}; "
          f"then set TFDS_DATA_DIR or pass data_dir=... to point at it "
          f"(read with {backend}).")


def _as_host(value) -> np.ndarray:
  if isinstance(value, (str, bytes)):
    return value.encode("utf-8") if isinstance(value, str) else value
  return np.asarray(value)


def _stack(values: list) -> np.ndarray:
  if values and isinstance(values[0], bytes):
    return np.array(values, dtype=object)
  return np.stack(values)


def _load_tf(tfds, name, split, data_dir, keys) -> dict[str, np.ndarray]:
  ds = tfds.load(name, split=split, data_dir=data_dir, download=False,
                 shuffle_files=False, try_gcs=False)
  chunks = list(tfds.as_numpy(ds.batch(4096)))
  return {k: np.concatenate([c[k] for c in chunks]) for k in keys}


def _load_data_source(tfds, name, split, data_dir, keys) -> dict[str, np.ndarray]:
  source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  values = {k: [] for k in keys}
  for start in range(0, len(source), 4096):
    idx = list(range(start, min(start + 4096, len(source))))
    try:  # batched reads where the source supports them
      items = source.__getitems__(idx)
    except (AttributeError, TypeError):  # e.g. the mock source of tfds 4.9.10
      items = [source[i] for i in idx]
    for item in items:
      for k in keys:
        values[k].append(_as_host(item[k]))
  return {k: _stack(v) for k, v in values.items()}


def _is_prepared(tfds, name: str, data_dir: str | None) -> bool:
  try:
    return bool(tfds.builder(name, data_dir=data_dir).is_prepared())
  except Exception:  # pylint: disable=broad-except
    return False


def load(name: str, split: str, keys: Sequence[str],
         data_dir: str | None = None, backend: str = "auto") -> dict[str, np.ndarray]:
  """All examples of one TFDS split as host arrays, without downloading.

  Args:
    name: TFDS name, e.g. 'mnist', 'cifar10', 'lm1b'.
    split: TFDS split string, slicing allowed ('train[:90%]').
    keys: features to keep (e.g. ('image', 'label') or ('text',)); text
      features come back as object arrays of bytes.
    data_dir: TFDS data dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).
    backend: 'tf' (tfds.load, needs TensorFlow), 'data_source' (tfds.data_source,
      array_record data, no TensorFlow) or 'auto' (tf when importable).

  Raises:
    MissingExtraError: tensorflow-datasets is not installed.
    DatasetNotPreparedError: the data is not on disk (in a readable format).
  """
  tfds = import_tfds(name)
  if backend == "auto":
    backend = "tf" if has_tensorflow() else "data_source"
  if backend not in ("tf", "data_source"):
    raise ValueError(f"backend must be 'auto', 'tf' or 'data_source', got {backend!r}.")
  loader = _load_tf if backend == "tf" else _load_data_source
  try:
    return loader(tfds, name, split, data_dir, tuple(keys))
  except tfds.core.DatasetNotFoundError:
    raise  # an unknown TFDS name: TFDS's own message lists close names
  except Exception as e:  # pylint: disable=broad-except
    prepared = _is_prepared(tfds, name, data_dir)
    if prepared and not (backend == "data_source"
                         and isinstance(e, NotImplementedError)):
      raise  # on disk and readable: a real error, not missing data
    raise DatasetNotPreparedError(
        _not_prepared_message(name, split, data_dir, backend, prepared)) from e


def load_text(name: str, splits: dict[str, str], data_dir: str | None = None,
              backend: str = "auto", feature: str = "text",
              max_bytes: int = 1 << 23) -> dict[str, np.ndarray]:
  """Byte streams (uint8) of a TFDS text dataset, examples joined by newlines.

  Args:
    name: TFDS name, e.g. 'lm1b' or 'tiny_shakespeare'.
    splits: our split name ('train', 'valid', 'test') -> TFDS split string.
    data_dir: TFDS data dir.
    backend: see `load`.
    feature: the text feature.
    max_bytes: each stream is cut to this length.
  """
  out = {}
  for ours, theirs in splits.items():
    texts = load(name, theirs, (feature,), data_dir, backend)[feature]
    joined = b"\n".join(t if isinstance(t, bytes) else str(t).encode("utf-8")
                        for t in texts)
    out[ours] = np.frombuffer(joined[:max_bytes], np.uint8).copy()
  return out
