"""The recurrent, residual and patch-Transformer tasks: their other settings are
learnable, the language models train on another text, and the character
encoding round-trips."""

import jax
import numpy as np
import pytest

import tasks
from tasks.data import text
from tests.test_tasks_learnable import Recipe, check_learnable

OTHER_TEXT = ("It was the best of times, it was the worst of times, it was the age of "
              "wisdom, it was the age of foolishness, it was the epoch of belief. ") * 60


def test_characters_round_trip_and_other_characters_share_one_token():
  tokens = text.encode_chars("def f(x):\n\treturn x  # ok")
  assert tokens.max() < text.CHAR_VOCAB_SIZE - 1
  assert text.decode_chars(tokens) == "def f(x):\n\treturn x  # ok"
  assert list(text.encode_chars("aé€b")) == [text.CHARSET.index("a"), len(text.CHARSET),
                                             len(text.CHARSET), text.CHARSET.index("b")]
  with pytest.raises(ValueError, match="Unknown text level"):
    text.vocab_size("word")


def test_text_streams_split_another_text_into_disjoint_held_out_blocks():
  splits = text.streams("byte", text=OTHER_TEXT)
  assert sum(v.size for v in splits.values()) == len(OTHER_TEXT)
  assert splits["valid"].size and splits["test"].size
  chars = text.streams("char")
  assert {k: v.size for k, v in chars.items()} == {
      k: v.size for k, v in text.load_text().items()}


@pytest.mark.parametrize("name,level", [("text_lstm", "char"), ("text_gru", "byte")])
def test_language_models_learn_another_text(name, level):
  task = tasks.get(name, level=level, text_override=OTHER_TEXT, seq_len=24)
  assert task.name == f"{name}/{level}"
  check_learnable(task, Recipe(1e-2, 150, 2.0))


def test_gru_sequence_classifier_on_mnist1d_is_learnable():
  check_learnable(tasks.get("sequence_lstm", dataset="mnist1d", cell="gru"),
                  Recipe(1e-2, 150, 1.6))


def test_residual_mlp_on_mnist1d_and_the_4x4_patch_transformer_are_learnable():
  check_learnable(tasks.get("residual_mlp", dataset="mnist1d", depth=2),
                  Recipe(1e-2, 150, 1.6))
  check_learnable(tasks.get("digits_patch_transformer", patch=4), Recipe(1e-2, 150, 0.8))


@pytest.mark.slow
def test_residual_convnet_on_mnist1d_is_learnable():
  check_learnable(tasks.get("residual_convnet", dataset="mnist1d"),
                  Recipe(1e-2, 150, 1.0, fast_compile=False))


def test_unknown_cell_and_dataset_are_named():
  with pytest.raises(ValueError, match="Unknown recurrent cell 'rnn'"):
    tasks.get("sequence_lstm", cell="rnn").init(jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="Unknown offline dataset 'cifar'"):
    tasks.get("residual_mlp", dataset="cifar")


def test_recurrent_task_vmaps_over_seeds_under_jit():
  task = tasks.get("text_lstm", seq_len=8, hidden_size=16, embed_dim=8)
  batch = task.datasets.train.sample(jax.random.PRNGKey(0))
  params = jax.jit(jax.vmap(task.init))(jax.random.split(jax.random.PRNGKey(1), 3))
  losses = jax.jit(jax.vmap(lambda p: task.loss(p, jax.random.PRNGKey(0), batch)))(params)
  assert losses.shape == (3,) and np.all(np.isfinite(np.asarray(losses)))
  assert len(set(np.round(np.asarray(losses), 6))) == 3
