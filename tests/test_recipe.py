"""meta_train.recipe: stages in order, references checked, and a kill in the last stage
resumed to the bit."""

import json

import jax
import numpy as np
import pytest

from configs import pretrained
from learned_opt import checkpoint
from meta_train import recipe
from meta_train import train as train_lib


def test_the_shipped_recipe_sets_nothing_by_hand_and_chains_its_stages():
  config = pretrained.get_config()
  recipe.check(config)
  assert config.imitate.hand_set.to_dict() == {}
  assert config.meta_train.init_from == "stage:imitate"
  assert config.meta_train.rule["algorithm"] == "hypergradient"
  assert config.imitate.executor.controller_hidden > 0


@pytest.mark.parametrize("variant", sorted(pretrained.VARIANTS))
def test_every_ablation_is_a_runnable_recipe_at_the_same_meta_training_budget(variant):
  config, main = pretrained.get_config(variant), pretrained.get_config()
  recipe.check(config)
  assert config.meta_train.num_steps == main.meta_train.num_steps or variant in ("smoke", "short")
  if variant == "scratch":   # fresh weights of the architecture the imitation would give
    assert config.meta_train.executor.to_dict() == main.imitate.executor.to_dict()


@pytest.mark.parametrize("ablation", ["", "no_controller", "scratch", "no_multi_hop",
                                      "cross_layer"])
def test_the_ablation_table_rows_share_the_short_budget_and_keep_their_ablation(ablation):
  row = pretrained.get_config(",".join(["short"] + [ablation] * bool(ablation)))
  alone, main = pretrained.get_config(ablation), pretrained.get_config()
  recipe.check(row)
  assert row.meta_train.num_steps == pretrained.SHORT_BUDGET["meta_train"]
  assert row.meta_train.num_steps < main.meta_train.num_steps
  assert row.stage_order == alone.stage_order
  if "imitate" in row.stage_order:
    assert row.imitate.num_steps == pretrained.SHORT_BUDGET["imitate"]
    assert row.imitate.executor.to_dict() == alone.imitate.executor.to_dict()


def test_an_unknown_variant_name_is_refused_with_the_known_ones():
  with pytest.raises(ValueError, match="no_controller"):
    pretrained.get_config("short,no_controler")


@pytest.mark.parametrize("edit, match", [
    (lambda c: setattr(c, "stage_order", ()), "stage_order is empty"),
    (lambda c: setattr(c, "stage_order", ("imitate", "nowhere")), "needs config.nowhere"),
    (lambda c: c.stage_kinds.update({"imitate": "distill"}), "use one of"),
    (lambda c: setattr(c, "stage_order", ("meta_train", "imitate")), "not an earlier stage"),
])
def test_a_recipe_that_does_not_fit_is_refused_before_it_runs(edit, match, tmp_path):
  config = pretrained.get_config("smoke")
  edit(config)
  with pytest.raises(ValueError, match=match):
    recipe.run(config, str(tmp_path))
  assert not any(tmp_path.iterdir())


def test_a_stage_reads_the_checkpoints_of_the_stage_it_names(tmp_path):
  config = pretrained.get_config("smoke")
  resolved = recipe.stage_config(config, "meta_train", str(tmp_path))
  assert resolved.init_from == str(recipe.checkpoints_of(tmp_path, "imitate"))
  assert config.meta_train.init_from == "stage:imitate"   # the recipe's own config is kept
  assert recipe.last_step(tmp_path / "none") is None
  (tmp_path / "c" / "3").mkdir(parents=True)
  (tmp_path / "c" / "7.orbax-checkpoint-tmp-1").mkdir()
  assert recipe.last_step(tmp_path / "c") == 3


class Killed(Exception):
  pass


@pytest.mark.slow
def test_killed_in_its_last_stage_and_run_again_it_ends_bit_identical(tmp_path, monkeypatch):
  config = pretrained.get_config("smoke")
  whole = recipe.run(config, str(tmp_path / "whole"))

  save = train_lib.save

  def save_then_die(manager, setup, state, step, metrics):
    save(manager, setup, state, step, metrics)
    if step == 2:   # a checkpoint of the last stage is complete; the process dies
      manager.wait_until_finished()
      raise Killed

  monkeypatch.setattr(train_lib, "save", save_then_die)
  with pytest.raises(Killed):
    recipe.run(config, str(tmp_path / "killed"))
  assert recipe.last_step(recipe.checkpoints_of(tmp_path / "killed", "meta_train")) == 2
  monkeypatch.setattr(train_lib, "save", save)
  resumed = recipe.run(config, str(tmp_path / "killed"))

  (w0, c0, h0, meta0), (w1, c1, h1, _) = checkpoint.restore(whole), checkpoint.restore(resumed)
  assert c0 == c1 and h0 == h1
  jax.tree.map(np.testing.assert_array_equal, w0, w1)
  first = checkpoint.restore(recipe.checkpoints_of(tmp_path / "whole", "imitate"))[0]
  assert any(np.any(np.asarray(a) != np.asarray(b))   # meta-training moved the weights
             for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(w0)))
  record = json.loads((tmp_path / "killed" / "recipe.json").read_text())
  assert record["stages"] == {"imitate": 2, "meta_train": 4}
  assert record["config"]["stage_order"] == ["imitate", "meta_train"] and record["git"]
  assert meta0["provenance"]["config"]["rule"]["algorithm"] == "hypergradient"
