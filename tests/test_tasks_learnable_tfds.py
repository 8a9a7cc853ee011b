"""TFDS-backed named tasks are learnable on `tfds.testing.mock_data`.

Mock data is random, so learnable here means memorizing the 58 train
examples; the recipes (learning rate, steps, loss bound) are stated with the
offline ones in test_tasks_learnable.py.
"""

import pytest

import tasks
from tests.test_tasks_learnable import RECIPES, check_learnable


@pytest.mark.parametrize("name", tasks.names(tfds=True))
def test_tfds_task_is_learnable_on_mock_data(name):
  tfds = pytest.importorskip("tensorflow_datasets")
  recipe = RECIPES[name]
  with tfds.testing.mock_data(num_examples=64):
    task = tasks.get(name, backend="data_source", **dict(recipe.kwargs))
  check_learnable(task, recipe)
