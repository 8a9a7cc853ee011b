"""What an executor is, in two records: the architecture and what was set by hand.

`ExecutorConfig` holds the architecture only (a short list of fields, none a
catch-all dict); everything set by hand is `HandSet`, saved beside it in the
checkpoint. Checkpoints of format 2 kept one flat record: they are read by
splitting it, or refused, with a clear error, where they used an experiment
variant frozen away since. tests/data/format2_*_config.json are the shipped
optimizers' format-2 configs as they were before the split.
"""

import ast
import dataclasses
import json
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import learned_opt
from learned_opt import checkpoint, shipped
from learned_opt.executor import ExecutorConfig, HandSet, init_weights
from learned_opt.executor import config as config_lib
from tests.conftest import random_grads

DATA = pathlib.Path(__file__).resolve().parent / "data"
EXECUTOR_PACKAGE = pathlib.Path(learned_opt.__file__).resolve().parent / "executor"
MAX_FUNCTION_LINES = 80


def test_the_architecture_is_short_and_apart_from_what_was_set_by_hand():
  fields = dataclasses.fields(ExecutorConfig)
  assert len(fields) <= 17, [f.name for f in fields]
  assert not any("dict" in str(f.type).lower() for f in fields)
  hand = {f.name for f in dataclasses.fields(HandSet)}
  assert not hand & {f.name for f in fields}
  for name in ("step_size_adaptation", "step_size_deadband", "matrix_momentum_shift",
               "rule_gain_slopes", "rule_clip_knots", "rule_b2_decays", "normalizer_degree",
               "rule_node_degree", "readout_rows", "max_time"):
    assert name in hand, name


def test_no_function_in_the_executor_is_longer_than_80_lines():
  long = []
  for path in sorted(EXECUTOR_PACKAGE.glob("*.py")):
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        lines = node.end_lineno - node.lineno + 1
        if lines > MAX_FUNCTION_LINES:
          long.append(f"{path.name}:{node.name} ({lines} lines)")
  assert not long, long


def test_the_record_round_trips_through_the_checkpoint_json(tmp_path):
  config = ExecutorConfig(embed_dim=2, hidden=4, edge_hidden=1, normalizer="scaled",
                          clock_slopes=("node",))
  hand_set = HandSet(step_size_adaptation=0.1, step_size_target=-0.02, step_size_deadband=0.1,
                     matrix_momentum_shift=0.5, normalizer_degree=0.0, rule_node_degree=True,
                     rule_gain_slopes=True, rule_clip_knots=True, rule_b2_decays=("adam",),
                     readout_rows=0, max_time=500)
  path = checkpoint.save(tmp_path / "ckpt", init_weights(config, jax.random.PRNGKey(0)), config,
                         default_rule={"algorithm": "adam", "learning_rate": 1e-3},
                         hand_set=hand_set)
  _, meta = checkpoint.read_config(path)
  assert meta["format_version"] == checkpoint.FORMAT_VERSION == 3
  assert meta["hand_set"] == json.loads(json.dumps(hand_set.to_json()))
  assert "step_size_adaptation" not in meta["executor"]
  restored = checkpoint.restore(path)
  assert restored.config == config and restored.hand_set == hand_set
  assert hash(restored.hand_set) == hash(hand_set)
  assert learned_opt.checkpoint.load_optimizer(path).hand_set == hand_set


# Shipped names of the optimizers whose format-2 configs tests/data keeps (the 6-rule
# executor was shipped as 'executor' then).
FORMAT2_SHIPPED = {"executor": "executor6", "meta_executor": "meta_executor"}


def _format2_copy(name: str, tmp_path: pathlib.Path, edit=None) -> pathlib.Path:
  """The shipped optimizer's weights with its format-2 config (as it was before the split),
  `edit`ed; `name` as in tests/data."""
  data = json.loads((DATA / f"format2_{name}_config.json").read_text())
  assert data["format_version"] == 2
  if edit:
    edit(data["executor"])
  with shipped.source_path(f"shipped:{FORMAT2_SHIPPED[name]}") as source:
    step = checkpoint.read_config(source)[0]
    target = tmp_path / name / step.name
    shutil.copytree(step, target)
  config_file = next(p for p in (target / "config").iterdir() if p.is_file()
                     and p.name != "commit_success.txt")
  config_file.write_text(json.dumps(data))
  return tmp_path / name


@pytest.mark.parametrize("name", ["executor", "meta_executor"])
def test_a_format2_checkpoint_is_read_by_splitting_its_record(tmp_path, name):
  old = _format2_copy(name, tmp_path)
  flat = json.loads((DATA / f"format2_{name}_config.json").read_text())["executor"]
  restored = checkpoint.restore(old)
  for field in dataclasses.fields(HandSet):
    want = flat[field.name]
    got = getattr(restored.hand_set, field.name)
    assert (list(got) if isinstance(got, tuple) else got) == want, field.name
  assert restored.config.processor == ("row_column" if flat["node_messages"] else "per_edge")
  assert restored.config.normalizer == {"softplus": "exp", "abs": "scaled"}[flat["sign_gain"]]
  # The same optimizer as the shipped one, whatever format that one is in now.
  kwargs = {"algorithm": "adam", "learning_rate": 1e-3}
  params = {"w": jnp.ones((6, 4)) * 0.1, "b": jnp.zeros((4,))}
  updates = []
  for tx in (learned_opt.load(old, **kwargs),
             learned_opt.pretrained(FORMAT2_SHIPPED[name], **kwargs)):
    state = tx.init(params)
    for t in range(3):
      update, state = jax.jit(tx.update)(random_grads(jax.random.PRNGKey(0), params, t), state,
                                         params)
    updates.append(update)
  for a, b in zip(*(jax.tree.leaves(u) for u in updates)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("edit, match", [
    (lambda e: e.update(decay_form="abs"), r"decay_form='abs'"),
    (lambda e: e.update(sign_gain="softplus"), r"sign_gain='softplus' and "
                                                r"normalizer_constant='scaled'"),
    (lambda e: e.update(normalizer_constant="abs"), r"normalizer_constant='abs'"),
])
def test_a_frozen_away_variant_is_refused_clearly(tmp_path, edit, match):
  old = _format2_copy("executor", tmp_path, edit)
  with pytest.raises(learned_opt.CheckpointError, match=match) as error:
    learned_opt.load(old, algorithm="adam", learning_rate=1e-3)
  assert "learned_opt 0.2" in str(error.value)


def test_split_flat_routes_every_format2_field():
  flat = json.loads((DATA / "format2_meta_executor_config.json").read_text())["executor"]
  config, hand_set = config_lib.split_flat(flat)
  frozen = {"sign_gain", "normalizer_constant", "decay_form", "node_messages"}
  routed = ({f.name for f in dataclasses.fields(ExecutorConfig)}
            | {f.name for f in dataclasses.fields(HandSet)})
  assert set(flat) - frozen <= routed
  assert config.learned_step_size and hand_set.step_size_adaptation == 0.1
  with pytest.raises(ValueError, match="unknown keys"):
    config_lib.split_flat(dict(flat, node_messges=True))


def test_the_hand_set_record_needs_an_architecture_that_can_carry_it():
  with pytest.raises(ValueError, match="normalizer='scaled'"):
    config_lib.check_pair(ExecutorConfig(), HandSet(rule_node_degree=True))
  with pytest.raises(ValueError, match="no embedding"):
    config_lib.check_pair(ExecutorConfig(rules=("sgd", "adam")), HandSet(rule_b2_decays=("lamb",)))


def test_weights_moved_to_another_processor_keep_only_the_modules_it_runs(tmp_path):
  """An executor imitated from the multi-hop one into the 'row_column' processor:
  adapt_weights drops the multi-hop modules, and a checkpoint that still holds them
  is read (they are dropped) rather than called corrupt."""
  from learned_opt.executor import network  # pylint: disable=import-outside-toplevel
  source = ExecutorConfig(embed_dim=2, hidden=4, edge_hidden=1, processor="multi_hop")
  target = dataclasses.replace(source, processor="row_column")
  source_weights = init_weights(source, jax.random.PRNGKey(0))
  runs = set(init_weights(target, jax.random.PRNGKey(0)))
  extra = set(source_weights) - runs
  assert extra   # the multi-hop modules
  adapted = network.adapt_weights(source_weights, source, target)
  assert set(adapted) == runs
  checkpoint.save(tmp_path, {**adapted, **{k: source_weights[k] for k in extra}}, target)
  weights, config, _, _ = checkpoint.restore(tmp_path)
  assert config == target and set(weights) == runs
  for a, b in zip(jax.tree.leaves(weights), jax.tree.leaves(adapted)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
