r"""Meta-training of the executor beyond the rules it imitates.

  python -m meta_train.train --config=configs/meta_train.py --workdir=DIR
  # several hosts (or processes on one host), each with its own --process_id:
  python -m meta_train.train --config=... --workdir=DIR \
      --coordinator_address=HOST:PORT --num_processes=N --process_id=I

The executor starts from an imitation checkpoint (`config.init_from`) and is
conditioned on one rule (`config.rule`, e.g. Adam at the imitated learning
rate). Every outer step advances a population of tasks by one segment and
meta-optimizes theta (the executor's weights) with clipped Adam on

  g = g_estimator + lambda * d/dtheta L_imitation,

g_estimator from PES, TBPTT or ES (`meta_train.estimators`) on the mean
normalized training loss or the final validation loss, and L_imitation the
imitation loss on the same rule (`meta_train.imitation.trajectory_loss`), kept
as a regularizer with weight lambda = `config.imitation_weight` (0 turns it
off). A non-finite g is skipped (theta and the meta-optimizer state are kept)
and counted.

With `config.num_structures` > 1, each structure has its own population and
outer step s advances structure s mod num_structures;
`config.episode_truncations` gives the structures episodes of those lengths in turn.

Writes `workdir/checkpoints/<step>/` (orbax: weights + config, which is all
`learned_opt.load(workdir/checkpoints)` needs, and train_state: meta-optimizer
state, populations with their PES accumulators, skip count) and
`workdir/metrics.jsonl`. A run started on a workdir with checkpoints resumes
from the latest one; all randomness comes from the seed, the outer step
(fold_in(seed, step)) and the checkpointed task keys, so a killed and restarted
run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import app, flags, logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from ml_collections import config_flags

import tasks
from learned_opt import checkpoint as lo_checkpoint
from learned_opt import shipped
from learned_opt.executor import ExecutorConfig, HandSet, init_weights, network
from meta_train import estimators, imitation, provenance, unroll

PyTree = Any
class TrainState(NamedTuple):
  """Everything a run carries from one outer step to the next."""
  weights: PyTree                                     # theta (replicated)
  opt_state: PyTree                                   # meta-optimizer state (replicated)
  populations: tuple[estimators.EstimatorState, ...]  # one per structure (sharded)
  skipped: jax.Array                                  # int32: non-finite meta-gradients


@dataclasses.dataclass(frozen=True, eq=False)
class Setup:
  """What a config builds: executor, populations' problems and the jitted steps."""
  config: ml_collections.ConfigDict
  exec_config: ExecutorConfig
  hand_set: HandSet
  initial_weights: PyTree          # host arrays
  mesh: Mesh
  meta_opt: optax.GradientTransformation
  estimators: tuple[estimators.Estimator, ...]
  splits: tuple[tuple[Any, Any], ...]   # (train, valid) per structure, replicated
  steps: tuple[Callable, ...]           # jitted train step per structure


def rule_of(config: ml_collections.ConfigDict) -> tuple[str, dict[str, Any]]:
  """(algorithm, optax keyword arguments) the executor is conditioned on."""
  rule = dict(config.rule)
  return rule.pop("algorithm"), rule


# Settings the config may change on a restored checkpoint (None keeps the checkpoint's):
# architecture fields that do not change the shapes of the weights, and hand-set fields.
ARCHITECTURE_OVERRIDES = ("direction_readout", "learned_step_size")
HAND_SET_OVERRIDES = ("normalizer_degree", "step_size_adaptation", "step_size_target")


def initial_executor(config: ml_collections.ConfigDict
                     ) -> tuple[PyTree, ExecutorConfig, HandSet]:
  """Weights, architecture and hand-set record from `config.init_from`.

  'shipped:NAME' reads `learned_opt/weights/NAME`, a directory path reads that
  checkpoint, and '' builds fresh weights (`network.init_weights`, seeded) of
  the architecture in `config.executor`, with nothing set by hand. The
  ARCHITECTURE_OVERRIDES and HAND_SET_OVERRIDES keys of the config, when set,
  replace the checkpoint's; a module the new architecture adds
  (`learned_step_size`'s head) starts at its initial, neutral value.
  """
  weights, exec_config, hand_set = _initial_weights(config)
  pick = lambda keys: {key: config.get(key) for key in keys  # noqa: E731
                       if config.get(key) is not None}
  exec_config = dataclasses.replace(exec_config, **pick(ARCHITECTURE_OVERRIDES))
  hand_set = dataclasses.replace(hand_set, **pick(HAND_SET_OVERRIDES))
  return network.complete_weights(weights, exec_config), exec_config, hand_set


def _initial_weights(config: ml_collections.ConfigDict
                     ) -> tuple[PyTree, ExecutorConfig, HandSet]:
  source = config.init_from
  if not source:
    algorithm, kwargs = rule_of(config)
    trained = ((algorithm, tuple(sorted(set(kwargs) | {"learning_rate"}))),)
    exec_config = ExecutorConfig(trained_options=trained, **config.executor.to_dict())
    weights = jax.jit(init_weights, static_argnums=0)(exec_config,
                                                      jax.random.PRNGKey(config.seed))
    return jax.device_get(weights), exec_config, HandSet()
  return restore_source(source)


def restore_source(source: str) -> tuple[PyTree, ExecutorConfig, HandSet]:
  """(weights, architecture, hand-set record) of 'shipped:NAME'
  (`learned_opt/weights/NAME`) or a directory."""
  with shipped.source_path(source) as path:
    weights, exec_config, hand_set, _ = lo_checkpoint.restore(path)
  return jax.device_get(weights), exec_config, hand_set


def build_family(config: ml_collections.ConfigDict) -> tasks.TaskFamily:
  """`config.family` as a family (see `tasks.families.from_spec`)."""
  return tasks.families.from_spec(config.family)


def structures(config: ml_collections.ConfigDict, family: tasks.TaskFamily) -> list[Any]:
  """`config.num_structures` distinct static structures drawn from the seed."""
  return family.sample_structures(jax.random.PRNGKey(config.seed), config.num_structures)


def imitation_regularizer(problem: unroll.Problem, exec_config: ExecutorConfig,
                          hand_set: HandSet, algorithm: str, kwargs: dict[str, Any],
                          num_trajectories: int,
                          length: int, hint_weight: float, mesh: Mesh) -> Callable:
  """(weights, key, train) -> (L_imitation, dL/dweights), L averaged over trajectories.

  Each trajectory is the rule trained on a fresh task of the population's
  structure for `length` steps (`imitation.rule_trajectory`); L is
  `imitation.trajectory_loss` along it. The trajectories are spread over the
  mesh's devices (their number is rounded up to a multiple of the device count).
  """
  static_kwargs, dynamic_kwargs = imitation.split_kwargs(kwargs)
  devices = mesh.shape[estimators.AXIS]
  total = -(-num_trajectories // devices) * devices

  def one(weights, key, train):
    k_dynamic, k_init, k_data, k_loss = jax.random.split(key, 4)
    task = problem.task(problem.family.sample_dynamic(k_dynamic, problem.static))
    params = task.init(k_init)
    traj = imitation.rule_trajectory(algorithm, static_kwargs, dynamic_kwargs, task.loss,
                                     params, train.stacked(k_data, length), k_loss)
    cond = imitation.conditioning_for(exec_config, algorithm, kwargs, params)
    return imitation.trajectory_loss(weights, exec_config, hand_set, traj, cond,
                                     hint_weight)[0]

  def local(weights, keys, train):
    total_loss = lambda w: jnp.sum(jax.vmap(one, in_axes=(None, 0, None))(w, keys, train))
    loss, grad = jax.value_and_grad(total_loss)(weights)
    psum = lambda x: jax.lax.psum(x, estimators.AXIS) / total
    return psum(loss), jax.tree.map(psum, grad)

  replicated, sharded = PartitionSpec(), PartitionSpec(estimators.AXIS)
  spread = jax.shard_map(local, mesh=mesh, in_specs=(replicated, sharded, replicated),
                         out_specs=(replicated, replicated), check_vma=False)
  return lambda weights, key, train: spread(weights, jax.random.split(key, total), train)


def trainable_mask(weights: PyTree, modules: tuple[str, ...]) -> PyTree | None:
  """Per leaf of `weights`, 1.0 where its module is in `modules`, else 0.0 (None: all).

  Meta-training only some modules (`config.trainable_modules`, e.g. the learned
  step-size head) holds the rest exactly: PES and ES do not perturb them and
  their meta-gradient is masked to 0.

  Raises:
    ValueError: a name in `modules` is not a module of `weights`.
  """
  if not modules:
    return None
  unknown = sorted(set(modules) - set(weights))
  if unknown:
    raise ValueError(f"trainable_modules names {unknown}, which the executor does not have; "
                     f"its modules are {sorted(weights)} (step_size_head needs "
                     "learned_step_size=True).")
  return {name: jax.tree.map(lambda _, on=name in modules: float(on), module)
          for name, module in weights.items()}


def meta_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  return optax.chain(optax.clip_by_global_norm(config.clip_norm),
                     optax.adam(config.learning_rate))


def apply_meta_update(meta_opt: optax.GradientTransformation, weights: PyTree,
                      opt_state: PyTree, grad: PyTree) -> tuple[PyTree, PyTree, jax.Array]:
  """One meta-optimizer step, skipped (inputs returned) when `grad` is not finite."""
  finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grad)]))
  updates, new_opt_state = meta_opt.update(grad, opt_state, weights)
  new_weights = optax.apply_updates(weights, updates)
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
  return keep(new_weights, weights), keep(new_opt_state, opt_state), finite


def make_train_step(estimator: estimators.Estimator, meta_opt: optax.GradientTransformation,
                    regularizer: Callable | None, weight: float,
                    compiler_options: dict[str, Any] | None = None,
                    trainable: PyTree | None = None) -> Callable:
  """Jitted (weights, opt_state, population, skipped, key, train, valid) -> same + metrics.

  `regularizer(weights, key, train) -> (loss, grad)` (see `imitation_regularizer`)
  adds `weight * grad` to the estimator's meta-gradient. `trainable` (see
  `trainable_mask`) zeroes the meta-gradient of the modules held fixed.
  """

  def step(weights, opt_state, population, skipped, key, train, valid):
    grad, population, metrics = estimator.estimate(weights, population, train, valid)
    if regularizer is not None and weight > 0:
      reg, reg_grad = regularizer(weights, key, train)
      grad = jax.tree.map(lambda g, r: g + weight * r, grad, reg_grad)
      metrics["imitation_loss"] = reg
    if trainable is not None:
      grad = jax.tree.map(lambda g, m: g * m, grad, trainable)
    metrics["grad_norm"] = optax.global_norm(grad)
    weights, opt_state, finite = apply_meta_update(meta_opt, weights, opt_state, grad)
    metrics["skipped_now"] = ~finite
    return weights, opt_state, population, skipped + (~finite).astype(jnp.int32), metrics

  rep = NamedSharding(estimator.mesh, PartitionSpec())
  pop = estimator.state_sharding
  return jax.jit(step, in_shardings=(rep, rep, pop, rep, rep, rep, rep),
                 out_shardings=(rep, rep, pop, rep, rep), compiler_options=compiler_options)


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
  """Host values as arrays replicated on every device of the (global) mesh."""
  sharding = NamedSharding(mesh, PartitionSpec())

  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree.map(put, tree)


def to_host(tree: PyTree) -> PyTree:
  """Replicated arrays as numpy (this process's copy; works on several hosts)."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def truncations_of(config: ml_collections.ConfigDict, index: int) -> int:
  """Structure `index`'s episode length in segments: `config.num_truncations`, or with
  `config.episode_truncations` (a tuple), its entries in turn (horizons of several
  lengths, one per structure)."""
  lengths = tuple(config.get("episode_truncations", ()))
  return int(lengths[index % len(lengths)]) if lengths else config.num_truncations


def build(config: ml_collections.ConfigDict, mesh: Mesh | None = None) -> Setup:
  """Builds the executor, the populations' estimators and the jitted steps."""
  mesh = mesh or estimators.default_mesh()
  weights, exec_config, hand_set = initial_executor(config)
  algorithm, kwargs = rule_of(config)
  optimizer = unroll.executor_optimizer(exec_config, hand_set, algorithm, kwargs,
                                        config.get("executor_form", "fused"))
  family = build_family(config)
  meta_opt = meta_optimizer(config)
  trainable = trainable_mask(weights, tuple(config.get("trainable_modules", ())))
  options = dict(config.get("compiler_options", {})) or None
  ests, splits, steps = [], [], []
  for index, static in enumerate(structures(config, family)):
    problem = unroll.Problem(family, static, optimizer, config.truncation_length,
                             truncations_of(config, index), config.max_normalized_loss,
                             config.get("loss_scale", "linear"))
    est = estimators.make(config.estimator, problem, config.population, config.objective,
                          config.sigma, mesh, options, trainable)
    regularizer = None
    if config.imitation_weight > 0:
      regularizer = imitation_regularizer(
          problem, exec_config, hand_set, algorithm, kwargs,
          config.imitation.num_trajectories, config.imitation.unroll,
          config.imitation.hint_weight, mesh)
    data = family.datasets(static)
    ests.append(est)
    splits.append((replicate(data.train, mesh), replicate(data.valid, mesh)))
    steps.append(make_train_step(est, meta_opt, regularizer, config.imitation_weight,
                                 options, trainable))
  return Setup(config, exec_config, hand_set, weights, mesh, meta_opt, tuple(ests),
               tuple(splits), tuple(steps))


def _roots(seed: int) -> tuple[jax.Array, jax.Array]:
  """Independent key roots: (outer steps, populations)."""
  roots = jax.random.split(jax.random.PRNGKey(seed))
  return roots[0], roots[1]


def init_state(setup: Setup) -> TrainState:
  """The state at outer step 0 (population i drawn from fold_in(root, i))."""
  weights = replicate(setup.initial_weights, setup.mesh)
  opt_state = replicate(jax.device_get(setup.meta_opt.init(setup.initial_weights)),
                        setup.mesh)
  root = _roots(setup.config.seed)[1]
  populations = tuple(
      est.init(np.asarray(jax.random.fold_in(root, i)), weights, train)
      for i, (est, (train, _)) in enumerate(zip(setup.estimators, setup.splits)))
  return TrainState(weights, opt_state, populations,
                    replicate(np.zeros((), np.int32), setup.mesh))


def train_step(setup: Setup, state: TrainState, step: int) -> tuple[TrainState, dict]:
  """Outer step `step`: advances structure step mod n and meta-updates theta."""
  index = step % len(setup.steps)
  key = np.asarray(jax.random.fold_in(_roots(setup.config.seed)[0], step))
  train, valid = setup.splits[index]
  weights, opt_state, population, skipped, metrics = setup.steps[index](
      state.weights, state.opt_state, state.populations[index], state.skipped, key, train,
      valid)
  populations = state.populations[:index] + (population,) + state.populations[index + 1:]
  return TrainState(weights, opt_state, populations, skipped), metrics


def _manager(workdir: str, config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints, create=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"),
                               options=options)


def save(manager: ocp.CheckpointManager, setup: Setup, state: TrainState, step: int,
         metrics: dict[str, Any]) -> None:
  """Writes weights + config (what learned_opt.load reads) and the whole train state."""
  algorithm, kwargs = rule_of(setup.config)
  meta = lo_checkpoint.metadata(
      setup.exec_config, {"algorithm": algorithm, **kwargs},
      {**provenance.run_record(), "config": json.loads(setup.config.to_json_best_effort()),
       "step": step, "metrics": metrics}, setup.hand_set)
  manager.save(step, args=ocp.args.Composite(
      weights=ocp.args.StandardSave(to_host(state.weights)),
      config=ocp.args.JsonSave(meta),
      train_state=ocp.args.StandardSave({
          "opt_state": to_host(state.opt_state), "populations": list(state.populations),
          "skipped": to_host(state.skipped), "step": np.asarray(step)})))


def restore(manager: ocp.CheckpointManager, setup: Setup, like: TrainState, step: int
            ) -> TrainState:
  """The state saved at `step`, placed like `like` (replicated / sharded)."""
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
      list(like.populations))
  restored = manager.restore(step, args=ocp.args.Composite(
      weights=ocp.args.StandardRestore(to_host(like.weights)),
      train_state=ocp.args.StandardRestore({
          "opt_state": to_host(like.opt_state), "populations": abstract,
          "skipped": to_host(like.skipped), "step": np.asarray(0)})))
  ts = restored.train_state
  return TrainState(replicate(restored.weights, setup.mesh),
                    replicate(ts["opt_state"], setup.mesh), tuple(ts["populations"]),
                    replicate(ts["skipped"], setup.mesh))


def _truncate_metrics(path: pathlib.Path, step: int) -> None:
  """Drops records past `step` (written by a run that died before its next checkpoint)."""
  if path.exists():
    lines = [l for l in path.read_text().splitlines() if l.strip()]
    path.write_text("".join(l + "\n" for l in lines if json.loads(l)["step"] <= step))


def _summary(window: list[dict], step: int, num_steps: int, rate: float | None,
             outer_rate: float | None, skipped: int, structure: int) -> dict[str, Any]:
  """The record of one log line: window means of the step metrics, rates, ETA."""
  host = [{k: float(np.asarray(v.addressable_data(0))) for k, v in m.items()} for m in window]
  mean = lambda k: float(np.mean([m[k] for m in host])) if k in host[0] else None
  out = {"step": step, "meta_loss": mean("meta_loss"), "valid_loss": mean("valid_loss"),
         "imitation_loss": mean("imitation_loss"), "grad_norm": mean("grad_norm"),
         "ended_tasks": int(sum(m["ended"] for m in host)), "skipped": skipped,
         "inner_steps_per_s": rate,
         "eta_s": (num_steps - step) / outer_rate if outer_rate else None,
         "structure": structure}
  return {k: v for k, v in out.items() if v is not None or k in ("inner_steps_per_s", "eta_s")}


def _progress_line(record: dict[str, Any], num_steps: int) -> str:
  rate, eta = record["inner_steps_per_s"], record["eta_s"]
  losses = f"valid {record['valid_loss']:.4f}"
  if "imitation_loss" in record:
    losses += f", imitation {record['imitation_loss']:.4f}"
  return (f"step {record['step']}/{num_steps} meta-loss {record['meta_loss']:.4f} ({losses}) | "
          + (f"{rate:.0f} inner steps/s, ETA {eta:.0f}s" if rate else "compiling...")
          + f" | skipped {record['skipped']}")


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) meta-training; returns the last logged metrics."""
  provenance.git_state()   # read now: the checkpoints name the commit the run started at
  primary = jax.process_index() == 0
  pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
  setup = build(config)
  state = init_state(setup)
  manager = _manager(workdir, config)
  metrics_path = pathlib.Path(workdir) / "metrics.jsonl"
  start = manager.latest_step() or 0
  if start:
    state = restore(manager, setup, state, start)
    if primary:
      _truncate_metrics(metrics_path, start)
      print(f"Resumed from step {start} in {workdir}", flush=True)
  inner_steps = [est.inner_steps for est in setup.estimators]
  warmup = len(inner_steps)   # each structure's first step compiles: timed from their end
  last: dict[str, Any] = {}
  window: list[dict] = []
  t0, counted, done = time.time(), 0, 0
  for step in range(start, config.num_steps):
    state, metrics = train_step(setup, state, step)
    window.append(metrics)
    done += 1
    if done == warmup:
      jax.block_until_ready(state.weights)
      t0 = time.time()
    elif done > warmup:
      counted += inner_steps[step % len(inner_steps)]
    if (step + 1) % config.log_every == 0 or step + 1 == config.num_steps:
      jax.block_until_ready(state.weights)
      elapsed = max(time.time() - t0, 1e-9)
      rate = counted / elapsed if counted else None
      outer_rate = (done - warmup) / elapsed if done > warmup else None
      last = _summary(window, step + 1, config.num_steps, rate, outer_rate,
                      int(to_host(state.skipped)), step % len(inner_steps))
      window = []
      if primary:
        with metrics_path.open("a") as f:
          f.write(json.dumps(last) + "\n")
        print(_progress_line(last, config.num_steps), flush=True)
    if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.num_steps:
      save(manager, setup, state, step + 1, last)
  manager.wait_until_finished()
  manager.close()
  return last


def initialize_distributed(coordinator_address: str | None, num_processes: int | None,
                           process_id: int | None) -> None:
  """Joins a multi-process run (jax.distributed); CPU collectives go through gloo."""
  if not coordinator_address:
    return
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax is chatty at INFO; progress is printed.
  initialize_distributed(flags.FLAGS.coordinator_address, flags.FLAGS.num_processes,
                         flags.FLAGS.process_id)
  train(flags.FLAGS.config, flags.FLAGS.workdir)


if __name__ == "__main__":
  # Flags are defined here, not at import, so other binaries can import this module.
  config_flags.DEFINE_config_file("config", None, "Meta-training config file.")
  flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics.")
  flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (several "
                      "processes only).")
  flags.DEFINE_integer("num_processes", None, "Number of processes.")
  flags.DEFINE_integer("process_id", None, "This process's index.")
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
