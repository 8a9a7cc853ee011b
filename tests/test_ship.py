"""meta_train.ship: a checkpoint copied into place unchanged, with where it came from."""

import jax
import numpy as np
import pytest

from learned_opt import checkpoint, shipped
from meta_train import ship

SOURCE = str(shipped.shipped_path("meta_executor"))


def test_plain_ship_copies_the_weights_and_config(tmp_path):
  target = ship.ship(SOURCE, "x", target_root=str(tmp_path / "copy"))
  (w0, c0, h0, _), (w1, c1, h1, _) = checkpoint.restore(SOURCE), checkpoint.restore(target)
  jax.tree.map(np.testing.assert_array_equal, w0, w1)
  assert c0 == c1 and h0 == h1 and target.name == checkpoint.read_config(SOURCE)[0].name


def test_ship_has_no_flag_that_edits_behaviour():
  names = {flag.name for flag in ship.flags.FLAGS.get_key_flags_for_module(ship)}
  assert names == {"checkpoint", "name", "target"}


def test_ship_from_git_history_records_where_and_how(tmp_path):
  path = "learned_opt/weights/meta_executor"
  target = ship.ship(f"git:HEAD:{path}", "x", target_root=str(tmp_path / "from_git"))
  (w0, _, h0, _), (w1, _, h1, meta) = checkpoint.restore(SOURCE), checkpoint.restore(target)
  jax.tree.map(np.testing.assert_array_equal, w0, w1)
  assert h0 == h1
  recorded = meta["provenance"]["shipped_with"]
  assert recorded["source"] == path and len(recorded["source_commit"]) == 40
  assert recorded["command"].startswith("python") and recorded["git"]["commit"]
  assert "source_shipped_with" in recorded   # the shipped source's own ship record


@pytest.mark.parametrize("source, match", [
    ("git:HEAD", "needs a commit and a path"),
    ("git:no_such_commit:learned_opt/weights/executor", "is not a commit"),
    ("git:HEAD:no/such/path", "no 'no/such/path'"),
])
def test_bad_git_sources_are_refused(tmp_path, source, match):
  with pytest.raises(ValueError, match=match):
    ship.ship(source, "x", target_root=str(tmp_path / "never"))
  assert not (tmp_path / "never").exists()


def _strings(tree):
  if isinstance(tree, dict):
    for value in tree.values():
      yield from _strings(value)
  elif isinstance(tree, list):
    for value in tree:
      yield from _strings(value)
  elif isinstance(tree, str):
    yield tree


@pytest.mark.parametrize("name", shipped.pretrained_names())
def test_shipped_provenance_has_no_placeholder(name):
  _, meta = checkpoint.read_config(shipped.shipped_path(name))
  record = meta["provenance"]
  for text in _strings(record):
    assert "CONFIG" not in text and not text.endswith("=DIR"), text
  shipped_with = record["shipped_with"]
  if "recipe" in record:   # rebuilt by rerunning the recipe at its commit
    assert record["command"].startswith("python -m meta_train.recipe --config=")
    assert len(record["git"]["commit"]) == 40 and record["git"]["dirty"] is False
  else:                    # rebuilt from the repository's history
    assert shipped_with["command"].startswith("python -m meta_train.ship --checkpoint=git:")
    assert len(shipped_with["source_commit"]) == 40
  assert shipped_with["git"]["commit"]
