"""meta_train.evaluate: records, tuned-Adam summary, plots and clear errors, on a tiny config."""

import json

import numpy as np
import pytest

import tasks
from configs import evaluate as evaluate_config
from meta_train import evaluate

STEPS = 30
LEARNED = "pretrained:executor:adam:1e-3"


def _tiny_config():
  config = evaluate_config.get_config()
  config.num_seeds = 2
  config.steps = STEPS
  config.learning_rates = (1e-3, 1e-2)
  config.optimizers = (LEARNED, "optax:adam")
  config.tasks = {
      "linear": dict(name="linear_regression"),
      "mlp_16": dict(name="digits_mlp", kwargs=dict(hidden=(16,))),
  }
  config.meta_train_horizon = 5   # long horizon: 50 steps
  config.long_horizon.name = "linear_regression"
  config.long_horizon.kwargs = {}
  config.log_points = 1000        # every step is logged
  config.eval_batches = 2
  return config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("evaluate")
  summary = evaluate.evaluate(_tiny_config(), str(workdir))
  records = [json.loads(line) for line in (workdir / "results.jsonl").read_text().splitlines()]
  return workdir, summary, records


def test_writes_records_summary_and_plots(run):
  workdir, summary, records = run
  labels = {"linear", "mlp_16", "long_horizon_mlp_32x2_mnist1d"}
  # 3 tasks x (2 Adam learning rates + the learned optimizer) x 2 seeds.
  assert len(records) == 3 * 3 * 2
  assert {r["task"] for r in records} == labels
  for r in records:
    assert r["curve"]["step"] == list(range(1, r["steps"] + 1))
    assert all(np.isfinite(v) for v in r["curve"]["train_loss"])
    for key in ("initial_train_loss", "final_train_loss", "final_valid_loss",
                "final_test_loss", "wall_time_per_step_s"):
      assert np.isfinite(r[key]) and r[key] > 0, (key, r[key])
    assert r["final_train_loss"] == r["curve"]["train_loss"][-1]
    assert not r["diverged"]
  assert next(r for r in records if r["long_horizon"])["steps"] == 50
  assert json.loads((workdir / "summary.json").read_text())["tasks"]
  text = (workdir / "summary.md").read_text()
  for needle in ("## linear", "## mlp_16", "Aggregate", "Long horizon", LEARNED, "lr=0.01"):
    assert needle in text
  pngs = sorted(p.name for p in (workdir / "plots").glob("*.png"))
  assert pngs == sorted(["overview.png", "linear.png", "mlp_16.png",
                         "long_horizon_mlp_32x2_mnist1d.png"])
  for name in pngs:
    assert (workdir / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _mean_curve(records, task, optimizer, setting):
  rows = [r for r in records if (r["task"], r["optimizer"], r["setting"]) ==
          (task, optimizer, setting)]
  assert len(rows) == 2
  return np.mean([r["curve"]["train_loss"] for r in rows], axis=0)


def test_tuned_is_argmin_and_steps_match_the_curves(run):
  _, summary, records = run
  for t in summary["tasks"]:
    finals = {}
    for r in records:
      if r["task"] == t["task"] and r["optimizer"] == "optax:adam":
        finals.setdefault(r["setting"], []).append(r["final_train_loss"])
    assert t["baseline_setting"] == min(finals, key=lambda s: np.mean(finals[s]))
    assert t["target"] == pytest.approx(np.mean(finals[t["baseline_setting"]]), rel=1e-12)
    rows = {row["optimizer"]: row for row in t["rows"]}
    assert list(rows) == ["optax:adam", LEARNED]
    assert rows["optax:adam"]["speedup"] == 1.0
    for spec, row in rows.items():
      curve = _mean_curve(records, t["task"], spec, row["setting"])
      below = np.flatnonzero(curve <= t["target"])
      expected = int(below[0]) + 1 if below.size else None
      assert row["steps_to_target"] == expected, (t["task"], spec)
      if expected:
        assert row["speedup"] == pytest.approx(t["baseline_steps"] / expected)
      assert row["at_or_below"] == (row["final_train_loss"] <= t["target"])
  agg = summary["aggregate"][LEARNED]
  assert agg["tasks"] == 2 and agg["runs"] == 3 * 2 and agg["diverged_runs"] == 0
  assert summary["aggregate"]["optax:adam"]["fraction_at_or_below"] == 1.0


def test_unknown_optimizer_spec_lists_accepted_forms():
  for spec in ("adam", "optax:no_such_rule", "pretrained:no_such_name", "optax:adam:fast"):
    with pytest.raises(evaluate.UnknownOptimizerError) as e:
      evaluate.parse_optimizer(spec, (1e-3,))
    msg = str(e.value)
    assert spec in msg and "optax:NAME" in msg and "checkpoint:PATH" in msg
    assert "executor" in msg and "adam" in msg


def test_spec_forms():
  sweep = evaluate.parse_optimizer("optax:sgd", (1e-3, 1e-2))
  assert [s for s, _ in sweep.settings] == ["lr=0.001", "lr=0.01"]
  fixed = evaluate.parse_optimizer("optax:adam:3e-4", (1e-3, 1e-2))
  assert fixed.settings == (("lr=0.0003", {"learning_rate": 3e-4}),)
  learned = evaluate.parse_optimizer(LEARNED)
  assert learned.settings == (("default", {}),)


def test_unknown_task_fails_before_training(tmp_path):
  config = _tiny_config()
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
