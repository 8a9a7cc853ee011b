r"""Imitation training of the neural executor on the classic rules.

  python -m meta_train.imitate --config=configs/imitate.py --workdir=/tmp/imitate

Writes `workdir/checkpoints/<step>/` (orbax: executor weights + config, and the
training state), `workdir/metrics.jsonl`, and resumes from the latest checkpoint
when started again on the same workdir. `learned_opt.load(workdir/checkpoints)`
gives the trained executor as an optax optimizer.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import app, flags, logging
from ml_collections import config_flags

import tasks
from learned_opt import algorithms, checkpoint as lo_checkpoint
from learned_opt.executor import ExecutorConfig, HandSet, conditioning, hops, init_weights, network
from meta_train import imitation, provenance
from meta_train import train as train_lib



def executor_config(config: ml_collections.ConfigDict) -> ExecutorConfig:
  """The executor's config: `config.executor` plus what the rule ranges imply (the
  keywords each rule is trained with and, with `config.standardize_decay_features`,
  the center and scale of each decay keyword's log(1 - beta))."""
  trained = tuple((name, tuple(sorted(set(ranges.keys()) | {"learning_rate"})))
                  for name, ranges in sorted(config.rules.items()))
  stats = ()
  if config.get("standardize_decay_features", False):
    stats = tuple((name, key, *imitation.log_decay_stats(tuple(spec)))
                  for name, ranges in sorted(config.rules.items())
                  for key, spec in sorted(ranges.items()) if key in conditioning.DECAY_KEYS)
  return ExecutorConfig(trained_options=trained, decay_feature_stats=stats,
                        **config.executor.to_dict())


def hand_set_of(config: ml_collections.ConfigDict) -> HandSet:
  """What the imitation sets by hand on the executor: `config.hand_set` (pinned rule
  structure, readout rows; none of it learned)."""
  record = config.get("hand_set")
  return HandSet.from_json(record.to_dict() if record is not None else {})


def build_tasks(config: ml_collections.ConfigDict) -> list[tasks.Task]:
  """The fixed set of task structures imitation samples trajectories from."""
  return _build_tasks(json.dumps(config.family.to_dict(), sort_keys=True, default=list),
                      config.seed, config.num_structures)


@functools.lru_cache(maxsize=8)
def _build_tasks(family_json: str, seed: int, num_structures: int) -> list[tasks.Task]:
  # Cached: the same Task objects keep jitted trajectories compiled across calls.
  family = tasks.families.ImageMLPFamily(**json.loads(family_json))
  statics = family.sample_structures(jax.random.PRNGKey(seed), num_structures)
  return [family.task(tasks.TaskConfig(s, {"init_scale": jnp.asarray(1.0)})) for s in statics]


def active_rules(config: ml_collections.ConfigDict, step: int) -> list[str]:
  """Rules sampled at `step` (a curriculum may add rules later, see `stages`)."""
  rules = sorted(config.rules.keys())
  for start, names in config.get("stages", ()):
    if step >= start:
      rules = list(names)
  return rules


def rule_plans(exec_config: ExecutorConfig, rules: list[str], params) -> list:
  """The rounds' plans of `rules` at their defaults on `params`' tree (none without the
  multi-hop processor)."""
  if not network.multi_hop(exec_config):
    return []
  return [hops.plan_for(algorithms.get(name, learning_rate=1e-3), params) for name in rules]


def sample_batch(config, exec_config, task_list, step: int):
  """Trajectories of B (rule, hyperparameters, init) triples on one task structure.

  Returns (trajectories, conditionings, rule names, warmup): each trajectory has
  warmup + unroll steps, warmup drawn from `config.warmup_choices`.
  """
  rng = np.random.default_rng([config.seed, step])
  task = task_list[int(rng.integers(len(task_list)))]
  choices = tuple(config.get("warmup_choices", (0,)))
  warmup = int(choices[int(rng.integers(len(choices)))])
  rules = active_rules(config, step)
  trajs, conds, names = [], [], []
  for _ in range(config.batch_size):
    name = rules[int(rng.integers(len(rules)))]
    kwargs = imitation.RuleSampler(name, config.rules[name].to_dict()).sample(rng)
    key = jax.random.PRNGKey(int(rng.integers(2**31)))
    k_init, k_data, k_loss = jax.random.split(key, 3)
    params = task.init(k_init)
    batches = task.datasets.train.stacked(k_data, warmup + config.unroll)
    static, dynamic = imitation.split_kwargs(kwargs)
    trajs.append(imitation.rule_trajectory(name, static, dynamic, task.loss, params, batches,
                                           k_loss))
    conds.append(imitation.conditioning_for(exec_config, name, kwargs, params))
    names.append(name)
  # Every rule runs the rounds of one union plan per task structure (that of every rule
  # the config samples, so a batch without Muon compiles no other program), each only
  # where its own plan does (imitation.pad_rounds).
  plan = hops.union([c.plan for c in conds] + rule_plans(exec_config, rules, params),
                    len(jax.tree.leaves(params)))
  padded = [imitation.pad_rounds(t, c, plan) for t, c in zip(trajs, conds)]
  return (imitation.stack([t for t, _ in padded]), imitation.stack([c for _, c in padded]),
          names, warmup)


# Architecture fields that change what the tensor net's raw outputs mean (not their
# shapes): a checkpoint continued under another value would silently be another optimizer.
REINTERPRETING_FIELDS = ("normalizer",)


def initial_weights(config: ml_collections.ConfigDict, exec_config: ExecutorConfig):
  """Fresh weights, or those of `config.init_from` (a directory or 'shipped:NAME').

  A checkpoint's modules must have the shapes `exec_config` gives them; modules
  it lacks (an architecture option it was trained without, such as
  `learned_step_size` or the controller) start at their neutral initial values.
  Rules and extra keywords appended after the checkpoint's are added
  (`network.adapt_weights`; a new rule's embedding row copied from the rule
  `config.new_rule_rows` names for it). A resumed run ignores
  `init_from`: its own latest checkpoint wins.
  """
  source = config.get("init_from", "")
  if not source:
    return init_weights(exec_config, jax.random.PRNGKey(config.seed))
  weights, source_config, _ = train_lib.restore_source(source)
  if tuple(exec_config.rules[:len(source_config.rules)]) != tuple(source_config.rules):
    raise ValueError(f"config.init_from={source!r} was trained for rules {source_config.rules}, "
                     f"but this imitation's executor has {exec_config.rules}; start fresh "
                     "(init_from=''), keep the rule list or append new rules after it.")
  for field in REINTERPRETING_FIELDS:
    if getattr(source_config, field) != getattr(exec_config, field):
      raise ValueError(
          f"config.init_from={source!r} was trained with executor.{field}="
          f"{getattr(source_config, field)!r}, but config.executor.{field}="
          f"{getattr(exec_config, field)!r}: the same weights would mean a different "
          f"optimizer. Set --config.executor.{field}={getattr(source_config, field)} "
          "or start fresh (init_from='').")
  kept = lambda stats: tuple(row for row in stats if row[0] in source_config.rules)  # noqa: E731
  if kept(source_config.decay_feature_stats) != kept(exec_config.decay_feature_stats):
    raise ValueError(
        f"config.init_from={source!r} reads decay features standardized as "
        f"{source_config.decay_feature_stats or 'unstandardized'}, but this config gives "
        f"{exec_config.decay_feature_stats or 'unstandardized'} (from "
        "config.standardize_decay_features and the decay keywords' ranges in config.rules): "
        "the same weights would read every decay differently. Match the source's setting "
        "and ranges, or start fresh (init_from='').")
  try:
    return network.adapt_weights(weights, source_config, exec_config,
                                 dict(config.get("new_rule_rows", {})))
  except ValueError as e:
    raise ValueError(f"config.init_from={source!r} does not fit config.executor: {e}") from e


@functools.lru_cache(maxsize=4)
def _compiled_step(exec_config: ExecutorConfig, hand_set: HandSet, learning_rate: float,
                   clip_norm: float, hint_weight: float, magnitude_weight: float = 1.0,
                   readout_penalty: float = 0.0, penalty_exempt: tuple[str, ...] = (),
                   mixture_penalty: float = 0.0, warmup_gradient: bool = False,
                   mixture_exempt: tuple[str, ...] = (),
                   preconditioner_hint_weight: float = 0.0,
                   denominator_hint_weight: float = 0.0,
                   primitive_hint_weight: float = 0.0,
                   denominator_hint_scale: bool = False,
                   primitive_hint_exempt: tuple[str, ...] = (),
                   clip_hint_weight: float = 0.0, ns_hint_weight: float = 0.0,
                   round_offset_weight: float = 0.0):
  """(meta optimizer, jitted train step), cached so a resumed run reuses the compile."""
  meta_opt = optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(learning_rate))
  return meta_opt, imitation.make_train_step(
      exec_config, hand_set, meta_opt, hint_weight, magnitude_weight=magnitude_weight,
      readout_penalty=readout_penalty, penalty_exempt=penalty_exempt,
      mixture_penalty=mixture_penalty, warmup_gradient=warmup_gradient,
      mixture_exempt=mixture_exempt, preconditioner_hint_weight=preconditioner_hint_weight,
      denominator_hint_weight=denominator_hint_weight,
      primitive_hint_weight=primitive_hint_weight, denominator_hint_scale=denominator_hint_scale,
      primitive_hint_exempt=primitive_hint_exempt, clip_hint_weight=clip_hint_weight,
      ns_hint_weight=ns_hint_weight, round_offset_weight=round_offset_weight)


def _manager(workdir: str, config) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints, create=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"),
                               options=options)


def _save(manager, step, weights, opt_state, exec_config, hand_set, config, metrics):
  meta = lo_checkpoint.metadata(
      exec_config, dict(config.default_rule),
      {**provenance.run_record(),
       "config": json.loads(config.to_json_best_effort()), "step": step, "metrics": metrics},
      hand_set)
  manager.save(step, args=ocp.args.Composite(
      weights=ocp.args.StandardSave(jax.device_get(weights)),
      config=ocp.args.JsonSave(meta),
      train_state=ocp.args.StandardSave({"opt_state": jax.device_get(opt_state),
                                         "step": np.asarray(step)})))


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) imitation; returns the last metrics."""
  provenance.git_state()   # read now: the checkpoints name the commit the run started at
  pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
  exec_config, record = executor_config(config), hand_set_of(config)
  weights = initial_weights(config, exec_config)
  meta_opt, train_step = _compiled_step(
      exec_config, record, config.learning_rate, config.clip_norm, config.hint_weight,
      magnitude_weight=config.get("magnitude_weight", 1.0),
      readout_penalty=config.get("direction_readout_penalty", 0.0),
      penalty_exempt=tuple(config.get("readout_penalty_exempt", ())),
      mixture_penalty=config.get("normalizer_mixture_penalty", 0.0),
      warmup_gradient=bool(config.get("warmup_gradient", False)),
      mixture_exempt=tuple(config.get("mixture_penalty_exempt", ())),
      preconditioner_hint_weight=config.get("preconditioner_hint_weight", 0.0),
      denominator_hint_weight=config.get("denominator_hint_weight", 0.0),
      primitive_hint_weight=config.get("primitive_hint_weight", 0.0),
      denominator_hint_scale=bool(config.get("denominator_hint_scale", False)),
      primitive_hint_exempt=tuple(config.get("primitive_hint_exempt", ())),
      clip_hint_weight=config.get("clip_hint_weight", 0.0),
      ns_hint_weight=config.get("ns_hint_weight", 0.0),
      round_offset_weight=config.get("round_offset_weight", 0.0))
  opt_state = meta_opt.init(weights)
  manager = _manager(workdir, config)
  start = 0
  if manager.latest_step() is not None:
    start = manager.latest_step()
    restored = manager.restore(start, args=ocp.args.Composite(
        weights=ocp.args.StandardRestore(weights),
        train_state=ocp.args.StandardRestore({"opt_state": opt_state,
                                              "step": np.asarray(0)})))
    weights = restored.weights
    opt_state = restored.train_state["opt_state"]
    print(f"Resumed from step {start} in {workdir}", flush=True)
  task_list = build_tasks(config)
  metrics_path = pathlib.Path(workdir) / "metrics.jsonl"
  window: dict[str, list[tuple[float, float]]] = {}
  last: dict[str, Any] = {}
  t0, done_since = time.time(), 0
  for step in range(start, config.num_steps):
    trajs, conds, names, warmup = sample_batch(config, exec_config, task_list, step)
    weights, opt_state, m = train_step(weights, opt_state, trajs, conds, warmup=warmup)
    for name, cos, err in zip(names, np.asarray(m["cosine"]), np.asarray(m["update_rel_err"])):
      window.setdefault(name, []).append((float(cos), float(err)))
    done_since += 1
    if (step + 1) % config.log_every == 0 or step + 1 == config.num_steps:
      rate = done_since / (time.time() - t0)
      last = {"step": step + 1, "loss": float(m["loss"]), "skipped": float(m["skipped"]),
              "steps_per_s": rate, "eta_s": (config.num_steps - step - 1) / max(rate, 1e-9),
              "cosine": {k: float(np.median([c for c, _ in v[-50:]])) for k, v in window.items()},
              "rel_err": {k: float(np.median([e for _, e in v[-50:]])) for k, v in window.items()}}
      for penalty in ("readout_penalty", "mixture_penalty", "primitive_hint"):
        if penalty in m:
          last[penalty] = float(np.mean(m[penalty]))
      for hint in ("preconditioner_rel_err", "denominator_shape_err", "clip_err"):
        hinted = [e for n, e in zip(names, np.asarray(m.get(hint, ())))
                  if n in imitation.PRECONDITIONER_HINTS]   # the rules that give the hint
        if hinted:
          last[hint] = float(np.mean(hinted))
      # Per-hint agreement: the moments' and every round iterate's relative error, over
      # the batch's rules that give the hint (NaN elsewhere).
      for hint in ["hint_rel_err"] + sorted(k for k in m if k.startswith("ns_iterate_")):
        values = np.asarray(m[hint], np.float64)
        if np.any(np.isfinite(values)):
          last[hint] = float(np.nanmean(values))
      with metrics_path.open("a") as f:
        f.write(json.dumps(last) + "\n")
      print(f"step {step + 1}/{config.num_steps} loss {last['loss']:.4f} | {rate:.2f} steps/s,"
            f" ETA {last['eta_s']:.0f}s | update cosine "
            + " ".join(f"{k}={v:.3f}" for k, v in sorted(last["cosine"].items())), flush=True)
    if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.num_steps:
      _save(manager, step + 1, weights, opt_state, exec_config, record, config, last)
  manager.wait_until_finished()
  manager.close()
  return last


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax is chatty at INFO; progress is printed.
  train(flags.FLAGS.config, flags.FLAGS.workdir)


if __name__ == "__main__":
  # Flags are defined here, not at import, so other binaries can import this module.
  config_flags.DEFINE_config_file("config", None, "Imitation config file.")
  flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics.")
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
