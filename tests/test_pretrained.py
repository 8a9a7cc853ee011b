"""The shipped executor: listed, loads offline for every imitated rule, refuses the rest."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import learned_opt
import tasks

IMITATED = {
    "adam": dict(learning_rate=1e-3, b1=0.9, b2=0.999),
    "sgd": dict(learning_rate=0.05, momentum=0.9),
    "rmsprop": dict(learning_rate=1e-3, decay=0.95),
    "adafactor": dict(learning_rate=1e-2, min_dim_size_to_factor=16),
    "lamb": dict(learning_rate=3e-3, weight_decay=1e-3),
    "lion": dict(learning_rate=1e-4, b1=0.9, b2=0.99),
    "adamw": dict(learning_rate=1e-3, weight_decay=1e-2),
    "nadam": dict(learning_rate=1e-3, b1=0.9),
    "adabelief": dict(learning_rate=1e-3, b1=0.9),
    "adagrad": dict(learning_rate=3e-2),
    "lars": dict(learning_rate=0.1, momentum=0.9),
    "muon": dict(learning_rate=2e-2, beta=0.95, nesterov=True, adam_b1=0.9),
}


def test_listed():
  assert "executor" in learned_opt.pretrained_names()


@pytest.mark.parametrize("name", sorted(IMITATED))
def test_every_imitated_rule_loads_with_optax_kwargs(name):
  tx = learned_opt.pretrained("executor", algorithm=name, **IMITATED[name])
  params = {"w": jnp.ones((5, 3)) * 0.1, "b": jnp.zeros(3)}
  grads = jax.tree.map(lambda x: jnp.full_like(x, 0.2), params)
  updates, _ = tx.update(grads, tx.init(params), params)
  assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


def test_refusals():
  with pytest.raises(ValueError, match="not varied"):
    learned_opt.pretrained("executor", algorithm="adam", learning_rate=1e-3, eps=1e-3)
  with pytest.raises(KeyError, match="no embedding for rule 'hypergradient'"):
    learned_opt.pretrained("executor", algorithm="hypergradient", learning_rate=1e-3)
  with pytest.raises(ValueError, match="preconditioning"):
    learned_opt.pretrained("executor", algorithm="muon", learning_rate=1e-2,
                           preconditioning="spectral")
  with pytest.raises(KeyError, match="Shipped: executor"):
    learned_opt.pretrained("velo")


def test_shipped_executor_follows_adam_closed_loop():
  """100 steps on digits at batch 128 (outside the imitation family): the imitation
  tracks Adam's loss within 5% (a sanity check, not the eval)."""
  task = tasks.get("digits_mlp")
  key = jax.random.PRNGKey(0)
  batches = task.datasets.train.stacked(key, 100)

  def final_loss(tx):
    params = task.init(key)

    def body(carry, batch):
      params, state = carry
      loss, grads = jax.value_and_grad(task.loss)(params, key, batch)
      updates, state = tx.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), loss
    return float(jnp.mean(jax.lax.scan(body, (params, tx.init(params)), batches)[1][-10:]))

  rule = final_loss(optax.adam(3e-3))
  executor = final_loss(learned_opt.pretrained("executor", algorithm="adam", learning_rate=3e-3))
  assert np.isfinite(executor)
  assert abs(executor - rule) / rule < 0.05, (executor, rule)


def test_shipped_executor6_steps_as_adafactor_on_a_4x_wider_layer():
  """Along 30 steps of Adafactor's own run on digits MLP 64-256-10 (4x wider than
  imitation trained on), the six-rule executor, fed the same gradients and its own state,
  steps every tensor within 8% of Adafactor's norm, and the (256, 10) matrix Adafactor
  does not factor within 1% over the first steps (its layer readouts read whole tensors:
  readout_rows=0). The 12-rule `executor` is within 0.966-1.153 there
  (results/imitate/all_rules/README.md)."""
  kwargs = dict(learning_rate=1e-2, min_dim_size_to_factor=16)
  task = tasks.get("digits_mlp", hidden=(256,))
  key = jax.random.PRNGKey(0)
  batches = task.datasets.train.stacked(key, 30)
  rule = optax.adafactor(**kwargs)
  executor = learned_opt.pretrained("executor6", algorithm="adafactor", **kwargs)

  def body(carry, batch):
    params, rule_state, executor_state = carry
    grads = jax.grad(task.loss)(params, key, batch)
    rule_updates, rule_state = rule.update(grads, rule_state, params)
    executor_updates, executor_state = executor.update(grads, executor_state, params)
    ratios = jax.tree.map(lambda a, b: jnp.linalg.norm(a) / jnp.linalg.norm(b),
                          executor_updates, rule_updates)
    return (optax.apply_updates(params, rule_updates), rule_state, executor_state), ratios

  params = task.init(key)
  ratios = jax.lax.scan(body, (params, rule.init(params), executor.init(params)), batches)[1]
  spans = jax.tree.map(lambda r: (float(r.min()), float(r.max())), ratios)
  assert all(0.92 < r.min() and r.max() < 1.04 for r in jax.tree.leaves(ratios)), spans
  matrix = ratios["mlp/linear_1"]["w"]
  assert float(jnp.max(jnp.abs(matrix[:3] - 1.0))) < 0.01, spans


def test_default_is_the_meta_trained_optimizer_and_needs_no_arguments():
  assert "meta_executor" in learned_opt.pretrained_names()
  tx = learned_opt.pretrained()
  assert isinstance(tx, optax.GradientTransformationExtraArgs)
  meta = learned_opt.checkpoint.read_config(
      learned_opt.shipped.shipped_path("meta_executor"))[1]
  assert meta["provenance"]["config"]["estimator"] == "pes"   # the meta-training run's
  assert meta["provenance"]["shipped_with"]["command"].startswith("python -m meta_train.ship")


def test_default_trains_without_tuning_and_stays_finite():
  """300 steps on digits at the default (no learning rate given): finite and learning."""
  task = tasks.get("digits_mlp")
  key = jax.random.PRNGKey(1)
  batches = task.datasets.train.stacked(key, 300)
  tx = learned_opt.pretrained()
  params = task.init(key)

  def body(carry, batch):
    params, state = carry
    loss, grads = jax.value_and_grad(task.loss)(params, key, batch)
    updates, state = tx.update(grads, state, params, value=loss)
    return (optax.apply_updates(params, updates), state), loss

  losses = jax.jit(lambda p, b: jax.lax.scan(body, (p, tx.init(p)), b)[1])(params, batches)
  assert bool(jnp.all(jnp.isfinite(losses)))
  assert float(jnp.mean(losses[-20:])) < 0.25 * float(losses[0])


def test_the_recipes_optimizer_sets_nothing_by_hand_and_names_its_recipe():
  restored = learned_opt.checkpoint.restore(
      str(learned_opt.shipped.shipped_path("meta_controller")))
  assert restored.hand_set == learned_opt.executor.HandSet()
  assert restored.config.controller_hidden > 0
  meta = learned_opt.checkpoint.read_config(
      learned_opt.shipped.shipped_path("meta_controller"))[1]
  record = meta["provenance"]
  assert record["command"].startswith("python -m meta_train.recipe --config=configs/pretrained.py")
  assert record["recipe"]["stages"] == {"imitate": 600, "meta_train": 3000}
  assert record["recipe"]["config"]["meta_train"]["rule"]["algorithm"] == "hypergradient"
  assert set(record["shipped_with"]) >= {"command", "git", "source", "step"}
  assert not any(k in record["shipped_with"] for k in ("fields", "decay_shifts"))


def test_the_recipes_controller_learned_to_move_each_tensors_step_size():
  """300 steps on digits: the trained controller sets per-tensor step factors away from 1
  and apart from each other; with its head zeroed (untrained) every factor stays 1."""
  task = tasks.get("digits_mlp")
  key = jax.random.PRNGKey(0)
  batches = task.datasets.train.stacked(key, 300)
  trained = learned_opt.shipped.pretrained_optimizer("meta_controller")
  weights = dict(trained.weights)
  weights["controller_head"] = jax.tree.map(jnp.zeros_like, weights["controller_head"])
  untrained = dataclasses.replace(trained, weights=weights)

  def factors(opt):
    tx = opt.as_optax()

    def body(carry, batch):
      params, state = carry
      loss, grads = jax.value_and_grad(task.loss)(params, key, batch)
      updates, state = tx.update(grads, state, params, value=loss)
      return (optax.apply_updates(params, updates), state), None

    params = task.init(key)
    (_, state), _ = jax.jit(lambda p, b: jax.lax.scan(body, (p, tx.init(p)), b))(
        params, batches)
    return np.exp(np.asarray(state.controller.log_step))

  moved = factors(trained)
  assert np.max(np.abs(np.log(moved))) > 0.1 and np.ptp(np.log(moved)) > 0.05, moved
  np.testing.assert_array_equal(factors(untrained), 1.0)
