r"""Optimizers against the best learning-rate-tuned rule on held-out tasks.

  python -m meta_train.evaluate --config=configs/evaluate.py --workdir=DIR
  python -m meta_train.evaluate --config=configs/evaluate.py:validation7 --workdir=DIR
  python -m meta_train.evaluate --rank=DIR_A/summary.json,DIR_B/summary.json

The config's variants (configs/evaluate.py) are the reporting suite (the default)
and suites for choosing between candidates without looking at it. `--rank` ranks
the optimizers of several runs' summaries by the selection rule of `rank`, prints
the ranking and exits.

Baselines (`config.baselines`, (spec, learning rates) pairs) are the rules a user
would otherwise tune, each swept over its own learning rates, in order: Adam
first, then rules such as `optax.contrib.muon` whose leaves outside the
orthogonalized matrices take the task's tuned Adam rate (`adam_learning_rate`).
Candidates (`config.optimizers`) are compared with the best of them.

Every (task, optimizer, setting) trains in one jitted `lax.scan` over the whole
run, vmapped over seeds, with batches drawn on device. Seeds share their init
and data across optimizers, so comparisons are paired. Writes

* `DIR/results.jsonl`: one record per task x optimizer x setting x seed (loss
  curve at logged steps, on held-out tasks a test-loss curve at
  `test_curve_points` steps over the first `test_curve_batches` test batches,
  initial and final training loss, final valid/test loss over the splits, wall
  time per step, diverged flag);
* `DIR/summary.md` and `DIR/summary.json`: per task, every optimizer's tuned
  setting (final training loss, steps to the best tuned rule's final training
  loss, speedup, wall time ratio) and its validation-picked setting (validation
  and test loss), the best tuned rule on each metric, counts over the suite, and
  the long-horizon run;
* `DIR/plots/*.png`: loss curves per task (training solid, test dashed) and an
  overview grid;
* `DIR/config.json`: the config and the step each checkpoint resolved to, so
  that a run interrupted there resumes (rerun the same command) and a different
  config or a newer checkpoint step is refused.

Definitions. The training curve of a run is the trailing mean of the per-step
minibatch loss over `window = max(1, round(final_fraction * steps))` steps;
the final training loss is its last value. A run diverged when a loss is
non-finite or its final loss exceeds `divergence_factor` x its first loss.
Settings with a diverged seed are picked only when every setting diverged.

* Training metric: each optimizer's setting with the lowest mean final training
  loss; the best tuned rule is the baseline whose such setting is lowest, and
  its final loss is the target. Steps to target: the first logged step at which
  the seed-mean curve is at or below the target. Speedup = the best rule's
  steps / the optimizer's steps (0 when not reached).
* Test metric (tasks whose validation split holds stored examples, see
  `has_held_out`): each optimizer's setting with the lowest mean validation
  loss, reported by its mean test loss; the best tuned rule is the baseline
  setting with the lowest validation loss over all baselines' settings, and its
  test loss is the test target.

Optimizer specs: see `parse_optimizer`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import app, flags, logging
from ml_collections import config_flags

import learned_opt
import tasks
from meta_train import plots
from tasks.data.splits import GeneratedSplit

SPEC_FORMS = (
    '"pretrained" (learned_opt.pretrained(): the best shipped optimizer)',
    '"pretrained:NAME" (learned_opt.pretrained(NAME))',
    '"pretrained:NAME:ALGORITHM[:LR]" (e.g. "pretrained:executor:adam:1e-3")',
    '"checkpoint:PATH" (learned_opt.load(PATH))',
    '"optax:NAME" (optax.NAME(learning_rate=lr), one setting per lr of the sweep)',
    '"optax:NAME:LR" (one fixed learning rate)',
    '"optax:contrib.NAME[:LR]" (optax.contrib.NAME, e.g. "optax:contrib.prodigy:1.0")',
)


MIN_TIMED_S = 1.0


class UnknownOptimizerError(ValueError):
  """An optimizer spec that is not understood; the message lists the accepted forms."""


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """A parsed optimizer spec.

  Attributes:
    spec: the string it came from.
    settings: (label, hyperparameters) pairs; hyperparameters are fed to `make`
      as traced float32 scalars, so one compiled program serves every setting.
    make: `make(**hyperparameters) -> optax transformation`, called inside jit.
  """

  spec: str
  settings: tuple[tuple[str, dict[str, float]], ...]
  make: Callable[..., optax.GradientTransformation]


def optax_rule_names() -> list[str]:
  """optax factories whose first argument is `learning_rate` (accepted by "optax:NAME"):
  optax's own as NAME, optax.contrib's as contrib.NAME."""
  out = []
  for prefix, module in (("", optax), ("contrib.", optax.contrib)):
    for name in dir(module):
      fn = getattr(module, name)
      if name.startswith("_") or not inspect.isfunction(fn):
        continue
      params = list(inspect.signature(fn).parameters)
      if params and params[0] == "learning_rate":
        out.append(prefix + name)
  return sorted(out)


def _optax_factory(name: str) -> Callable[..., optax.GradientTransformation]:
  """optax.NAME, or optax.contrib.NAME for "contrib.NAME"."""
  module, _, attr = name.rpartition(".")
  return getattr(optax.contrib if module else optax, attr)


def _unknown(spec: str, why: str) -> UnknownOptimizerError:
  return UnknownOptimizerError(
      f"Unknown optimizer spec {spec!r}: {why}. Accepted forms: " + "; ".join(SPEC_FORMS)
      + f". Shipped names: {', '.join(learned_opt.pretrained_names()) or 'none'}. "
      f"optax rules: {', '.join(optax_rule_names())}.")


def _float(spec: str, text: str) -> float:
  try:
    return float(text)
  except ValueError:
    raise _unknown(spec, f"{text!r} is not a learning rate") from None


def _fixed(spec: str, tx: optax.GradientTransformation) -> Optimizer:
  return Optimizer(spec, (("default", {}),), lambda: tx)


def _pretrained(spec: str, parts: list[str]) -> Optimizer:
  if len(parts) > 3:
    raise _unknown(spec, "too many ':' fields")
  name = parts[0] if parts else None
  if name is not None and name not in learned_opt.pretrained_names():
    raise _unknown(spec, f"no shipped optimizer named {name!r}")
  kwargs = {}
  if len(parts) >= 2:
    kwargs["algorithm"] = parts[1]
  if len(parts) == 3:
    kwargs["learning_rate"] = _float(spec, parts[2])
  return _fixed(spec, learned_opt.pretrained(name, **kwargs))


def _optax(spec: str, parts: list[str], learning_rates: Sequence[float]) -> Optimizer:
  if not parts or len(parts) > 2 or parts[0] not in optax_rule_names():
    raise _unknown(spec, "expected optax:NAME or optax:NAME:LR with NAME an optax rule")
  factory = _optax_factory(parts[0])
  lrs = [_float(spec, parts[1])] if len(parts) == 2 else list(learning_rates)
  if not lrs:
    raise _unknown(spec, "the learning-rate sweep is empty")
  settings = tuple((f"lr={lr:g}", {"learning_rate": float(lr)}) for lr in lrs)
  return Optimizer(spec, settings, lambda **hparams: factory(**hparams))


def parse_optimizer(spec: str, learning_rates: Sequence[float] = ()) -> Optimizer:
  """Parses one optimizer spec (see `SPEC_FORMS`); learned ones are loaded here.

  Args:
    spec: e.g. "pretrained", "pretrained:executor:adam:1e-3", "checkpoint:/x",
      "optax:adam".
    learning_rates: the sweep for "optax:NAME".

  Raises:
    UnknownOptimizerError: the spec is not one of the accepted forms.
  """
  kind, _, rest = spec.partition(":")
  if kind == "pretrained":
    return _pretrained(spec, rest.split(":") if rest else [])
  if kind == "checkpoint" and rest:
    return _fixed(spec, learned_opt.load(rest))
  if kind == "optax":
    return _optax(spec, rest.split(":") if rest else [], learning_rates)
  raise _unknown(spec, "unrecognized form")


# ------------------------------------------------------------------ training ----

def make_runner(task: tasks.Task, make_tx: Callable[..., optax.GradientTransformation],
                steps: int, test_points: int = 0) -> Callable:
  """`run(hparams, keys, train, test) -> (final params, losses [seeds, steps], test curve
  [seeds, points])`, not yet jitted.

  One `lax.scan` over all `steps`, vmapped over the seed keys. Each key draws
  the initial parameters, the batches (on device, from `train`) and the loss key.
  With `test_points` > 0 and a `test` stack of batches, the scan runs in that
  many equal segments (`test_steps`) and after each one the mean loss over the
  stack is recorded (the test curve); otherwise the test curve is empty.
  """
  points, every = test_schedule(steps, test_points)

  def run(hparams, keys, train, test=None):
    tx = make_tx(**hparams)

    def one(key):
      k_init, k_data, k_loss = jax.random.split(key, 3)
      params = task.init(k_init)

      def step(carry, batch):
        params, state = carry
        loss, grads = jax.value_and_grad(task.loss)(params, k_loss, batch)
        updates, state = tx.update(grads, state, params, value=loss)
        return (optax.apply_updates(params, updates), state), loss

      batches = train.stacked(k_data, steps)
      carry = (params, tx.init(params))
      if test is None or not points:
        (params, _), losses = jax.lax.scan(step, carry, batches)
        return params, losses, jnp.zeros((0,), jnp.float32)

      def test_loss(params):
        per_batch = jax.lax.map(lambda b: task.loss(params, jax.random.PRNGKey(0), b), test)
        return jnp.mean(per_batch)

      def segment(carry, segment_batches):
        carry, losses = jax.lax.scan(step, carry, segment_batches)
        return carry, (losses, test_loss(carry[0]))

      head = points * every
      split = lambda x: x[:head].reshape((points, every) + x.shape[1:])  # noqa: E731
      carry, (losses, curve) = jax.lax.scan(segment, carry, jax.tree.map(split, batches))
      losses = losses.reshape(-1)
      if head < steps:
        carry, rest = jax.lax.scan(step, carry, jax.tree.map(lambda x: x[head:], batches))
        losses = jnp.concatenate([losses, rest])
      return carry[0], losses, curve

    return jax.vmap(one)(keys)
  return run


def test_schedule(steps: int, test_points: int) -> tuple[int, int]:
  """(points, steps per segment) of a run's test curve: min(test_points, steps) points,
  the k-th after k * (steps // points) steps."""
  points = min(max(test_points, 0), steps)
  return points, (steps // points if points else 0)


def test_steps(steps: int, test_points: int) -> list[int]:
  """The steps after which a run's test curve is recorded."""
  points, every = test_schedule(steps, test_points)
  return [every * (k + 1) for k in range(points)]


def test_curve_stack(task: tasks.Task, batches: int) -> Any:
  """The test batches the test curve averages: the first chunk of the test split,
  at most `batches` batches (the final test loss reads the whole split)."""
  return task.datasets.split("test").eval_chunks(batches)[0]


def train_settings(task: tasks.Task, optimizer: Optimizer, steps: int, keys: jax.Array,
                   done: frozenset[str] = frozenset(), test_points: int = 0,
                   test_batches: int = 1):
  """Trains every setting of `optimizer` not in `done`; yields (label, hparams, params,
  losses, test curve, s/step).

  Compiles once (ahead of time, so the timing excludes compilation; not at all
  when every setting is done) and calls the compiled program once per setting
  (twice when a run is shorter than `MIN_TIMED_S`; the second call is timed).
  The test curve (`make_runner`) is recorded on tasks with held-out data when
  `test_points` > 0, over `test_batches` test batches.
  """
  settings = [(label, h) for label, h in optimizer.settings if label not in done]
  if not settings:
    return
  train = task.datasets.train
  test = test_curve_stack(task, test_batches) if test_points and has_held_out(task) else None
  as_arrays = lambda h: {k: np.float32(v) for k, v in h.items()}  # noqa: E731
  run = jax.jit(make_runner(task, optimizer.make, steps, test_points if test else 0))
  compiled = run.lower(as_arrays(settings[0][1]), keys, train, test).compile()
  for label, hparams in settings:
    for _ in range(2):  # a short run is timed again: a first call's overhead would dominate
      t0 = time.perf_counter()
      params, losses, curve = jax.block_until_ready(
          compiled(as_arrays(hparams), keys, train, test))
      seconds = time.perf_counter() - t0
      if seconds > MIN_TIMED_S:
        break
    yield (label, hparams, params, np.asarray(losses, np.float64),
           np.asarray(curve, np.float64), seconds / steps)


# ------------------------------------------------------------ run statistics ----

def smooth(losses: np.ndarray, window: int) -> np.ndarray:
  """Trailing mean over `window` steps along the last axis (shorter at the start)."""
  csum = np.cumsum(losses, axis=-1)
  out = csum.copy()
  with np.errstate(invalid="ignore"):  # inf - inf after a divergence: nan, as it should be
    out[..., window:] = csum[..., window:] - csum[..., :-window]
  counts = np.minimum(np.arange(1, losses.shape[-1] + 1), window)
  return out / counts


def window_size(config: ml_collections.ConfigDict, steps: int) -> int:
  """Steps averaged into the curve and the final loss (`final_fraction` of the run)."""
  return max(1, int(round(config.final_fraction * steps)))


def logged_steps(config: ml_collections.ConfigDict, steps: int) -> np.ndarray:
  """1-based step numbers recorded in the curves (always the first and the last)."""
  every = max(1, steps // config.log_points)
  return np.unique(np.concatenate([[1], np.arange(every, steps + 1, every), [steps]]))


def is_diverged(losses: np.ndarray, final: float, factor: float) -> bool:
  """Non-finite anywhere, or a final loss above `factor` x the first loss."""
  return bool(not np.all(np.isfinite(losses)) or final > factor * losses[0])


def _finite(x: Any) -> float | None:
  x = float(x)
  return x if np.isfinite(x) else None


def _jsonable(obj: Any) -> Any:
  """Strict JSON: non-finite floats become null, numpy scalars become Python ones."""
  if isinstance(obj, dict):
    return {k: _jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_jsonable(v) for v in obj]
  if isinstance(obj, (float, np.floating)):
    return _finite(obj)
  if isinstance(obj, np.integer):
    return int(obj)
  return obj


def run_records(task_entry: dict, task: tasks.Task, optimizer: str, label: str,
                hparams: dict, params, losses: np.ndarray, seconds_per_step: float,
                config: ml_collections.ConfigDict, held_out: bool = True,
                test_curve: np.ndarray | None = None) -> list[dict[str, Any]]:
  """One JSON record per seed of a trained setting (valid/test loss only when
  `held_out`; the test curve [seeds, points] when given and not empty)."""
  steps = losses.shape[-1]
  curves = smooth(losses, window_size(config, steps))
  at = logged_steps(config, steps)
  records = []
  for seed in range(losses.shape[0]):
    final = float(curves[seed, -1])
    seed_params = jax.tree.map(lambda x, s=seed: x[s], params)
    evals = {split: _finite(task.evaluate(seed_params, split, max_batches=config.eval_batches)
                            ["loss"]) if held_out else None for split in ("valid", "test")}
    records.append({
        "task": task_entry["label"], "task_name": task_entry["name"], "optimizer": optimizer,
        "setting": label, "learning_rate": hparams.get("learning_rate"),
        "adam_learning_rate": hparams.get("adam_learning_rate"), "seed": seed,
        "steps": steps, "long_horizon": task_entry["long_horizon"], "held_out": held_out,
        "curve": {"step": at.tolist(), "train_loss": [_finite(v) for v in curves[seed, at - 1]],
                  **test_curve_fields(test_curve, seed, steps, config)},
        "initial_train_loss": _finite(losses[seed, 0]), "final_train_loss": _finite(final),
        "final_valid_loss": evals["valid"], "final_test_loss": evals["test"],
        "wall_time_per_step_s": seconds_per_step, "seeds_in_parallel": losses.shape[0],
        "diverged": is_diverged(losses[seed], final, config.divergence_factor)})
  return records


def test_curve_fields(test_curve: np.ndarray | None, seed: int, steps: int,
                      config: ml_collections.ConfigDict) -> dict[str, list]:
  """A record's test curve ('test_step', 'test_loss'), or nothing when there is none."""
  if test_curve is None or test_curve.size == 0:
    return {}
  return {"test_step": test_steps(steps, config.test_curve_points),
          "test_loss": [_finite(v) for v in test_curve[seed]]}


# ---------------------------------------------------------------- aggregation ----

def steps_to_target(curve: np.ndarray, steps: np.ndarray, target: float) -> int | None:
  """First of `steps` whose `curve` value is at or below `target` (None if never)."""
  hit = np.flatnonzero(np.asarray(curve) <= target)
  return int(steps[hit[0]]) if hit.size else None


def _nan(values) -> np.ndarray:
  return np.asarray([np.nan if v is None else v for v in values], np.float64)


def setting_stats(records: list[dict]) -> dict[str, Any]:
  """Seed-aggregated numbers of one (task, optimizer, setting)."""
  curves = np.stack([_nan(r["curve"]["train_loss"]) for r in records])
  finals = _nan([r["final_train_loss"] for r in records])
  return {
      "setting": records[0]["setting"], "learning_rate": records[0]["learning_rate"],
      "steps": np.asarray(records[0]["curve"]["step"]), "mean_curve": curves.mean(0),
      "lo": curves.min(0), "hi": curves.max(0),
      "final_train_loss": float(finals.mean()), "final_train_loss_std": float(finals.std()),
      "final_valid_loss": float(np.mean(_nan([r["final_valid_loss"] for r in records]))),
      "final_test_loss": float(np.mean(_nan([r["final_test_loss"] for r in records]))),
      "time_per_step_s": float(np.mean([r["wall_time_per_step_s"] for r in records])),
      "diverged_runs": sum(r["diverged"] for r in records), "runs": len(records),
      **_mean_test_curve(records)}


def _mean_test_curve(records: list[dict]) -> dict[str, Any]:
  """{'test_steps', 'mean_test_curve'} over the seeds, or {} when records have none."""
  if any("test_loss" not in r["curve"] for r in records):
    return {}
  curves = np.stack([_nan(r["curve"]["test_loss"]) for r in records])
  return {"test_steps": records[0]["curve"]["test_step"], "mean_test_curve": curves.mean(0)}


def _mean_or_inf(x: float) -> float:
  return np.inf if np.isnan(x) else x


def tuned(settings: list[dict], metric: str = "final_train_loss") -> dict:
  """The setting with the lowest mean `metric` among non-diverged ones.

  When every setting has a diverged seed, the lowest among all of them.
  """
  pool = [s for s in settings if not s["diverged_runs"]] or settings
  return min(pool, key=lambda s: _mean_or_inf(s[metric]))


def best_rule(stats: dict[str, list[dict]], baselines: Sequence[str],
              metric: str) -> tuple[str, dict]:
  """(baseline, setting) with the lowest `metric` over every baseline's tuned setting.

  Non-diverged settings come first: a baseline whose every setting diverged is
  the best rule only when all of them did.
  """
  picks = [(spec, tuned(stats[spec], metric)) for spec in baselines if stats[spec]]
  return min(picks, key=lambda p: (bool(p[1]["diverged_runs"]), _mean_or_inf(p[1][metric])))


def _at_fraction(stats: dict, fraction: float) -> float:
  idx = np.searchsorted(stats["steps"], max(1, round(fraction * stats["steps"][-1])))
  return float(stats["mean_curve"][min(idx, len(stats["steps"]) - 1)])


def _row(spec: str, settings: list[dict], reference: dict, held_out: bool) -> dict[str, Any]:
  """One optimizer's row of a task: its tuned and validation-picked settings."""
  best, picked = tuned(settings), tuned(settings, "final_valid_loss")
  target, ref_steps = reference["target"], reference["baseline_steps"]
  reached = None if best["diverged_runs"] else steps_to_target(
      best["mean_curve"], best["steps"], target)
  test_ok = (not picked["diverged_runs"] and np.isfinite(picked["final_test_loss"])
             and picked["final_test_loss"] <= reference["test_target"])
  return {
      **{k: v for k, v in best.items()
         if k not in ("steps", "mean_curve", "lo", "hi", "test_steps", "mean_test_curve")},
      "optimizer": spec, "steps_to_target": reached,
      "speedup": ref_steps / reached if reached and ref_steps else 0.0,
      "time_ratio": best["time_per_step_s"] / reference["time_per_step_s"],
      "at_or_below": bool(not best["diverged_runs"] and best["final_train_loss"] <= target),
      "valid_setting": picked["setting"] if held_out else None,
      "valid_loss": picked["final_valid_loss"] if held_out else None,
      "test_loss": picked["final_test_loss"] if held_out else None,
      "at_or_below_test": bool(test_ok) if held_out else None,
      "sweep": {s["setting"]: s["final_train_loss"] for s in settings}
      if len(settings) > 1 else {},
      "sweep_valid": {s["setting"]: s["final_valid_loss"] for s in settings}
      if len(settings) > 1 and held_out else {},
      "sweep_diverged": sum(s["diverged_runs"] for s in settings),
      "loss_at": {f"{int(100 * f)}%": _at_fraction(best, f) for f in (0.1, 0.5, 1.0)},
      "curve": {"step": best["steps"].tolist(), "mean": best["mean_curve"].tolist(),
                "lo": best["lo"].tolist(), "hi": best["hi"].tolist(),
                # the validation-picked setting's test curve (what the test metric reports)
                **({"test_step": list(picked["test_steps"]),
                    "test_mean": picked["mean_test_curve"].tolist()}
                   if held_out and "mean_test_curve" in picked else {})}}


def task_summary(records: list[dict], baselines: Sequence[str],
                 specs: Sequence[str]) -> dict[str, Any]:
  """Per-task table: the best tuned rule on each metric, then one row per optimizer.

  Args:
    records: every record of the task (all optimizers, settings and seeds).
    baselines: the tuned rules, in order; each must have records.
    specs: every optimizer, baselines included; rows follow this order.
  """
  by_opt = {spec: {} for spec in specs}
  for r in records:
    by_opt[r["optimizer"]].setdefault(r["setting"], []).append(r)
  stats = {spec: [setting_stats(v) for v in by_opt[spec].values()] for spec in specs}
  held_out = bool(records[0].get("held_out", True))
  rule, ref = best_rule(stats, baselines, "final_train_loss")
  target = float(ref["mean_curve"][-1])
  test_rule, test_ref = best_rule(stats, baselines, "final_valid_loss")
  reference = {"target": target,
               "baseline_steps": steps_to_target(ref["mean_curve"], ref["steps"], target),
               "test_target": test_ref["final_test_loss"] if held_out else np.nan,
               "time_per_step_s": float(np.median([s["time_per_step_s"]
                                                   for s in stats[baselines[0]]]))}
  rows = [_row(spec, stats[spec], reference, held_out) for spec in specs]
  for row in rows:
    at = row["loss_at"]
    row["keeps_improving"] = bool(not row["diverged_runs"] and np.isfinite(at["100%"])
                                  and at["100%"] < at["50%"] < at["10%"])
  first = records[0]
  return {"task": first["task"], "task_name": first["task_name"], "steps": first["steps"],
          "long_horizon": first["long_horizon"], "held_out": held_out,
          "target": target, "best_rule": rule, "baseline_setting": ref["setting"],
          "baseline_steps": reference["baseline_steps"],
          "test_target": reference["test_target"] if held_out else None,
          "best_test_rule": test_rule if held_out else None,
          "test_setting": test_ref["setting"] if held_out else None, "rows": rows}


def _median(values: list[float]) -> float | None:
  return float(np.median(values)) if values else None


def aggregate(task_summaries: list[dict], baselines: Sequence[str]) -> dict[str, dict]:
  """Per optimizer over the suite (long-horizon run excluded but counted in divergences).

  `at_or_below` counts tasks at or below the best tuned rule's final training
  loss, `at_or_below_test` tasks with held-out data (`tasks_test`) at or below its
  test loss. Each optimizer is counted over the tasks that ran it (summaries of
  several runs with different optimizer lists may be concatenated).
  """
  out = {}
  specs = list(dict.fromkeys(r["optimizer"] for t in task_summaries for r in t["rows"]))
  for spec in specs:
    rows = [(t, r) for t in task_summaries for r in t["rows"] if r["optimizer"] == spec]
    suite = [r for t, r in rows if not t["long_horizon"]]
    test = [r for t, r in rows if not t["long_horizon"] and t.get("held_out")]
    out[spec] = {
        "tasks": len(suite), "at_or_below": sum(r["at_or_below"] for r in suite),
        "fraction_at_or_below": (sum(r["at_or_below"] for r in suite) / len(suite)
                                 if suite else float("nan")),
        "tasks_test": len(test), "at_or_below_test": sum(bool(r.get("at_or_below_test"))
                                                         for r in test),
        "median_speedup": _median([r["speedup"] for r in suite]),
        "median_time_ratio": _median([r["time_ratio"] for r in suite]),
        "diverged_runs": sum(r["diverged_runs"] for _, r in rows),
        "runs": sum(r["runs"] for _, r in rows), "baseline": spec in baselines}
  return out


def summary_baselines(summary: dict) -> list[str]:
  """The tuned rules of a summary (`baselines`; older summaries: `baseline`)."""
  return list(summary.get("baselines") or [summary["baseline"]])


def rank(summaries: list[dict]) -> list[tuple[str, dict]]:
  """Ranks the optimizers of evaluation summaries over all their tasks together.

  The selection rule: most tasks at or below the best tuned rule's final training
  loss, then the highest median speedup, both over every summary's tasks at once
  (`aggregate`, with the first summary's baselines; an optimizer counts over the
  tasks that ran it). Ties keep the order in which the optimizers first appear.
  Names starting "optax:" (the baselines and other hand-tuned rules) are left out.

  Args:
    summaries: what `evaluate` returns (summary.json), one per run.

  Returns:
    (optimizer, its `aggregate` row) pairs, best first.

  Raises:
    ValueError: `summaries` is empty.
  """
  if not summaries:
    raise ValueError("rank needs at least one evaluation summary.")
  totals = aggregate([t for s in summaries for t in s["tasks"]],
                     summary_baselines(summaries[0]))
  ranked = [(name, row) for name, row in totals.items() if not name.startswith("optax:")]
  return sorted(ranked, key=lambda item: (-item[1]["at_or_below"],
                                          -(item[1]["median_speedup"] or 0.0)))


def rank_table(ranked: list[tuple[str, dict]]) -> str:
  """`rank`'s result as text: one line per optimizer, best first."""
  return "\n".join(f"{name:45s} {row['at_or_below']:2d}/{row['tasks']} median speedup "
                   f"{_fmt(row['median_speedup'], '.2f')}x test "
                   f"{row.get('at_or_below_test', 0)}/{row.get('tasks_test', 0)}"
                   for name, row in ranked)


# ------------------------------------------------------------------ reporting ----

def _fmt(x, spec=".4g") -> str:
  return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def _yes(flag: bool | None) -> str:
  return "—" if flag is None else ("yes" if flag else "no")


def _task_lines(t: dict[str, Any]) -> list[str]:
  """One task's Markdown section: the best rules, then a row per optimizer."""
  kind = " (long horizon)" if t["long_horizon"] else ""
  test = (f"; test target {_fmt(t['test_target'])} ({t['best_test_rule']} "
          f"{t['test_setting']}, picked on validation)" if t["held_out"]
          else "; no held-out data (training loss only)")
  lines = [f"## {t['task']}{kind}", "",
           f"`{t['task_name']}`, {t['steps']} steps; target {_fmt(t['target'])} "
           f"(best tuned rule: {t['best_rule']} {t['baseline_setting']}){test}.", "",
           "| optimizer | setting | final train loss | steps to target | speedup | "
           "at or below | setting (valid) | valid | test | test at or below | "
           "time/step (ms) | time ratio | diverged |", "|---" * 13 + "|"]
  for r in t["rows"]:
    lines.append(
        f"| {r['optimizer']} | {r['setting']} | {_fmt(r['final_train_loss'])} ± "
        f"{_fmt(r['final_train_loss_std'], '.2g')} | {_fmt(r['steps_to_target'], 'd')} | "
        f"{r['speedup']:.2f}x | {_yes(r['at_or_below'])} | {r['valid_setting'] or '—'} | "
        f"{_fmt(r['valid_loss'])} | {_fmt(r['test_loss'])} | {_yes(r['at_or_below_test'])} | "
        f"{1e3 * r['time_per_step_s']:.3f} | {r['time_ratio']:.2f} | "
        f"{r['diverged_runs']}/{r['runs']} |")
  for r in t["rows"]:
    if r["sweep"]:
      sweep = ", ".join(f"{k}: {_fmt(v)}" for k, v in r["sweep"].items())
      lines.append(f"\n{r['optimizer']} sweep (final train loss): {sweep}; "
                   f"{r['sweep_diverged']} diverged runs.")
  return lines + [""]


def _aggregate_lines(summary: dict[str, Any]) -> list[str]:
  lines = ["## Aggregate over the suite", "",
           "| optimizer | train loss at or below the best tuned rule | test loss at or below "
           "| median speedup | median time ratio | diverged runs (incl. long horizon) |",
           "|---" * 6 + "|"]
  for spec, a in summary["aggregate"].items():
    lines.append(f"| {spec}{' (tuned rule)' if a['baseline'] else ''} | {a['at_or_below']}/"
                 f"{a['tasks']} | {a['at_or_below_test']}/{a['tasks_test']} | "
                 f"{_fmt(a['median_speedup'], '.2f')}x | {_fmt(a['median_time_ratio'], '.2f')}"
                 f" | {a['diverged_runs']}/{a['runs']} |")
  return lines


def markdown(summary: dict[str, Any]) -> str:
  """The summary as Markdown: per-task tables, the aggregate, long horizon, skips."""
  rules = "; ".join(f"{spec} ({', '.join(f'{lr:g}' for lr in lrs)})"
                    for spec, lrs in summary["baselines_swept"])
  lines = ["# Evaluation against the best tuned rule", "",
           f"Optimizers: {', '.join(summary['optimizers'])}; tuned rules and their "
           f"learning-rate sweeps: {rules}; {summary['num_seeds']} seeds per setting; final "
           f"loss = mean of the last {summary['final_fraction']:.0%} of steps; target = the "
           "best tuned rule's final training loss; speedup = its steps to the target / the "
           "optimizer's (0 when not reached); test loss = that of the setting with the lowest "
           "validation loss, compared with the best tuned rule picked the same way; time ratio "
           f"= wall time per step / {summary['baselines'][0]}'s (median over its sweep).", ""]
  for t in summary["tasks"]:
    lines += _task_lines(t)
  lines += _aggregate_lines(summary)
  for t in (t for t in summary["tasks"] if t["long_horizon"]):
    lines += ["", f"## Long horizon: {t['task']} ({t['steps']} steps)", "",
              "| optimizer | loss at 10% | 50% | 100% | finite and improving |",
              "|---" * 5 + "|"]
    for r in t["rows"]:
      at = r["loss_at"]
      lines.append(f"| {r['optimizer']} ({r['setting']}) | {_fmt(at['10%'])} | "
                   f"{_fmt(at['50%'])} | {_fmt(at['100%'])} | "
                   f"{'yes' if r['keeps_improving'] else 'NO'} |")
  if summary["skipped"]:
    lines += ["", "## Skipped", ""] + [f"- {s['task']}: {s['reason']}"
                                       for s in summary["skipped"]]
  return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- the loop ----

def task_entries(config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
  """The configured tasks (and the long-horizon one) as plain dicts."""
  entries = [{"label": label, "name": e.name, "kwargs": dict(e.get("kwargs", {})),
              "steps": int(e.get("steps", config.steps)), "long_horizon": False}
             for label, e in config.tasks.items()]
  lh = config.get("long_horizon")
  if lh:
    entries.append({"label": lh.label, "name": lh.name, "kwargs": dict(lh.get("kwargs", {})),
                    "steps": int(lh.steps), "long_horizon": True})
  return entries


def build_tasks(entries: list[dict]) -> tuple[list[tuple[dict, tasks.Task]], list[dict]]:
  """Builds every task up front; TFDS tasks without data are skipped with the reason.

  Raises:
    tasks.UnknownTaskError: a name that is not registered (lists the known ones).
  """
  built, skipped = [], []
  for e in entries:
    try:
      built.append((e, tasks.get(e["name"], **e["kwargs"])))
    except (tasks.MissingExtraError, tasks.DatasetNotPreparedError) as err:
      reason = str(err).strip().splitlines()[0]
      print(f"Skipping {e['label']} ({e['name']}): TFDS data not available: {reason}",
            flush=True)
      skipped.append({"task": e["label"], "reason": f"TFDS data not available: {reason}"})
  return built, skipped


def resumed_records(workdir: pathlib.Path, config: ml_collections.ConfigDict
                    ) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
  """Records of an interrupted or earlier run of the same protocol in `workdir`, by
  (task, optimizer, setting); only settings with every seed written count, the rest
  run again.

  The protocol is the config but for `optimizers`: a run with candidates added (or
  removed) reuses every record it shares, the tuned baselines' sweeps above all.
  Each "checkpoint:PATH" optimizer is pinned to the step directory it resolved to
  when it first ran here, so a run directory that saved a newer step since is
  refused rather than mixed with the old one's results. Writes
  `workdir/config.json` and rewrites results.jsonl to the complete settings.

  Raises:
    ValueError: if `workdir` holds results of a different protocol, or of another
      step of a checkpoint optimizer.
  """
  results_path, config_path = workdir / "results.jsonl", workdir / "config.json"
  specs = [spec for spec, _ in config.baselines] + list(config.optimizers)
  protocol = json.loads(config.to_json_best_effort())
  protocol.pop("optimizers", None)
  steps = {s: str(learned_opt.checkpoint.read_config(s.partition(":")[2])[0])
           for s in specs if s.startswith("checkpoint:")}
  fresh = not results_path.exists() or not results_path.read_text().strip()
  stored = ({} if fresh or not config_path.exists()
            else json.loads(config_path.read_text()))
  if not fresh:
    stored_protocol = dict(stored.get("config", {}))
    stored_protocol.pop("optimizers", None)
    moved = sorted(s for s, step in steps.items()
                   if stored.get("checkpoints", {}).get(s, step) != step)
    if not stored or stored_protocol != protocol or moved:
      raise ValueError(
          f"{workdir} holds the results of another evaluation protocol or checkpoint step "
          f"({config_path} differs or is missing{'; moved: ' + ', '.join(moved) if moved else ''}"
          f"), so they cannot be resumed; use a new --workdir, or delete {results_path} "
          "to start over there.")
  config_path.write_text(json.dumps(
      {"config": protocol, "checkpoints": {**stored.get("checkpoints", {}), **steps}},
      indent=1, sort_keys=True))
  if fresh:
    return {}
  groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
  for line in results_path.read_text().splitlines():
    try:
      record = json.loads(line)
    except json.JSONDecodeError:   # a line cut off by the interruption
      continue
    groups.setdefault((record["task"], record["optimizer"], record["setting"]),
                      []).append(record)
  complete = {k: v for k, v in groups.items()
              if sorted(r["seed"] for r in v) == list(range(config.num_seeds))}
  results_path.write_text("".join(json.dumps(r) + "\n" for v in complete.values()
                                  for r in v))
  return complete


ADAM_SPEC = "optax:adam"


def has_held_out(task: tasks.Task) -> bool:
  """Whether `task`'s validation split holds stored examples, apart from training's.

  Splits generated from the key alone (quadratics' exact loss) are no held-out
  data: such tasks count for the training metric only.
  """
  return not isinstance(task.datasets.valid, GeneratedSplit)


def with_adam_rate(optimizer: Optimizer, adam_learning_rate: float | None) -> Optimizer:
  """`optimizer` with `adam_learning_rate` fixed in every setting, when its factory
  takes one (e.g. `optax.contrib.muon`: Adam on the leaves it does not orthogonalize).

  The rate joins each setting's label ("lr=0.01,adam_lr=0.001"); other optimizers
  and `adam_learning_rate=None` return `optimizer` unchanged.
  """
  kind, _, name = optimizer.spec.partition(":")
  if adam_learning_rate is None or kind != "optax" or name not in optax_rule_names():
    return optimizer
  if "adam_learning_rate" not in inspect.signature(_optax_factory(name)).parameters:
    return optimizer
  settings = tuple((f"{label},adam_lr={adam_learning_rate:g}",
                    {**h, "adam_learning_rate": float(adam_learning_rate)})
                   for label, h in optimizer.settings)
  return dataclasses.replace(optimizer, settings=settings)


def configured_optimizers(config: ml_collections.ConfigDict
                          ) -> tuple[list[str], list[Optimizer]]:
  """(baseline specs, every optimizer parsed: baselines first, in config order).

  Baselines are swept over their own learning rates; a candidate "optax:NAME"
  over `config.learning_rates`; a candidate equal to a baseline is not repeated.
  """
  baselines = [spec for spec, _ in config.baselines]
  parsed = [parse_optimizer(spec, lrs) for spec, lrs in config.baselines]
  parsed += [parse_optimizer(spec, config.learning_rates)
             for spec in dict.fromkeys(config.optimizers) if spec not in baselines]
  return baselines, parsed


def _tuned_rate(records: list[dict]) -> float:
  """The learning rate of the lowest mean final training loss among `records`' settings."""
  by_setting: dict[str, list[dict]] = {}
  for r in records:
    by_setting.setdefault(r["setting"], []).append(r)
  return float(tuned([setting_stats(v) for v in by_setting.values()])["learning_rate"])


def _train_optimizer(entry: dict, task: tasks.Task, optimizer: Optimizer, keys: jax.Array,
                     resumed: dict, config: ml_collections.ConfigDict,
                     results_path: pathlib.Path, progress: dict) -> list[dict]:
  """Records of every setting of `optimizer` on one task: resumed ones read back, the
  rest trained, appended to results.jsonl and reported with an ETA."""
  finished = [label for label, _ in optimizer.settings
              if (entry["label"], optimizer.spec, label) in resumed]
  records = [r for label in finished for r in resumed[(entry["label"], optimizer.spec, label)]]
  progress["total"] -= entry["steps"] * len(finished)
  held_out = has_held_out(task)
  for label, hparams, params, losses, test_curve, sec in train_settings(
      task, optimizer, entry["steps"], keys, frozenset(finished), config.test_curve_points,
      config.test_curve_batches):
    new = run_records(entry, task, optimizer.spec, label, hparams, params, losses, sec,
                      config, held_out, test_curve)
    with results_path.open("a") as f:
      f.writelines(json.dumps(_jsonable(r)) + "\n" for r in new)
    records += new
    progress["done"] += entry["steps"]
    elapsed = time.time() - progress["start"]
    finals = " ".join(_fmt(r["final_train_loss"]) for r in new)
    eta = elapsed / progress["done"] * (progress["total"] - progress["done"])
    print(f"{entry['label']} | {optimizer.spec} {label} | final {finals} | "
          f"{1e3 * sec:.2f} ms/step | {sum(r['diverged'] for r in new)} diverged | "
          f"{elapsed:.0f}s, ETA {eta:.0f}s", flush=True)
  return records


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs the whole evaluation and writes results.jsonl, summary.md/json and plots.

  Per task the baselines train in order, and a baseline taking an
  `adam_learning_rate` gets "optax:adam"'s tuned rate on that task (see
  `with_adam_rate`). A run interrupted in `workdir` resumes there: settings whose
  every seed is in results.jsonl are read back instead of trained again (see
  `resumed_records`).

  Returns:
    The summary (what summary.json holds).
  """
  workdir_path = pathlib.Path(workdir)
  workdir_path.mkdir(parents=True, exist_ok=True)
  baselines, optimizers = configured_optimizers(config)
  specs = [o.spec for o in optimizers]
  built, skipped = build_tasks(task_entries(config))
  keys = jax.random.split(jax.random.PRNGKey(config.seed), config.num_seeds)
  results_path = workdir_path / "results.jsonl"
  resumed = resumed_records(workdir_path, config)
  if resumed:
    print(f"Resuming {workdir}: {len(resumed)} settings already done.", flush=True)
  progress = {"done": 0, "start": time.time(), "total": sum(
      e["steps"] * len(o.settings) for e, _ in built for o in optimizers)}
  summaries = []
  for entry, task in built:
    records, adam_rate = [], None
    for optimizer in optimizers:
      new = _train_optimizer(entry, task, with_adam_rate(optimizer, adam_rate), keys,
                             resumed, config, results_path, progress)
      if optimizer.spec == ADAM_SPEC and optimizer.spec in baselines:
        adam_rate = _tuned_rate(new)
      records += new
    summaries.append(task_summary(records, baselines, specs))
  summary = {"baselines": baselines, "optimizers": specs,
             "baselines_swept": [(spec, list(lrs)) for spec, lrs in config.baselines],
             "learning_rates": list(config.learning_rates), "num_seeds": config.num_seeds,
             "final_fraction": config.final_fraction, "tasks": summaries,
             "aggregate": aggregate(summaries, baselines), "skipped": skipped,
             "seconds": time.time() - progress["start"]}
  (workdir_path / "summary.json").write_text(json.dumps(_jsonable(summary), indent=1))
  (workdir_path / "summary.md").write_text(markdown(summary))
  plot_paths = plots.write_all(summary, workdir_path / "plots")
  print(f"\nTable: {workdir_path / 'summary.md'}\nPlots: {plot_paths[-1]} (overview) and "
        f"{len(plot_paths) - 1} per-task plots in {workdir_path / 'plots'}\n"
        f"Records: {results_path}  ({summary['seconds']:.0f}s)", flush=True)
  return summary


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  if flags.FLAGS.rank:
    summaries = [json.loads(pathlib.Path(p).read_text()) for p in flags.FLAGS.rank]
    print(rank_table(rank(summaries)))
    return
  if flags.FLAGS.config is None or flags.FLAGS.workdir is None:
    raise app.UsageError("--config and --workdir are required (unless --rank is given).")
  evaluate(flags.FLAGS.config, flags.FLAGS.workdir)


if __name__ == "__main__":
  # Flags are defined here, not at import, so other binaries can import this module.
  config_flags.DEFINE_config_file("config", None, "Evaluation config file "
                                  "(configs/evaluate.py[:VARIANT]).")
  flags.DEFINE_string("workdir", None, "Directory for results, summary and plots.")
  flags.DEFINE_list("rank", None, "Comma-separated summary.json paths: print their "
                    "optimizers ranked by `rank` and exit (no --config or --workdir).")
  app.run(main)
