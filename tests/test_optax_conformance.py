"""What `learned_opt.load` and `learned_opt.pretrained` return keeps optax's promises."""

import collections
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import learned_opt
from learned_opt import checkpoint
from learned_opt.executor import ExecutorConfig, init_weights
from tests.conftest import mixed_params, random_grads

CONFIG = ExecutorConfig()


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("ckpt") / "executor"
  weights = init_weights(CONFIG, jax.random.PRNGKey(3))
  checkpoint.save(path, weights, CONFIG, default_rule={"algorithm": "adam",
                                                       "learning_rate": 1e-3})
  return path


def _optimizers(ckpt_dir):
  yield "load", learned_opt.load(ckpt_dir)
  if "executor" in learned_opt.pretrained_names():
    yield "pretrained", learned_opt.pretrained("executor", algorithm="adam",
                                               learning_rate=1e-3)
    yield "pretrained-best", learned_opt.pretrained()
    yield "pretrained-muon", learned_opt.pretrained("executor", algorithm="muon",
                                                    learning_rate=2e-2)


@pytest.fixture(scope="module")
def optimizers(ckpt_dir):
  return dict(_optimizers(ckpt_dir))


def _small_params():
  return {"dense": {"w": jnp.ones((6, 4)) * 0.1, "b": jnp.zeros(4)}, "scale": jnp.asarray(1.0)}


def test_is_gradient_transformation_extra_args(optimizers):
  params = _small_params()
  for name, tx in optimizers.items():
    assert isinstance(tx, optax.GradientTransformationExtraArgs), name
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    a, _ = tx.update(grads, state, params)
    b, _ = tx.update(grads, state, params, value=jnp.asarray(2.0), some_other_kw="ignored")
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(x, y)
    # params are optional for rules that do not read them.
    tx.update(grads, state)


def test_bf16_in_bf16_out_and_state_stable(optimizers):
  params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), _small_params())
  grads = jax.tree.map(lambda x: jnp.full_like(x, 0.5), params)
  for name, tx in optimizers.items():
    state = tx.init(params)
    updates, new_state = jax.jit(tx.update)(grads, state, params)
    for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(grads)):
      assert u.dtype == jnp.bfloat16 and u.shape == g.shape, name
    assert jax.tree.structure(state) == jax.tree.structure(new_state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(new_state)):
      assert a.dtype == b.dtype and a.shape == b.shape, name
    # Stable avals inside lax.cond as well.
    jax.jit(lambda s: jax.lax.cond(True, lambda: tx.update(grads, s, params)[1],
                                   lambda: s))(state)


def test_init_on_abstract_params(optimizers):
  params = _small_params()
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
  for name, tx in optimizers.items():
    concrete = jax.tree.map(lambda x: (x.shape, x.dtype), tx.init(params))
    from_abstract = jax.tree.map(lambda x: (x.shape, x.dtype), jax.eval_shape(tx.init, abstract))
    assert concrete == from_abstract, name
    tx.init(abstract)  # directly on ShapeDtypeStruct leaves, outside eval_shape


def test_jit_compiles_once(optimizers):
  params = mixed_params(jax.random.PRNGKey(0))
  for name, tx in optimizers.items():
    traces = []

    def update(g, s, p, tx=tx):
      traces.append(1)
      return tx.update(g, s, p)

    step = jax.jit(update)
    state = tx.init(params)
    for t in range(3):
      _, state = step(random_grads(jax.random.PRNGKey(0), params, t), state, params)
    assert len(traces) == 1, name


def test_composes_with_chain_multisteps_and_apply_if_finite(optimizers):
  params = _small_params()
  grads = jax.tree.map(jnp.ones_like, params)
  for name, tx in optimizers.items():
    chained = optax.chain(optax.clip_by_global_norm(1.0), tx)
    chained.update(grads, chained.init(params), params, value=1.0)

    multi = optax.MultiSteps(tx, every_k_schedule=3)
    state = multi.init(params)
    for k in range(3):
      updates, state = multi.update(grads, state, params)
      total = sum(float(jnp.sum(jnp.abs(u))) for u in jax.tree.leaves(updates))
      assert (total == 0.0) == (k < 2), (name, k)

    safe = optax.apply_if_finite(tx, max_consecutive_errors=2)
    state = safe.init(params)
    bad = jax.tree.map(lambda g: g * jnp.nan, grads)
    updates, state = safe.update(bad, state, params)
    assert all(bool(jnp.all(u == 0)) for u in jax.tree.leaves(updates)), name
    assert int(state.notfinite_count) == 1
    updates, state = safe.update(grads, state, params)
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


def test_python_scalar_leaves_work_and_unreadable_leaves_are_refused_at_init(optimizers):
  params = {"w": jnp.ones((3, 2)), "scale": 1.0}   # optax accepts Python scalars as leaves
  grads = {"w": jnp.ones((3, 2)), "scale": 0.5}
  for name, tx in optimizers.items():
    state = tx.init(params)
    updates, state = jax.jit(tx.update)(grads, state, params)
    assert jax.tree.structure(updates) == jax.tree.structure(params), name
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates)), name
    with pytest.raises(TypeError, match=r"Leaf 'name' is a str, not an array"):
      tx.init({"w": jnp.ones(3), "name": "layer"})
    with pytest.raises(TypeError, match=r"Leaf 'step' has dtype int32"):
      tx.init({"w": jnp.ones(3), "step": jnp.zeros((), jnp.int32)})


def test_inject_hyperparams(ckpt_dir):
  params = _small_params()
  grads = jax.tree.map(jnp.ones_like, params)
  tx = optax.inject_hyperparams(
      lambda learning_rate: learned_opt.load(ckpt_dir, learning_rate=learning_rate))(
          learning_rate=1e-3)
  state = tx.init(params)
  small, state = jax.jit(tx.update)(grads, state, params)
  state.hyperparams["learning_rate"] = jnp.asarray(2e-3)
  fresh = tx.init(params)
  fresh.hyperparams["learning_rate"] = jnp.asarray(2e-3)
  big, _ = jax.jit(tx.update)(grads, fresh, params)
  for a, b in zip(jax.tree.leaves(small), jax.tree.leaves(big)):
    assert float(jnp.sum(jnp.abs(b))) > float(jnp.sum(jnp.abs(a)))


def test_sharded_params(optimizers):
  devices = np.array(jax.devices()[:4])
  assert devices.size == 4, "conftest forces 4 host devices"
  mesh = Mesh(devices.reshape(2, 2), ("data", "model"))
  params = {"w": jnp.arange(64.0).reshape(8, 8) / 64, "b": jnp.ones(8)}
  grads = jax.tree.map(lambda x: jnp.sin(x) + 0.1, params)
  shardings = {"w": NamedSharding(mesh, PartitionSpec("data", "model")),
               "b": NamedSharding(mesh, PartitionSpec("model"))}
  sharded_params = jax.device_put(params, shardings)
  sharded_grads = jax.device_put(grads, shardings)

  def sharded_and_whole(tx):
    reference, _ = tx.update(grads, tx.init(params), params)
    state = jax.jit(tx.init)(sharded_params)
    updates, _ = jax.jit(tx.update)(sharded_grads, state, sharded_params)
    return zip(jax.tree.leaves(updates), jax.tree.leaves(reference))

  # Newton-Schulz's matmuls sum in another order when sharded: optax's own Muon moves by
  # up to 5e-4 relative here, and the executor conditioned on Muon may move as much.
  muon_moves = max(float(jnp.max(jnp.abs(a - b) / jnp.abs(b)))
                   for a, b in sharded_and_whole(optax.contrib.muon(2e-2)))
  for name, tx in optimizers.items():
    rtol = max(1e-5, 2 * muon_moves) if name.endswith("muon") else 1e-5
    for a, b in sharded_and_whole(tx):
      np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-8, err_msg=name)


# ----------------------------------------------------------------- bad input
def test_missing_directory(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    learned_opt.load(tmp_path / "nope")


def test_foreign_directory(tmp_path):
  with ocp.StandardCheckpointer() as writer:
    writer.save(tmp_path / "foreign", {"a": np.ones(3)})
  with pytest.raises(learned_opt.CheckpointError, match="not a learned_opt checkpoint"):
    learned_opt.load(tmp_path / "foreign")
  (tmp_path / "empty").mkdir()
  with pytest.raises(learned_opt.CheckpointError, match="empty directory"):
    learned_opt.load(tmp_path / "empty")


def _copy(src, dst):
  import shutil
  shutil.copytree(src, dst)
  return dst


def _config_file(path):
  step = next(p for p in pathlib.Path(path).iterdir() if p.name.isdigit())
  return next(p for p in (step / "config").iterdir() if p.is_file()), step


def test_newer_format_and_foreign_config(ckpt_dir, tmp_path):
  newer = _copy(ckpt_dir, tmp_path / "newer")
  file, _ = _config_file(newer)
  data = json.loads(file.read_text())
  data["format_version"] = checkpoint.FORMAT_VERSION + 1
  file.write_text(json.dumps(data))
  with pytest.raises(learned_opt.CheckpointError, match="newer than this"):
    learned_opt.load(newer)
  data["format"] = "someone.else"
  file.write_text(json.dumps(data))
  with pytest.raises(learned_opt.CheckpointError, match="foreign checkpoint"):
    learned_opt.load(newer)


def test_corrupt_weights(ckpt_dir, tmp_path):
  corrupt = _copy(ckpt_dir, tmp_path / "corrupt")
  _, step = _config_file(corrupt)
  for f in (step / "weights").rglob("*"):
    if f.is_file() and f.stat().st_size > 0 and "METADATA" not in f.name:
      f.write_bytes(b"\x00garbage" * 8)
  with pytest.raises(learned_opt.CheckpointError, match="corrupt"):
    learned_opt.load(corrupt)
  # The original is untouched: loading it still works.
  learned_opt.load(ckpt_dir)


def test_unknown_rule_and_untrained_option(ckpt_dir, tmp_path):
  with pytest.raises(KeyError, match="knows sgd"):
    learned_opt.load(ckpt_dir, algorithm="shampoo", learning_rate=1e-3)
  with pytest.raises(TypeError, match="unknown keyword"):
    learned_opt.load(ckpt_dir, algorithm="adam", learning_rate=1e-3, beta_one=0.9)
  trained = ExecutorConfig(trained_options=(("adam", ("learning_rate", "b1")),))
  path = checkpoint.save(tmp_path / "trained", init_weights(trained, jax.random.PRNGKey(0)),
                         trained, default_rule={"algorithm": "adam", "learning_rate": 1e-3})
  learned_opt.load(path, algorithm="adam", learning_rate=1e-3, b1=0.8)
  with pytest.raises(ValueError, match="not varied"):
    learned_opt.load(path, algorithm="adam", learning_rate=1e-3, eps_root=1e-3)
  with pytest.raises(ValueError, match="not imitation-trained on 'sgd'"):
    learned_opt.load(path, algorithm="sgd", learning_rate=1e-3)


def test_state_round_trips_through_orbax_and_bad_states_are_refused(ckpt_dir, tmp_path):
  """A saved optimizer state restores onto the abstract target of init and continues
  exactly; restored without a target, from older fields, or for other params it is
  refused with an error that says what to do."""
  tx = learned_opt.load(ckpt_dir)
  params = _small_params()
  grads = jax.tree.map(lambda p: jnp.full_like(p, 0.3), params)
  _, state = tx.update(grads, tx.init(params), params)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(tmp_path / "state", state)
    ckptr.wait_until_finished()
    restored = ckptr.restore(tmp_path / "state", jax.eval_shape(tx.init, params))
    untargeted = ckptr.restore(tmp_path / "state")
  expected, _ = tx.update(grads, state, params)
  got, _ = tx.update(grads, restored, params)
  for x, y in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
    np.testing.assert_array_equal(x, y)
  with pytest.raises(TypeError, match="without a target"):
    tx.update(grads, untargeted, params)
  older = collections.namedtuple("ExecutorState", state._fields[:-1])(*state[:-1])
  with pytest.raises(TypeError, match=r"optimizer\.init\(params\)"):
    tx.update(grads, older, params)
  with pytest.raises(ValueError, match="optimizer state's s1"):
    tx.update({"w": jnp.ones(3)}, state)
