"""Data for tasks: offline loaders (scikit-learn, MNIST-1D, synthetic, stdlib
text), TFDS loaders (lazy), and device-resident splits that batch in jit."""

from tasks.data import arrays, images, mnist1d, sklearn, synthetic, text, tfds
from tasks.data.arrays import cache_dir
from tasks.data.splits import (ArraySplit, Batch, Datasets, GeneratedSplit,
                               SequenceSplit, Split, array_datasets,
                               stack_batches, stacked_spec)
from tasks.data.tfds import DatasetNotPreparedError, MissingExtraError

__all__ = [
    "ArraySplit", "Batch", "Datasets", "DatasetNotPreparedError",
    "GeneratedSplit", "MissingExtraError", "SequenceSplit", "Split",
    "array_datasets", "arrays", "cache_dir", "images", "mnist1d", "sklearn",
    "stack_batches", "stacked_spec", "synthetic", "text", "tfds",
]
