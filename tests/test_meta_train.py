"""meta_train.train: SIGKILL + restart is bit-exact, two processes, skipped meta-gradients."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

import learned_opt
import tasks
from configs import meta_train as meta_train_config
from meta_train import estimators, train
from tests.test_meta_unroll import THETA, quadratic_problem

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A tiny executor on a tiny MLP: the runs below are compile-bound.
TINY = """
from configs import meta_train

def get_config():
  config = meta_train.get_config("smoke")
  config.init_from = ""
  config.executor = dict(embed_dim=2, hidden=4, edge_hidden=1, processor="row_column",
                         layer_readout=True)
  config.imitation_weight = {imitation_weight}
  config.num_steps = {num_steps}
  config.checkpoint_every = {checkpoint_every}
  config.log_every = 1
  config.compiler_options = {{"xla_backend_optimization_level": 0}}   # compile-bound runs
  return config
"""


def _config_file(tmp_path, name, imitation_weight=0.1, num_steps=4, checkpoint_every=2):
  path = tmp_path / f"{name}.py"
  path.write_text(TINY.format(imitation_weight=imitation_weight, num_steps=num_steps,
                              checkpoint_every=checkpoint_every))
  return str(path)


def _env(cache_dir, devices=4):
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache_dir),
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return env


def _launch(config, workdir, env, *extra):
  return subprocess.Popen(
      [sys.executable, "-m", "meta_train.train", f"--config={config}",
       f"--workdir={workdir}", *extra],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc, timeout=240):
  out, _ = proc.communicate(timeout=timeout)
  assert proc.returncode == 0, out[-3000:]
  return out


def _read_item(step_dir, item):
  checkpointer = ocp.PyTreeCheckpointer()
  path = os.path.join(step_dir, item)
  tree = checkpointer.metadata(path).item_metadata.tree
  args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
  return checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=args))


def _steps(workdir):
  root = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(root):
    return []
  return sorted(int(n) for n in os.listdir(root) if n.isdigit())


@pytest.mark.slow
def test_sigkill_and_restart_end_bit_identical(tmp_path):
  config = _config_file(tmp_path, "resume", num_steps=10, checkpoint_every=2)
  env = _env(tmp_path / "jax_cache")
  straight, killed = tmp_path / "straight", tmp_path / "killed"
  _finish(_launch(config, straight, env))    # fills the compilation cache

  proc = _launch(config, killed, env)
  deadline = time.time() + 180
  while not _steps(killed) and proc.poll() is None and time.time() < deadline:
    time.sleep(0.01)
  proc.send_signal(signal.SIGKILL)
  proc.communicate()
  interrupted_at = max(_steps(killed))
  assert interrupted_at < 10, "the run finished before it could be killed"
  out = _finish(_launch(config, killed, env))
  assert f"Resumed from step {interrupted_at}" in out

  final_a, final_b = straight / "checkpoints" / "10", killed / "checkpoints" / "10"
  for item in ("weights", "train_state"):
    a, b = _read_item(final_a, item), _read_item(final_b, item)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(x, y)
  records = [json.loads(l) for l in (killed / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == list(range(1, 11))
  assert all({"meta_loss", "inner_steps_per_s", "eta_s", "skipped"} <= set(r) for r in records)
  assert "imitation_loss" in records[-1]
  # The workdir is a learned_opt checkpoint: the trained optimizer, conditioned on Adam.
  tx = learned_opt.load(killed / "checkpoints")
  params = {"w": jnp.ones((3, 2))}
  updates, _ = tx.update(params, tx.init(params), params)
  assert np.all(np.isfinite(np.asarray(updates["w"])))


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_loopback_write_a_loadable_optimizer(tmp_path):
  config = _config_file(tmp_path, "two", imitation_weight=0.0, num_steps=4,
                        checkpoint_every=2)
  env = _env(tmp_path / "jax_cache", devices=1)
  address = f"localhost:{_free_port()}"
  procs = [_launch(config, tmp_path / "run", env, f"--coordinator_address={address}",
                   "--num_processes=2", f"--process_id={i}") for i in range(2)]
  outs = [_finish(p) for p in procs]
  assert "step 4/4" in outs[0] and "step 4/4" not in outs[1]   # process 0 reports
  assert _steps(tmp_path / "run") == [2, 4]
  weights, _, _, meta = learned_opt.checkpoint.restore(tmp_path / "run" / "checkpoints")
  assert meta["default_rule"] == {"algorithm": "adam", "learning_rate": 3e-3}
  tx = learned_opt.load(tmp_path / "run" / "checkpoints")
  params = {"w": jnp.ones((3, 2)), "b": jnp.zeros((2,))}
  updates, _ = tx.update(params, tx.init(params), params)
  assert all(np.all(np.isfinite(np.asarray(u))) for u in jax.tree.leaves(updates))
  # Both processes' population shards were saved.
  state = _read_item(tmp_path / "run" / "checkpoints" / "4", "train_state")
  assert state["populations"][0]["tasks"]["step"].shape == (4,)


def test_apply_meta_update_skips_nonfinite_gradients():
  meta_opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.1))
  weights = {"a": jnp.ones(3)}
  opt_state = meta_opt.init(weights)
  new_w, new_s, finite = train.apply_meta_update(meta_opt, weights, opt_state,
                                                 {"a": jnp.asarray([1.0, jnp.nan, 0.0])})
  assert not bool(finite)
  for x, y in zip(jax.tree.leaves((new_w, new_s)), jax.tree.leaves((weights, opt_state))):
    np.testing.assert_array_equal(x, y)
  new_w, _, finite = train.apply_meta_update(meta_opt, weights, opt_state,
                                             {"a": jnp.ones(3)})
  assert bool(finite) and not np.allclose(new_w["a"], 1.0)


def test_nonfinite_meta_gradient_is_skipped_counted_and_recovered():
  problem = quadratic_problem(truncation_length=3, num_truncations=2)
  data = problem.family.datasets(problem.static)
  fast = {"xla_backend_optimization_level": 0}
  est = estimators.make("pes", problem, 8, sigma=0.01, compiler_options=fast)
  meta_opt = train.meta_optimizer(meta_train_config.get_config())
  step = train.make_train_step(est, meta_opt, None, 0.0, compiler_options=fast)
  state = est.init(jax.random.PRNGKey(0), THETA, data.train)
  opt_state = meta_opt.init(THETA)
  key = np.asarray(jax.random.PRNGKey(1))
  poisoned = state._replace(
      accumulators=jax.tree.map(lambda a: a.at[2].set(jnp.inf), state.accumulators),
      tasks=state.tasks._replace(step=state.tasks.step.at[2].set(0)))
  weights, new_opt_state, state, skipped, metrics = step(
      THETA, opt_state, poisoned, jnp.zeros((), jnp.int32), key, data.train, data.valid)
  assert int(skipped) == 1 and bool(metrics["skipped_now"])
  for x, y in zip(jax.tree.leaves((weights, new_opt_state)),
                  jax.tree.leaves((THETA, opt_state))):
    np.testing.assert_array_equal(x, y)
  assert np.all(np.isfinite(np.concatenate([np.ravel(a) for a in
                                            jax.tree.leaves(state.accumulators)])))
  weights, _, state, skipped, metrics = step(weights, new_opt_state, state, skipped, key,
                                             data.train, data.valid)
  assert int(skipped) == 1 and not bool(metrics["skipped_now"])
  assert not np.allclose(weights["log_lr"], THETA["log_lr"])


def test_configs_build_and_differ_only_in_numbers():
  cpu, accel, tiny = (meta_train_config.get_config(), meta_train_config.get_config("accel"),
                      meta_train_config.get_config("smoke"))
  assert cpu.init_from == "shipped:executor6"
  assert cpu.rule.to_dict() == {"algorithm": "adam", "learning_rate": 3e-3}

  def kinds(config):
    flat = json.loads(config.to_json_best_effort())
    return {k: type(v).__name__ for k, v in flat.items()}

  assert kinds(cpu) == kinds(accel)
  assert accel.population > cpu.population
  assert tiny.num_steps // tiny.checkpoint_every >= 2


@pytest.mark.parametrize("kind", ["pes", "tbptt", "es"])
def test_train_rejects_unknown_settings(kind):
  problem = quadratic_problem()
  with pytest.raises(ValueError, match="meta-objective"):
    estimators.make(kind, problem, 4, objective="loss")
  with pytest.raises(ValueError, match="estimator"):
    estimators.make("reinforce", problem, 4)


@pytest.mark.parametrize("overrides", [{}, {"direction_readout": False},
                                       {"normalizer_degree": 0.0},
                                       {"step_size_adaptation": 0.3, "step_size_target": -0.05},
                                       {"learned_step_size": True}])
def test_architecture_overrides_replace_the_checkpoints(overrides):
  config = meta_train_config.get_config()
  for key, value in overrides.items():
    setattr(config, key, value)
  weights, exec_config, hand_set = train.initial_executor(config)
  shipped, shipped_config, shipped_hand_set = train._initial_weights(config)   # pylint: disable=protected-access
  for key in train.ARCHITECTURE_OVERRIDES:
    assert getattr(exec_config, key) == overrides.get(key, getattr(shipped_config, key))
  for key in train.HAND_SET_OVERRIDES:
    assert getattr(hand_set, key) == overrides.get(key, getattr(shipped_hand_set, key))
  if overrides.get("learned_step_size"):   # a new, zero head beside the unchanged weights
    head = weights.pop("step_size_head")
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(head))
  jax.tree.map(np.testing.assert_array_equal, weights, shipped)


def test_build_family_reads_single_families_and_mixtures():
  config = meta_train_config.get_config()
  assert isinstance(train.build_family(config), tasks.families.ImageMLPFamily)
  image = config.family.to_dict()
  config.family = {"name": "mixture", "members": {
      "image": {**image, "share": 3}, "quadratic": {"name": "quadratic", "dims": (8, 32)}}}
  family = train.build_family(config)
  assert family.shares == {"image": 0.75, "quadratic": 0.25}
  assert family.members["quadratic"].dims == (8, 32)
  config.num_structures = 8
  statics = train.structures(config, family)
  assert [s.member for s in statics].count("quadratic") == 2 and len(statics) == 8
  config.family.members.quadratic.name = "quadric"
  with pytest.raises(ValueError, match="Unknown task family 'quadric'"):
    train.build_family(config)
  config.family = {"name": "mixture", "member": {}}
  with pytest.raises(ValueError, match="takes 'name' and 'members'"):
    train.build_family(config)


@pytest.mark.slow
def test_trainable_modules_hold_the_others_exactly():
  config = meta_train_config.get_config("smoke")
  config.init_from = ""
  config.executor = dict(embed_dim=2, hidden=4, edge_hidden=1, processor="row_column",
                         layer_readout=True)
  config.learned_step_size = True
  config.trainable_modules = ("step_size_head",)
  setup = train.build(config)
  state = init = train.init_state(setup)
  for step in range(2):
    state, metrics = train.train_step(setup, state, step)
  before, after = train.to_host(init.weights), train.to_host(state.weights)
  assert np.isfinite(float(metrics["meta_loss"]))
  for name in before:
    moved = any(np.any(a != b) for a, b in zip(jax.tree.leaves(before[name]),
                                               jax.tree.leaves(after[name])))
    assert moved == (name == "step_size_head"), name
  with pytest.raises(ValueError, match=r"trainable_modules names \['step_size_hed'\]"):
    train.trainable_mask(before, ("step_size_hed",))
