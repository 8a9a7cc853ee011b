"""meta_train.ship: a checkpoint copied into place, with its edits recorded and checked."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_opt import checkpoint, shipped
from learned_opt.executor import encode
from meta_train import ship

SOURCE = str(shipped.shipped_path("meta_executor"))


def decays_at(weights, config, hand_set, clock=100):
  opt = checkpoint.load_optimizer(SOURCE, algorithm="adam", learning_rate=3e-3)
  _, coeffs = encode.hyper_coefficients(weights, config, hand_set, opt.rule_id,
                                        opt.hyper_features, jnp.asarray(clock))
  return np.asarray(coeffs.decays)


def test_plain_ship_copies_the_weights_and_config(tmp_path):
  target = ship.ship(SOURCE, "x", target_root=str(tmp_path / "copy"))
  (w0, c0, h0, _), (w1, c1, h1, _) = checkpoint.restore(SOURCE), checkpoint.restore(target)
  jax.tree.map(np.testing.assert_array_equal, w0, w1)
  assert c0 == c1 and h0 == h1 and target.name == checkpoint.read_config(SOURCE)[0].name


def test_edits_shift_a_decay_zero_a_module_and_set_fields(tmp_path):
  edits = ship.parse_edits(["step_size_target=-0.05", "max_time=500",
                            "direction_readout=True"], ["second:-2.0"], ["step_size_head"])
  target = ship.ship(SOURCE, "x", target_root=str(tmp_path / "edited"), edits=edits)
  (w0, c0, h0, _), (w1, c1, h1, meta) = checkpoint.restore(SOURCE), checkpoint.restore(target)
  assert h1.step_size_target == -0.05 and h1.max_time == 500   # the hand-set record
  assert c1.direction_readout and not c0.direction_readout     # the architecture
  assert h1.step_size_adaptation == h0.step_size_adaptation
  assert c1.hidden == c0.hidden and c1.rules == c0.rules
  assert meta["hand_set"]["step_size_target"] == -0.05
  assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(w1["step_size_head"]))
  before, after = decays_at(w0, c0, h0), decays_at(w1, c0, h0)
  np.testing.assert_allclose(after[[0, 2]], before[[0, 2]], rtol=1e-6)
  keep_before, keep_after = -np.log1p(-before[1]), -np.log1p(-after[1])
  assert 1.7 < keep_after - keep_before < 2.05   # -log(1 - a) grows by about 2
  recorded = meta["provenance"]["shipped_with"]
  assert recorded["decay_shifts"] == {"second": -2.0}
  assert recorded["fields"] == {"step_size_target": -0.05, "max_time": 500,
                                "direction_readout": True}
  assert recorded["zero_modules"] == ["step_size_head"]
  untouched = {k for k in w0 if k not in ("step_size_head", "hypernet_linear")}
  for k in untouched:
    jax.tree.map(np.testing.assert_array_equal, w0[k], w1[k])


def test_bad_edits_are_refused_before_anything_is_written(tmp_path):
  with pytest.raises(ValueError, match="FIELD=VALUE"):
    ship.parse_edits(["step_size_target"])
  with pytest.raises(ValueError, match="not a Python literal"):
    ship.parse_edits(["step_size_target=minus one"])
  with pytest.raises(ValueError, match="AVERAGE one of"):
    ship.parse_edits((), ["third:-1"])
  root = tmp_path / "kept"
  ship.ship(SOURCE, "x", target_root=str(root))
  for edits, error, match in (
      (ship.parse_edits(["step_size_goal=0.1"]), ValueError, "no field"),
      (ship.parse_edits((), (), ["no_such_net"]), KeyError, "no module 'no_such_net'")):
    with pytest.raises(error, match=match):
      ship.ship(SOURCE, "x", target_root=str(root), edits=edits)
    checkpoint.restore(root)   # the earlier copy is still there and loads


def test_ship_from_git_history_records_where_and_how(tmp_path):
  path = "learned_opt/weights/meta_executor"
  target = ship.ship(f"git:HEAD:{path}", "x", target_root=str(tmp_path / "from_git"),
                     edits=ship.parse_edits(["step_size_target=-0.05"]))
  (w0, _, _, _), (w1, _, h1, meta) = checkpoint.restore(SOURCE), checkpoint.restore(target)
  jax.tree.map(np.testing.assert_array_equal, w0, w1)
  assert h1.step_size_target == -0.05
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
  assert shipped_with["command"].startswith("python -m meta_train.ship --checkpoint=git:")
  assert len(shipped_with["source_commit"]) == 40 and shipped_with["git"]["commit"]
