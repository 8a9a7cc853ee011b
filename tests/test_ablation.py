"""meta_train.ablation: the table reads evaluation aggregates and meta-training curves."""

import json

import pytest

from meta_train import ablation


def _recipe_dir(root, name, meta_losses):
  stage = root / name / "meta_train"
  stage.mkdir(parents=True)
  lines = [json.dumps({"step": 10 * (i + 1), "meta_loss": v}) for i, v in enumerate(meta_losses)]
  (stage / "metrics.jsonl").write_text("\n".join(lines) + "\n")
  return str(root / name)


def _evaluation(root, candidates):
  aggregate = {ablation.candidate_of(d): dict(tasks=12, at_or_below=k, tasks_test=11,
                                              at_or_below_test=t, median_speedup=s,
                                              diverged_runs=0)
               for d, (k, t, s) in candidates.items()}
  (root / "val").mkdir()
  (root / "val" / "summary.json").write_text(json.dumps({"aggregate": aggregate, "tasks": []}))
  return str(root / "val")


def test_the_table_counts_each_row_and_times_it_to_the_first_rows_meta_loss(tmp_path):
  full = _recipe_dir(tmp_path, "full", [-1.0, -2.0, -3.0, -3.0])
  scratch = _recipe_dir(tmp_path, "scratch", [0.0, -1.0, -2.0, -2.5, -3.5, -3.5])
  never = _recipe_dir(tmp_path, "never", [0.0, 0.0])
  evaluation = _evaluation(tmp_path, {full: (5, 3, 1.2), scratch: (2, 1, 0.0), never: (0, 0, 0)})
  text = ablation.table([("full", full), ("scratch", scratch), ("never", never)],
                        [evaluation], window=2)
  lines = text.splitlines()
  assert lines[0].startswith("| row | val: train at or below")
  # full: running means -1, -1.5, -2.5, -3 -> final -3 reached at step 40.
  assert lines[2] == "| full | 5/12 | 3/11 | 1.20x | nan | nan | 0 | 40 | -3.000 | 40 |"
  # scratch: running means 0, -.5, -1.5, -2.25, -3, -3.5 -> -3 first at step 50.
  assert lines[3] == "| scratch | 2/12 | 1/11 | 0.00x | nan | nan | 0 | 60 | -3.500 | 50 |"
  assert lines[4].endswith("| not reached |")


def test_a_row_the_evaluation_lacks_says_how_to_add_it(tmp_path):
  full = _recipe_dir(tmp_path, "full", [-1.0])
  evaluation = _evaluation(tmp_path, {})
  with pytest.raises(KeyError, match="--config.optimizers"):
    ablation.table([("full", full)], [evaluation])


def test_a_resumed_run_that_logged_a_step_twice_counts_it_once(tmp_path):
  stage = tmp_path / "meta_train"
  stage.mkdir()
  records = [{"step": 10, "meta_loss": 1.0}, {"step": 20, "meta_loss": 5.0},
             {"step": 20, "meta_loss": 3.0}]
  (stage / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records))
  assert ablation.running_meta_loss(stage / "metrics.jsonl", 2) == [(10, 1.0), (20, 2.0)]


@pytest.mark.parametrize("spec", ["no_equals", "=dir", "name="])
def test_a_row_that_is_not_name_equals_workdir_is_refused(spec):
  with pytest.raises(ValueError, match="name=workdir"):
    ablation.parse_rows([spec])


def test_the_loss_ratios_are_medians_over_tasks_and_a_divergence_is_infinite():
  def task(target, test_target, loss, test_loss):
    return {"target": target, "test_target": test_target,
            "rows": [{"optimizer": "c", "final_train_loss": loss, "test_loss": test_loss},
                     {"optimizer": "other", "final_train_loss": 9.0, "test_loss": 9.0}]}
  summary = {"tasks": [task(1.0, 2.0, 0.5, 1.0), task(2.0, 1.0, 4.0, None),
                       task(1.0, 1.0, float("nan"), 3.0)]}
  train, test = ablation.median_loss_ratios(summary, "c")
  assert train == 2.0           # ratios 0.5, 2, inf
  assert test == 1.75           # ratios 0.5, 3 (the second task has no test loss)
