"""meta_train.evaluate_imitation: the report's structure, the rule's floors and the counts,
on a tiny config with the shipped executor."""

import copy
import json

import ml_collections
import numpy as np
import pytest

import tasks
from configs import evaluate_imitation as config_module
from meta_train import evaluate_imitation

NETWORK = "mlp 8"


def _tiny_config() -> ml_collections.ConfigDict:
  config = config_module.get_config()
  config.seeds = (1,)
  config.steps = 20
  config.teacher_forced_steps = 5
  config.base_task = dict(name="digits_mlp", kwargs=dict(hidden=(8,)))
  config.rules = {"adam": dict(learning_rate=1e-3)}
  config.networks = {NETWORK: dict(name="digits_mlp", kwargs=dict(hidden=(8,)))}
  config.floor_rules = ("adam",)
  config.floor_networks = (NETWORK,)
  config.floor_factors = (0.9, 1.1)
  return config


@pytest.fixture(scope="module")
def report(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("evaluate_imitation")
  return workdir, evaluate_imitation.evaluate(_tiny_config(), None, str(workdir))


def test_the_report_has_every_seed_rule_cell_and_floor(report):
  workdir, out = report
  assert json.loads((workdir / "results.json").read_text()) == json.loads(json.dumps(out))
  assert out["seeds"] == [1] and out["floor_factors"] == [0.9, 1.1]
  assert [run["seed"] for run in out["runs"]] == [1]
  for run in out["runs"]:
    (row,) = run["rules"]
    assert row["rule"] == "adam" and 0.9 < row["cosine_median"] <= 1.0
    # Adam gives the moment hints: the shipped executor predicts them closely.
    assert set(row["hints"]) == {"first_moment", "second_moment_rms"}
    assert all(0 <= v < 0.2 for v in row["hints"].values()), row["hints"]
    cell = row[NETWORK]
    assert cell["finite"] and cell["steps"] == 20
    assert cell["gap"] == pytest.approx((cell["executor"] - cell["rule"]) / cell["rule"])
    assert cell["floor"] >= 0 and cell["chaotic"] == (cell["floor"] > 0.05)
  text = (workdir / "summary.md").read_text()
  for needle in ("## Seed 1", "## The rule's own spread", "| adam | mlp 8 |",
                 "| rule adam |", "| seed 1 |", "| **all** |", "0.9, 1.1", "; v "):
    assert needle in text, needle


def test_the_counts_add_up_over_seeds(report):
  _, out = report
  config = _tiny_config()
  runs = [out["runs"][0], copy.deepcopy(out["runs"][0])]
  runs[1]["seed"] = 2
  moved = runs[1]["rules"][0][NETWORK]
  moved.update(gap=0.2, floor=0.5, chaotic=True)
  counts = evaluate_imitation.counts(config, runs)
  cells = [run["rules"][0][NETWORK] for run in runs]
  total = counts["total"]
  assert total["cells"] == 2 and total["chaotic"] + total["calm"] == total["cells"]
  assert total["within"] == sum(abs(c["gap"]) <= 0.05 for c in cells)
  assert total["chaotic"] == sum(c["chaotic"] for c in cells)
  assert total["calm_within"] == sum(abs(c["gap"]) <= 0.05 and not c["chaotic"]
                                     for c in cells)
  assert counts["per_rule"] == {"adam": total}
  # gap 20% with the rule's own spread 50%: the spread stands in for the 5% target.
  assert counts["per_seed"]["2"] == {"cells": 1, "within": 0, "chaotic": 1, "calm": 0,
                                     "calm_within": 0, "passes": 1}
  assert total["passes"] == sum(abs(c["gap"]) <= max(0.05, c["floor"]) for c in cells)
  assert sum(c["cells"] for c in counts["per_seed"].values()) == total["cells"]
  assert sum(c["within"] for c in counts["per_seed"].values()) == total["within"]
  text = evaluate_imitation.markdown(config, dict(out, runs=runs, counts=counts))
  assert "## Seed 2" in text and "| seed 2 | 1 | 0 | 1 | 0 | 0 | 1 |" in text
  assert "| adam | mlp 8 | " in text and "+20.0% (50.0% chaotic) |" in text


def test_the_rule_at_its_own_learning_rate_has_floor_zero():
  task = tasks.get("digits_mlp", hidden=(8,))
  kwargs = {"learning_rate": 1e-3}
  import learned_opt  # pylint: disable=import-outside-toplevel
  rule_loss, _ = evaluate_imitation.final_loss(
      task, learned_opt.algorithms.get("adam", **kwargs).as_optax(), 20, 0)
  assert evaluate_imitation.rule_floor(task, "adam", kwargs, 20, 0, rule_loss, (1.0,)) == 0.0
  with pytest.raises(ValueError, match="no learning_rate"):
    evaluate_imitation.rule_floor(task, "adam", {}, 20, 0, rule_loss, (1.0,))


def test_counts_without_floors_and_the_single_seed_option():
  cells = [{"gap": 0.01}, {"gap": -0.2}]
  assert evaluate_imitation.count(cells, 0.05) == {
      "cells": 2, "within": 1, "chaotic": None, "calm": None, "calm_within": None,
      "passes": None}
  config = _tiny_config()
  assert evaluate_imitation.run_seeds(config) == (1,)
  config.seed = 3
  assert evaluate_imitation.run_seeds(config) == (3,)
  assert config_module.get_config().seed is None
  assert evaluate_imitation.run_seeds(config_module.get_config()) == (0,)
  every = config_module.get_config("all_rules")
  assert len(every.rules) == 12 and len(every.networks) == 5
  assert evaluate_imitation.run_seeds(every) == (0, 1, 2)
  assert set(every.floor_rules) == set(every.rules) and every.floor_factors == (1.001,)
  with pytest.raises(ValueError, match="Unknown imitation evaluation variant"):
    config_module.get_config("nope")
  config.floor_networks = ("no such network",)
  with pytest.raises(ValueError, match="floor_networks names .*no such network"):
    evaluate_imitation.check_config(config)
  np.testing.assert_equal(evaluate_imitation.count([], 0.05)["cells"], 0)


def test_per_seed_reports_merge_into_one(report, tmp_path):
  workdir, out = report
  other = copy.deepcopy(out)
  other["runs"][0]["seed"] = 2
  (tmp_path / "seed2").mkdir()
  (tmp_path / "seed2" / "results.json").write_text(json.dumps(other))
  config = _tiny_config()
  merged = evaluate_imitation.merge(config, [str(tmp_path / "seed2"), str(workdir)],
                                    str(tmp_path / "all"))
  assert merged["seeds"] == [1, 2]
  assert merged["counts"] == evaluate_imitation.counts(config, out["runs"] + other["runs"])
  assert "## Seed 2" in (tmp_path / "all" / "summary.md").read_text()
  with pytest.raises(ValueError, match="repeat a seed"):
    evaluate_imitation.merge(config, [str(workdir), str(workdir)], str(tmp_path / "x"))
