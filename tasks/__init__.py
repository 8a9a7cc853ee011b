"""Inner problems that optimizers are trained, imitated and judged on.

  task = tasks.get("digits_mlp")            # tasks.names() lists them
  params = task.init(key)
  loss = task.loss(params, key, task.datasets.train.sample(key))
  stack = task.datasets.train.stacked(key, steps)   # [steps, batch, ...]
  task.evaluate(params, "valid")            # {'loss': ..., 'accuracy': ...}

  family = tasks.families.ImageMLPFamily()
  config = family.sample(key); task = family.task(config)

`tasks` never imports `learned_opt` or `meta_train`.
"""

from tasks import data, families, models
from tasks.base import Params, Task, TaskConfig, TaskFamily
from tasks.data.splits import (ArraySplit, Batch, Datasets, GeneratedSplit,
                               SequenceSplit, Split, stack_batches, stacked_spec)
from tasks.data.tfds import DatasetNotPreparedError, MissingExtraError
from tasks.registry import UnknownTaskError, get, names, register
from tasks import named  # registers the named tasks  # pylint: disable=wrong-import-position

__all__ = [
    "ArraySplit", "Batch", "DatasetNotPreparedError", "Datasets",
    "GeneratedSplit", "MissingExtraError", "Params", "SequenceSplit", "Split",
    "Task", "TaskConfig", "TaskFamily", "UnknownTaskError", "data", "families",
    "get", "models", "named", "names", "register", "stack_batches",
    "stacked_spec",
]
