"""meta_train.evaluate: records, tuned-Adam summary, plots and clear errors, on a tiny config."""

import json

import jax
import ml_collections
import numpy as np
import optax
import pytest

import learned_opt
import tasks
from configs import evaluate as evaluate_config
from learned_opt.executor import ExecutorConfig, init_weights
from meta_train import evaluate

STEPS = 30
VALIDATION_VARIANTS = tuple(evaluate_config.VALIDATION_SUITES)
SHIPPED = "pretrained:executor:adam:1e-3"


def _fresh_checkpoint(directory, step: int = 0) -> str:
  """An untrained executor (it starts as Adam) saved as a checkpoint directory."""
  config = ExecutorConfig(trained_options=(("adam", ("b1", "b2", "learning_rate")),))
  return learned_opt.checkpoint.save(directory, init_weights(config, jax.random.PRNGKey(0)),
                                     config, step=step,
                                     default_rule={"algorithm": "adam", "learning_rate": 1e-3})


@pytest.fixture(scope="module")
def learned(tmp_path_factory) -> str:
  """The shipped executor imitating Adam(1e-3); while this learned_opt refuses the
  shipped weights (an older checkpoint format awaiting re-imitation), a fresh
  executor checkpoint stands in ("checkpoint:PATH")."""
  try:
    evaluate.parse_optimizer(SHIPPED)
    return SHIPPED
  except learned_opt.CheckpointError:
    return "checkpoint:" + _fresh_checkpoint(tmp_path_factory.mktemp("fresh"))


def test_long_horizon_is_ten_meta_training_horizons():
  from configs import meta_train  # pylint: disable=import-outside-toplevel
  training = meta_train.get_config()
  assert evaluate_config.META_TRAIN_HORIZON == (
      training.truncation_length * training.num_truncations), (
          "configs/evaluate.py's META_TRAIN_HORIZON no longer equals configs/meta_train.py's "
          "episode length")
  config = evaluate_config.get_config()
  assert config.long_horizon.steps == 10 * evaluate_config.META_TRAIN_HORIZON
  config.meta_train_horizon = 7
  assert config.long_horizon.steps == 70


def test_variants_share_the_protocol_and_an_unknown_one_is_named():
  reporting = evaluate_config.get_config()
  assert evaluate_config.get_config("reporting").to_dict() == reporting.to_dict()
  assert set(reporting.tasks) == set(evaluate_config.reporting_suite())
  assert [spec for spec, _ in reporting.baselines] == ["optax:adam", "optax:contrib.muon"]
  protocol = ("seed", "baselines", "learning_rates", "final_fraction", "log_points",
              "divergence_factor", "eval_batches", "optimizers")
  for variant in evaluate_config.VARIANTS:
    config = evaluate_config.get_config(variant)
    same = {k: config[k] for k in protocol if variant != "reporting_v1" or k != "baselines"}
    assert same == {k: reporting[k] for k in same}, variant
    has_long_run = variant.startswith("reporting") or variant == "long_horizon"
    assert (config.long_horizon is None) == (not has_long_run), variant
  long_run = evaluate_config.get_config("long_horizon")
  assert not long_run.tasks and long_run.long_horizon.steps == 10 * 5000
  quick = evaluate_config.get_config("quick")
  assert (quick.num_seeds, quick.steps, len(quick.tasks)) == (1, 300, 3)
  with pytest.raises(ValueError, match="validation11.*known variants: reporting, "
                     "reporting_v1, quick, family, validation, validation2"):
    evaluate_config.get_config("validation11")


def test_reporting_v1_is_the_first_suite_against_tuned_adam():
  v1 = evaluate_config.get_config("reporting_v1")
  assert set(v1.tasks) == set(evaluate_config.reporting_suite_v1())
  assert len(v1.tasks) == 16 and "mlp_256x4_digits" in v1.tasks
  assert [spec for spec, _ in v1.baselines] == ["optax:adam"]
  assert tuple(v1.baselines[0][1]) == evaluate_config.LEARNING_RATES


def test_the_reporting_suite_spans_every_kind_offline_with_held_out_data():
  suite = evaluate_config.reporting_suite()
  names = [e["name"] for e in suite.values()]
  assert len(suite) >= 16 and set(names) <= set(tasks.names(tfds=False))
  for kind in ("digits_mlp", "digits_convnet", "residual_convnet", "text_transformer",
               "digits_patch_transformer", "text_lstm", "text_gru", "sequence_lstm",
               "residual_mlp", "digits_autoencoder", "linear_regression", "quadratic",
               "breast_cancer_mlp"):
    assert kind in names, kind
  levels = {e["kwargs"].get("level", "byte") for e in suite.values()
            if e["name"] in ("text_lstm", "text_gru")}
  assert levels == {"byte", "char"}
  assert sum(e["name"] != "quadratic" for e in suite.values()) >= 10
  steps = [e.get("steps", evaluate_config.get_config().steps) for e in suite.values()]
  assert any(3000 <= s <= 5000 for s in steps)


def test_the_config_flag_passes_the_variant():
  from absl import flags  # pylint: disable=import-outside-toplevel
  from ml_collections import config_flags  # pylint: disable=import-outside-toplevel
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config", flag_values=values)
  values(["prog", "--config=configs/evaluate.py:validation7"])
  assert values.config.to_dict() == evaluate_config.get_config("validation7").to_dict()


@pytest.mark.parametrize("variant", VALIDATION_VARIANTS)
def test_a_validation_suite_shares_no_task_with_the_test_suite(variant):
  validation = evaluate_config.get_config(variant)
  assert validation.long_horizon is None
  for test_suite in (evaluate_config.reporting_suite(), evaluate_config.reporting_suite_v1()):
    assert not _specs(validation.tasks.to_dict()) & _specs(test_suite)
    assert not set(validation.tasks) & set(test_suite)
  assert {e["name"] for e in validation.tasks.values()} <= set(tasks.names())


def test_the_validation_and_sealed_suites_share_no_task():
  suites = [suite() for suite in evaluate_config.VALIDATION_SUITES.values()]
  assert len(suites) == 10
  suites.append(evaluate_config.sealed_suite())
  for i, first in enumerate(suites):
    for second in suites[i + 1:]:
      assert not _specs(first) & _specs(second)
      assert not set(first) & set(second)


@pytest.mark.parametrize("variant", ["validation8", "validation9", "validation10", "sealed"])
def test_the_new_suites_have_12_buildable_tasks_of_every_new_kind(variant):
  config = evaluate_config.get_config(variant)
  assert len(config.tasks) == 12 and config.long_horizon is None
  names = {e["name"] for e in config.tasks.values()}
  assert {"residual_convnet", "text_transformer", "digits_patch_transformer",
          "sequence_lstm", "residual_mlp"} <= names
  assert names & {"text_lstm", "text_gru"}
  built, skipped = evaluate.build_tasks(evaluate.task_entries(config))
  assert len(built) == 12 and not skipped


def test_the_sealed_suite_is_disjoint_from_the_reporting_suites_and_was_run_once():
  import pathlib  # pylint: disable=import-outside-toplevel
  sealed = evaluate_config.sealed_suite()
  for other in (evaluate_config.reporting_suite(), evaluate_config.reporting_suite_v1()):
    assert not _specs(sealed) & _specs(other) and not set(sealed) & set(other)
  results = pathlib.Path(__file__).resolve().parents[1] / "results"
  runs = sorted(str(p.relative_to(results)) for p in results.rglob("*sealed*"))
  assert runs == ["pretrained/sealed.md"], runs   # the final recipe candidate's, once


def _specs(suite: dict) -> set:
  """(task name, its keyword overrides) for every entry of a suite."""
  return {(e["name"], json.dumps(dict(e.get("kwargs", {})), sort_keys=True))
          for e in suite.values()}


def _tiny_config(learned_spec: str):
  config = evaluate_config.get_config()
  config.num_seeds = 2
  config.steps = STEPS
  config.learning_rates = (1e-3, 1e-2)
  config.baselines = (("optax:adam", (1e-3, 1e-2)),)
  config.optimizers = (learned_spec,)
  config.tasks = {
      "iris": dict(name="iris_mlp"),
      "mlp_16": dict(name="digits_mlp", kwargs=dict(hidden=(16,))),
  }
  config.long_horizon = None
  config.log_points = 1000        # every step is logged
  config.eval_batches = 2
  config.test_curve_points = 0    # one scan per run; the `run` fixture records curves
  return config


@pytest.fixture(scope="module")
def run(tmp_path_factory, learned):
  workdir = tmp_path_factory.mktemp("evaluate")
  config = _tiny_config(learned)
  config.test_curve_points = 10
  summary = evaluate.evaluate(config, str(workdir))
  records = [json.loads(line) for line in (workdir / "results.jsonl").read_text().splitlines()]
  return workdir, summary, records


def test_writes_records_summary_and_plots(run, learned):
  workdir, summary, records = run
  labels = {"iris", "mlp_16"}
  # 2 tasks x (2 Adam learning rates + the learned optimizer) x 2 seeds.
  assert len(records) == 2 * 3 * 2
  assert {r["task"] for r in records} == labels
  for r in records:
    assert r["curve"]["step"] == list(range(1, r["steps"] + 1))
    assert all(np.isfinite(v) for v in r["curve"]["train_loss"])
    for key in ("initial_train_loss", "final_train_loss", "final_valid_loss",
                "final_test_loss", "wall_time_per_step_s"):
      assert np.isfinite(r[key]) and r[key] > 0, (key, r[key])
    assert r["final_train_loss"] == r["curve"]["train_loss"][-1]
    assert not r["diverged"]
  assert json.loads((workdir / "summary.json").read_text())["tasks"]
  text = (workdir / "summary.md").read_text()
  for needle in ("## iris", "## mlp_16", "Aggregate", learned, "lr=0.01"):
    assert needle in text
  pngs = sorted(p.name for p in (workdir / "plots").glob("*.png"))
  assert pngs == sorted(["overview.png", "iris.png", "mlp_16.png"])
  for name in pngs:
    assert (workdir / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _mean_curve(records, task, optimizer, setting):
  rows = [r for r in records if (r["task"], r["optimizer"], r["setting"]) ==
          (task, optimizer, setting)]
  assert len(rows) == 2
  return np.mean([r["curve"]["train_loss"] for r in rows], axis=0)


def test_tuned_is_argmin_and_steps_match_the_curves(run, learned):
  _, summary, records = run
  for t in summary["tasks"]:
    finals = {}
    for r in records:
      if r["task"] == t["task"] and r["optimizer"] == "optax:adam":
        finals.setdefault(r["setting"], []).append(r["final_train_loss"])
    assert t["baseline_setting"] == min(finals, key=lambda s: np.mean(finals[s]))
    assert t["target"] == pytest.approx(np.mean(finals[t["baseline_setting"]]), rel=1e-12)
    rows = {row["optimizer"]: row for row in t["rows"]}
    assert list(rows) == ["optax:adam", learned]
    assert rows["optax:adam"]["speedup"] == 1.0
    for spec, row in rows.items():
      curve = _mean_curve(records, t["task"], spec, row["setting"])
      below = np.flatnonzero(curve <= t["target"])
      expected = int(below[0]) + 1 if below.size else None
      assert row["steps_to_target"] == expected, (t["task"], spec)
      if expected:
        assert row["speedup"] == pytest.approx(t["baseline_steps"] / expected)
      assert row["at_or_below"] == (row["final_train_loss"] <= t["target"])
  agg = summary["aggregate"][learned]
  assert agg["tasks"] == 2 and agg["runs"] == 2 * 2 and agg["diverged_runs"] == 0
  assert summary["aggregate"]["optax:adam"]["fraction_at_or_below"] == 1.0


def test_test_curves_are_recorded_plotted_and_leave_the_training_run_unchanged(run):
  _, summary, records = run
  for r in records:   # iris and digits both hold out test data; STEPS // 10 per segment
    assert r["curve"]["test_step"] == [3 * k for k in range(1, 11)]
    assert len(r["curve"]["test_loss"]) == 10 and all(np.isfinite(r["curve"]["test_loss"]))
  for t in summary["tasks"]:
    for row in t["rows"]:
      picked = [r for r in records if r["task"] == t["task"]
                and r["optimizer"] == row["optimizer"] and r["setting"] == row["valid_setting"]]
      np.testing.assert_allclose(row["curve"]["test_mean"],
                                 np.mean([r["curve"]["test_loss"] for r in picked], 0))
  # Recording the curve runs the scan in segments: the training losses are the same.
  task = tasks.get("iris_mlp")
  keys = jax.random.split(jax.random.PRNGKey(0), 2)
  make_tx = optax.adam
  test = evaluate.test_curve_stack(task, 2)
  whole = jax.jit(evaluate.make_runner(task, make_tx, 25))(
      {"learning_rate": 1e-2}, keys, task.datasets.train)
  segments = jax.jit(evaluate.make_runner(task, make_tx, 25, test_points=4))(
      {"learning_rate": 1e-2}, keys, task.datasets.train, test)
  np.testing.assert_allclose(segments[1], whole[1], rtol=1e-6)
  assert whole[2].shape == (2, 0) and segments[2].shape == (2, 4)
  assert evaluate.test_steps(25, 4) == [6, 12, 18, 24]
  assert np.all(np.isfinite(segments[2]))


def test_diverged_runs_and_long_horizon(tmp_path):
  config = _tiny_config("optax:sgd:1e3")
  config.num_seeds, config.steps, config.baselines = 1, 10, (("optax:adam", (1e-2,)),)
  config.tasks = {"linear": dict(name="linear_regression")}
  config.long_horizon = ml_collections.ConfigDict(dict(
      label="long_linear", name="linear_regression", kwargs={}, steps=50))
  summary = evaluate.evaluate(config, str(tmp_path))
  suite, long = summary["tasks"]
  row = suite["rows"][1]
  assert row["optimizer"] == "optax:sgd:1e3" and row["diverged_runs"] == 1
  assert row["steps_to_target"] is None and row["speedup"] == 0.0 and not row["at_or_below"]
  assert summary["aggregate"]["optax:sgd:1e3"] == dict(
      summary["aggregate"]["optax:sgd:1e3"], tasks=1, at_or_below=0, diverged_runs=2, runs=2)
  assert long["long_horizon"] and long["steps"] == 50
  adam, sgd = long["rows"]
  assert adam["keeps_improving"] and not sgd["keeps_improving"]
  assert adam["loss_at"]["100%"] < adam["loss_at"]["50%"] < adam["loss_at"]["10%"]
  records = [json.loads(l) for l in (tmp_path / "results.jsonl").read_text().splitlines()]
  assert all(r["diverged"] and r["final_train_loss"] is None
             for r in records if r["optimizer"] == "optax:sgd:1e3")
  text = (tmp_path / "summary.md").read_text()
  assert "| optax:sgd:1e3 | lr=1000 |" in text and "Long horizon" in text
  assert "| optax:sgd:1e3 (lr=1000) | " in text and text.rstrip().endswith("NO |")
  assert (tmp_path / "plots" / "long_linear.png").exists()


def test_unknown_optimizer_spec_lists_accepted_forms():
  for spec in ("adam", "optax:no_such_rule", "pretrained:no_such_name", "optax:adam:fast",
               "optax:contrib.no_such_rule"):
    with pytest.raises(evaluate.UnknownOptimizerError) as e:
      evaluate.parse_optimizer(spec, (1e-3,))
    msg = str(e.value)
    assert spec in msg and "optax:NAME" in msg and "checkpoint:PATH" in msg
    assert "executor" in msg and "adam" in msg


def test_spec_forms(learned):
  sweep = evaluate.parse_optimizer("optax:sgd", (1e-3, 1e-2))
  assert [s for s, _ in sweep.settings] == ["lr=0.001", "lr=0.01"]
  fixed = evaluate.parse_optimizer("optax:adam:3e-4", (1e-3, 1e-2))
  assert fixed.settings == (("lr=0.0003", {"learning_rate": 3e-4}),)
  assert evaluate.parse_optimizer(learned).settings == (("default", {}),)
  prodigy = evaluate.parse_optimizer("optax:contrib.prodigy:1.0")
  assert prodigy.settings == (("lr=1", {"learning_rate": 1.0}),)
  params = {"w": jax.numpy.ones((3,))}
  tx = prodigy.make(learning_rate=1.0)
  updates, _ = tx.update(params, tx.init(params), params)
  assert np.all(np.isfinite(np.asarray(updates["w"])))
  with pytest.raises(FileNotFoundError):
    evaluate.parse_optimizer("checkpoint:/no/such/checkpoint")


def test_unknown_task_fails_before_training(tmp_path, learned):
  config = _tiny_config(learned)
  config.tasks = {"typo": dict(name="digits_mlpp")}
  with pytest.raises(tasks.UnknownTaskError, match="digits_mlp.*Known tasks:.*quadratic"):
    evaluate.evaluate(config, str(tmp_path))
  assert not (tmp_path / "results.jsonl").exists()


def test_tfds_task_without_data_is_skipped_with_reason(tmp_path):
  entry = {"label": "mnist", "name": "mnist_mlp", "kwargs": {"data_dir": str(tmp_path)},
           "steps": 1, "long_horizon": False}
  built, skipped = evaluate.build_tasks([entry])
  assert built == [] and skipped[0]["task"] == "mnist"
  assert "TFDS data not available" in skipped[0]["reason"]


def test_plots_handle_negative_and_diverged_curves(tmp_path):
  from meta_train import plots
  steps = [1, 2, 3]
  row = lambda spec, mean, diverged: {  # noqa: E731
      "optimizer": spec, "setting": "default", "diverged_runs": diverged,
      "curve": {"step": steps, "mean": mean, "lo": mean, "hi": mean}}
  summary = {"tasks": [{"task": "noisy/quadratic", "long_horizon": False, "target": -0.1,
                        "rows": [row("a", [1.0, 0.1, -0.1], 0),
                                 row("b", [1.0, None, None], 1)]}]}
  paths = plots.write_all(summary, tmp_path)
  assert [p.name for p in paths] == ["noisy_quadratic.png", "overview.png"]
  assert all(p.stat().st_size > 1000 for p in paths)


@pytest.mark.slow
def test_an_interrupted_run_resumes_and_another_config_is_refused(tmp_path, learned,
                                                                  monkeypatch):
  config = _tiny_config(learned)
  config.tasks = {"iris": dict(name="iris_mlp")}
  first = evaluate.evaluate(config, str(tmp_path))
  lines = (tmp_path / "results.jsonl").read_text().splitlines()
  assert len(lines) == 3 * 2   # (2 Adam rates + the learned optimizer) x 2 seeds
  # Cut off inside the third setting: two settings complete, one seed and half a line left.
  (tmp_path / "results.jsonl").write_text("\n".join(lines[:5]) + "\n" + lines[5][:40])
  compiled = []
  make_runner = evaluate.make_runner
  monkeypatch.setattr(evaluate, "make_runner",
                      lambda *a, **k: compiled.append(1) or make_runner(*a, **k))
  second = evaluate.evaluate(config, str(tmp_path))
  assert len(compiled) == 1    # only the cut-off setting's optimizer trained again
  records = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
  assert sorted((r["optimizer"], r["setting"], r["seed"]) for r in records) == sorted(
      (r["optimizer"], r["setting"], r["seed"]) for r in map(json.loads, lines))
  for a, b in zip(first["tasks"][0]["rows"], second["tasks"][0]["rows"]):
    assert a["final_train_loss"] == pytest.approx(b["final_train_loss"], rel=1e-6)
  evaluate.evaluate(config, str(tmp_path))   # everything done: nothing trains
  assert len(compiled) == 1
  config.steps = STEPS + 1
  with pytest.raises(ValueError, match="another evaluation protocol.*new --workdir"):
    evaluate.evaluate(config, str(tmp_path))


@pytest.mark.slow
def test_a_candidate_added_later_reuses_the_baselines_sweeps(tmp_path, monkeypatch):
  run_dir = tmp_path / "run"
  _fresh_checkpoint(run_dir, step=100)
  config = _tiny_config("checkpoint:" + str(run_dir))
  config.tasks, config.num_seeds = {"iris": dict(name="iris_mlp")}, 1
  evaluate.evaluate(config, str(tmp_path / "eval"))
  compiled = []
  make_runner = evaluate.make_runner
  monkeypatch.setattr(evaluate, "make_runner",
                      lambda *a, **k: compiled.append(1) or make_runner(*a, **k))
  config.optimizers = ("checkpoint:" + str(run_dir), "optax:sgd")
  summary = evaluate.evaluate(config, str(tmp_path / "eval"))
  assert len(compiled) == 1    # only the new candidate trained
  assert {r["optimizer"] for r in summary["tasks"][0]["rows"]} == {
      "optax:adam", "checkpoint:" + str(run_dir), "optax:sgd"}


def test_resuming_refuses_a_checkpoint_that_moved_on(tmp_path):
  run_dir = tmp_path / "run"
  _fresh_checkpoint(run_dir, step=100)
  config = _tiny_config("checkpoint:" + str(run_dir))
  config.tasks, config.num_seeds = {"iris": dict(name="iris_mlp")}, 1
  evaluate.evaluate(config, str(tmp_path / "eval"))
  lines = (tmp_path / "eval" / "results.jsonl").read_text().splitlines()
  (tmp_path / "eval" / "results.jsonl").write_text(lines[0] + "\n")   # interrupted
  _fresh_checkpoint(run_dir, step=200)                                # training went on
  with pytest.raises(ValueError, match="checkpoint step"):
    evaluate.evaluate(config, str(tmp_path / "eval"))


def _summary(tasks_rows: dict[str, dict[str, tuple[bool, float]]]) -> dict:
  """A summary.json-like dict: task -> optimizer -> (at or below, speedup)."""
  def row(spec, at_or_below, speedup):
    return {"optimizer": spec, "at_or_below": at_or_below, "speedup": speedup,
            "time_ratio": 1.0, "diverged_runs": 0, "runs": 3}
  return {"baselines": ["optax:adam"], "tasks": [
      {"task": task, "long_horizon": False,
       "rows": [row("optax:adam", True, 1.0)] + [row(spec, *v) for spec, v in rows.items()]}
      for task, rows in tasks_rows.items()]}


def test_rank_counts_all_summaries_together_then_the_median_speedup():
  first = _summary({"a": {"pretrained": (True, 1.5), "checkpoint:x": (True, 1.2),
                          "optax:sgd": (True, 9.0)},
                    "b": {"pretrained": (False, 0.0), "checkpoint:x": (True, 1.1),
                          "optax:sgd": (True, 9.0)}})
  second = _summary({"c": {"pretrained": (True, 2.0), "checkpoint:x": (False, 0.0),
                           "checkpoint:y": (True, 3.0)}})
  ranked = evaluate.rank([first, second])
  assert [name for name, _ in ranked] == ["pretrained", "checkpoint:x", "checkpoint:y"]
  rows = dict(ranked)
  # pretrained and checkpoint:x tie at 2/3; pretrained's median speedup (1.5) beats 1.1.
  assert (rows["pretrained"]["at_or_below"], rows["pretrained"]["tasks"]) == (2, 3)
  assert rows["pretrained"]["median_speedup"] == 1.5
  assert rows["checkpoint:x"]["median_speedup"] == pytest.approx(1.1)
  assert (rows["checkpoint:y"]["at_or_below"], rows["checkpoint:y"]["tasks"]) == (1, 1)
  assert evaluate.rank_table(ranked).splitlines()[0].split() == [
      "pretrained", "2/3", "median", "speedup", "1.50x", "test", "0/0"]
  with pytest.raises(ValueError, match="at least one"):
    evaluate.rank([])


def test_the_rank_flag_prints_the_ranking_without_config_or_workdir(tmp_path):
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  paths = []
  for i, speedup in enumerate((1.5, 2.5)):
    paths.append(tmp_path / f"summary{i}.json")
    paths[-1].write_text(json.dumps(_summary({f"t{i}": {"pretrained": (True, speedup)}})))
  out = subprocess.run([sys.executable, "-m", "meta_train.evaluate",
                        "--rank=" + ",".join(map(str, paths))],
                       capture_output=True, text=True, check=True).stdout
  assert out.split() == ["pretrained", "2/2", "median", "speedup", "2.00x", "test", "0/0"]
  failed = subprocess.run([sys.executable, "-m", "meta_train.evaluate"],
                          capture_output=True, text=True)
  assert failed.returncode != 0 and "--config and --workdir are required" in failed.stderr


def _records(task: str, optimizer: str, setting: str, train: float, valid: float | None,
             test: float | None, curve=(2.0, 1.0)) -> list[dict]:
  """Two seeds' records of one setting, identical, with a linear training curve."""
  train_curve = list(np.linspace(curve[0], train, 4))
  return [{"task": task, "task_name": task, "optimizer": optimizer, "setting": setting,
           "learning_rate": 0.1, "seed": seed, "steps": 4, "long_horizon": False,
           "held_out": valid is not None,
           "curve": {"step": [1, 2, 3, 4], "train_loss": train_curve},
           "final_train_loss": train, "final_valid_loss": valid, "final_test_loss": test,
           "wall_time_per_step_s": 1e-3, "diverged": False} for seed in range(2)]


BASELINES = ("optax:adam", "optax:contrib.muon")


def test_validation_picks_and_test_reports_on_synthetic_rows():
  # Adam wins on training loss; Muon's "b" has the lowest validation loss of all
  # baseline settings, so it is the test reference although Adam "y" tests lower.
  records = (_records("t", "optax:adam", "x", 0.10, 0.50, 0.50)
             + _records("t", "optax:adam", "y", 0.30, 0.45, 0.20)
             + _records("t", "optax:contrib.muon", "a", 0.20, 0.60, 0.60)
             + _records("t", "optax:contrib.muon", "b", 0.25, 0.40, 0.35)
             + _records("t", "pretrained", "default", 0.15, 0.42, 0.30))
  t = evaluate.task_summary(records, BASELINES, [*BASELINES, "pretrained"])
  assert (t["best_rule"], t["baseline_setting"], t["target"]) == ("optax:adam", "x", 0.10)
  assert (t["best_test_rule"], t["test_setting"], t["test_target"]) == (
      "optax:contrib.muon", "b", 0.35)
  rows = {r["optimizer"]: r for r in t["rows"]}
  assert (rows["optax:adam"]["valid_setting"], rows["optax:adam"]["test_loss"]) == ("y", 0.20)
  assert rows["optax:adam"]["at_or_below"] and rows["optax:adam"]["at_or_below_test"]
  assert not rows["optax:contrib.muon"]["at_or_below"]
  assert rows["optax:contrib.muon"]["at_or_below_test"]        # 0.35 <= 0.35
  assert not rows["pretrained"]["at_or_below"] and rows["pretrained"]["at_or_below_test"]
  # Muon wins on training and validation; a task without held-out data counts for
  # the training metric only.
  second = (_records("u", "optax:adam", "x", 0.4, None, None)
            + _records("u", "optax:contrib.muon", "a", 0.2, None, None)
            + _records("u", "pretrained", "default", 0.3, None, None))
  u = evaluate.task_summary(second, BASELINES, [*BASELINES, "pretrained"])
  assert (u["best_rule"], u["held_out"], u["test_target"]) == ("optax:contrib.muon", False,
                                                                None)
  assert all(r["at_or_below_test"] is None and r["test_loss"] is None for r in u["rows"])
  agg = evaluate.aggregate([t, u], BASELINES)["pretrained"]
  assert (agg["tasks"], agg["at_or_below"], agg["tasks_test"], agg["at_or_below_test"]) == (
      2, 0, 1, 1)
  assert agg["median_speedup"] == 0.0 and not agg["baseline"]
  assert evaluate.aggregate([t, u], BASELINES)["optax:contrib.muon"]["baseline"]


@pytest.fixture(scope="module")
def adam_and_muon(tmp_path_factory):
  """Adam and Muon, one rate each, on a task each wins: iris (Adam), linear regression
  (Muon); `optax:sgd` is the candidate."""
  config = _tiny_config("optax:sgd:0.1")
  config.steps = 40
  config.baselines = (("optax:adam", (1e-2,)), ("optax:contrib.muon", (3e-2,)))
  config.tasks = {"iris": dict(name="iris_mlp"), "linear": dict(name="linear_regression"),
                  "quadratic": dict(name="quadratic", kwargs=dict(dim=8, noise_scale=0.0))}
  config.log_points = 100
  workdir = tmp_path_factory.mktemp("adam_and_muon")
  summary = evaluate.evaluate(config, str(workdir))
  records = [json.loads(line) for line in (workdir / "results.jsonl").read_text().splitlines()]
  return workdir, summary, records


def _means(records, task, key):
  out = {}
  for r in records:
    if r["task"] == task and r["optimizer"] in BASELINES:
      out.setdefault((r["optimizer"], r["setting"]), []).append(r[key])
  return {k: float(np.mean(v)) for k, v in out.items()}


@pytest.mark.slow   # a 40 s two-task evaluation: in CI's slow subset (.ci/run)
def test_the_best_tuned_rule_per_metric_end_to_end(adam_and_muon):
  workdir, summary, records = adam_and_muon
  by_task = {t["task"]: t for t in summary["tasks"]}
  assert by_task["iris"]["best_rule"] == "optax:adam"
  assert by_task["linear"]["best_rule"] == "optax:contrib.muon"
  muon = [r for r in records if r["optimizer"] == "optax:contrib.muon"]
  assert {(r["task"], r["setting"], r["adam_learning_rate"]) for r in muon} == {
      (t, "lr=0.03,adam_lr=0.01", 0.01) for t in ("iris", "linear", "quadratic")}
  for name in ("iris", "linear"):
    t, train = by_task[name], _means(records, name, "final_train_loss")
    valid, test = _means(records, name, "final_valid_loss"), _means(records, name,
                                                                     "final_test_loss")
    assert (t["best_rule"], t["baseline_setting"]) == min(train, key=train.get)
    assert t["target"] == pytest.approx(min(train.values()), rel=1e-9)
    picked = min(valid, key=valid.get)
    assert (t["best_test_rule"], t["test_setting"]) == picked
    assert t["test_target"] == pytest.approx(test[picked], rel=1e-9)
  quadratic = by_task["quadratic"]
  assert not quadratic["held_out"] and quadratic["test_target"] is None
  assert all(r["final_valid_loss"] is None for r in records if r["task"] == "quadratic")
  agg = summary["aggregate"]["optax:sgd:0.1"]
  assert (agg["tasks"], agg["tasks_test"]) == (3, 2)
  text = (workdir / "summary.md").read_text()
  assert "best tuned rule: optax:contrib.muon lr=0.03,adam_lr=0.01" in text
  assert "no held-out data" in text and "picked on validation" in text
  assert (workdir / "plots" / "iris.png").exists()
