"""Imitation loop: runs, checkpoints with orbax, resumes, and is loadable as optax."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import learned_opt
import tasks as tasks_lib
from configs import imitate as imitate_config
from learned_opt import checkpoint
from learned_opt.executor import conditioning, optimizer as optimizer_lib
from meta_train import imitate, imitation


def _tiny_config():
  config = imitate_config.get_config()
  config.num_steps = 2
  config.unroll = 2
  config.warmup_choices = (0, 2)
  config.batch_size = 2
  config.num_structures = 1
  config.log_every = 1
  config.checkpoint_every = 1
  config.family.widths = (8, 8)
  config.family.depths = (1, 1)
  config.rules = {k: config.rules[k] for k in ("adam", "sgd")}
  return config


@pytest.mark.slow   # a 50 s imitation run: in CI's slow subset (.ci/run)
def test_imitation_runs_resumes_and_loads(tmp_path):
  config = _tiny_config()
  first = imitate.train(config, str(tmp_path))
  assert first["step"] == 2 and np.isfinite(first["loss"])
  config.num_steps = 3
  resumed = imitate.train(config, str(tmp_path))
  assert resumed["step"] == 3
  lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [l["step"] for l in lines] == [1, 2, 3]
  assert all("eta_s" in l and "steps_per_s" in l for l in lines)
  tx = learned_opt.load(tmp_path / "checkpoints", algorithm="sgd", learning_rate=0.1,
                        momentum=0.9)
  params = {"w": jnp.ones((3, 2))}
  updates, _ = tx.update(params, tx.init(params), params)
  assert np.all(np.isfinite(np.asarray(updates["w"])))


def test_sampler_and_kwarg_split():
  rng = np.random.default_rng(0)
  sampler = imitation.RuleSampler("adafactor", {"learning_rate": ("log", 1e-3, 1e-1),
                                                "min_dim_size_to_factor": ("choice", (16, 128))})
  draws = [sampler.sample(rng) for _ in range(50)]
  assert all(1e-3 <= d["learning_rate"] <= 1e-1 for d in draws)
  assert {d["min_dim_size_to_factor"] for d in draws} == {16, 128}
  static, dynamic = imitation.split_kwargs(draws[0])
  assert dict(static) == {"min_dim_size_to_factor": draws[0]["min_dim_size_to_factor"]}
  assert set(dynamic) == {"learning_rate"} and isinstance(dynamic["learning_rate"], jax.Array)


def test_log1m_sampling_spreads_time_constants_on_a_log_scale():
  rng = np.random.default_rng(0)
  sampler = imitation.RuleSampler("adam", {"b2": ("log1m", 0.99, 0.9999)})
  time_constants = np.asarray([1.0 / (1.0 - sampler.sample(rng)["b2"]) for _ in range(4000)])
  assert np.all((time_constants >= 100 - 1e-6) & (time_constants <= 10000 + 1e-3))
  # Log-uniform from 100 to 10000 steps: half of the draws on either side of 1000.
  assert abs(np.mean(time_constants < 1000) - 0.5) < 0.03


@pytest.mark.parametrize("spec", [("uniform", 0.99, 0.9995), ("log1m", 0.95, 0.9995),
                                  ("log", 0.8, 0.95), ("choice", (0.9, 0.99)),
                                  ("fixed", 0.9)])
def test_log_decay_stats_match_the_sampler(spec):
  rng = np.random.default_rng(1)
  sampler = imitation.RuleSampler("adam", {"b1": spec})
  logs = np.log(1.0 - np.asarray([sampler.sample(rng)["b1"] for _ in range(20000)]))
  center, scale = imitation.log_decay_stats(spec)
  assert center == pytest.approx(np.mean(logs), abs=0.02)
  assert scale == pytest.approx(np.std(logs) if spec[0] != "fixed" else 1.0, abs=0.02)


@pytest.mark.slow
def test_standardized_decay_features_are_saved_and_read_by_the_loaded_optimizer(tmp_path):
  config = _tiny_config()
  config.standardize_decay_features = True
  exec_config = imitate.executor_config(config)
  # One row per decay keyword a rule is sampled with (adam's b1 and b2, sgd's momentum).
  assert sorted((rule, key) for rule, key, _, _ in exec_config.decay_feature_stats) == [
      ("adam", "b1"), ("adam", "b2"), ("sgd", "momentum")]
  imitate.train(config, str(tmp_path))
  restored = checkpoint.restore(tmp_path / "checkpoints").config
  assert restored.decay_feature_stats == exec_config.decay_feature_stats
  center, scale = exec_config.decay_stats("adam")["b2"]
  tx = learned_opt.load(tmp_path / "checkpoints", algorithm="adam", learning_rate=1e-3,
                        b2=0.995)
  features = np.asarray(optimizer_lib.hyper_features(restored, "adam", {
      "learning_rate": 1e-3, "b2": 0.995}))
  b2_slot = 3 * conditioning.DECAY_KEYS.index("b2")
  assert features[b2_slot + 2] == pytest.approx((np.log(0.005) - center) / scale, rel=1e-5)
  plain = np.asarray(conditioning.hyperparameter_features({"b2": 0.995}))
  assert plain[b2_slot + 2] == pytest.approx(np.log(0.005), rel=1e-5)
  params = {"w": jnp.ones((3, 2))}
  updates, _ = tx.update(params, tx.init(params), params)
  assert np.all(np.isfinite(np.asarray(updates["w"])))


def test_direction_readout_penalty_is_zero_at_the_prior_and_pulls_back():
  from learned_opt.executor import ExecutorConfig, init_weights, network
  config = ExecutorConfig(embed_dim=2, hidden=4, edge_hidden=1)
  weights = init_weights(config, jax.random.PRNGKey(0))
  params = {"w": jnp.ones((6, 4)), "b": jnp.ones((4,))}
  conds = imitation.stack([imitation.conditioning_for(config, name, kwargs, params)
                           for name, kwargs in (("adam", {"learning_rate": 1e-3}),
                                                ("lamb", {"learning_rate": 1e-3}))])
  assert float(imitation.direction_readout_penalty(weights, config, conds)) == 0.0

  alpha_d = network.DIRECTION_GAIN_INDEX
  bias = weights["tensor_net_linear"]["b"]
  moved = dict(weights, tensor_net_linear=dict(weights["tensor_net_linear"],
                                               b=bias.at[alpha_d].set(-0.3)))
  penalty, grads = jax.value_and_grad(imitation.direction_readout_penalty)(moved, config, conds)
  np.testing.assert_allclose(float(penalty), 0.3 ** 2 / 2, rtol=1e-5)   # mean over 2 columns
  assert float(grads["tensor_net_linear"]["b"][alpha_d]) < 0   # descent raises alpha to 0
  assert float(grads["tensor_net_linear"]["b"][alpha_d + 2]) == 0   # the knot is free
  # Exempt rules leave the mean: lamb's conditioning alone exempt changes nothing here
  # (both rows moved alike); with both exempt nothing is counted.
  np.testing.assert_allclose(
      float(imitation.direction_readout_penalty(moved, config, conds, ("lamb",))), 0.045,
      rtol=1e-5)
  assert float(imitation.direction_readout_penalty(moved, config, conds, ("adam", "lamb"))) == 0


def test_normalizer_mixture_is_zero_for_one_term_and_pulls_toward_one():
  from learned_opt.executor import ExecutorConfig, init_weights
  config = ExecutorConfig(embed_dim=2, hidden=4, edge_hidden=1, normalizer="scaled")
  outputs = np.zeros((4, 8), np.float32)
  outputs[0, 0] = 2.0            # alpha only (Adam-like)
  outputs[1, 5] = -0.5           # beta only (SGD-like; |w| in the 'scaled' form)
  outputs[2, 6] = 1.0            # sign gain only (Lion-like)
  outputs[3, [0, 5, 6]] = 1.0    # an even blend
  mixture = np.asarray(imitation.normalizer_mixture(jnp.asarray(outputs), config))
  np.testing.assert_allclose(mixture, [0.0, 0.0, 0.0, 2.0 / 3.0], atol=1e-6)

  leak = jnp.asarray([[2.0, 0, 0, 0, 0, 0.4, 0.05, 0]], jnp.float32)   # Adam with a beta leak
  grad = jax.grad(lambda o: jnp.sum(imitation.normalizer_mixture(o, config)))(leak)[0]
  assert float(grad[5]) > 0 and float(grad[6]) > 0 and float(grad[0]) < 0   # descent: alpha

  # Exempt rules leave the mean: a fresh executor's Adam prior mixes nothing.
  weights = init_weights(config, jax.random.PRNGKey(0))
  params = {"w": jnp.ones((6, 4)), "b": jnp.ones((4,))}
  conds = imitation.stack([imitation.conditioning_for(config, name, {"learning_rate": 1e-3},
                                                      params) for name in ("adam", "lamb")])
  assert float(imitation.normalizer_mixture_penalty(weights, config, conds)) < 1e-6
  assert float(imitation.normalizer_mixture_penalty(weights, config, conds,
                                                    ("adam", "lamb"))) == 0.0

  softplus = ExecutorConfig(embed_dim=2, hidden=4, edge_hidden=1)   # 'exp' beta, softplus k
  prior = np.zeros((1, 8), np.float32)
  prior[0, 0], prior[0, 5], prior[0, 6] = 1.0, -30.0, -12.0   # the Adam prior of those forms
  assert float(imitation.normalizer_mixture(jnp.asarray(prior), softplus)[0]) < 1e-4


def test_primitive_error_reads_each_rules_own_term_per_tensor():
  """Adam's term is alpha's, SGD's beta's (with the node bias where 'scaled' puts it
  on beta alone), Lion's k; Adafactor's alpha on the tensors it does not factor and
  beta on those it does. Rules without a primitive (none here but unknown names) count 0."""
  from learned_opt.executor import ExecutorConfig, init_weights
  config = ExecutorConfig(embed_dim=2, hidden=4, edge_hidden=1, normalizer="scaled")
  params = {"w": jnp.ones((32, 24)), "b": jnp.ones((24,))}
  graph = imitation.graph_of(params)
  order = [info.shape for info in graph.tensors]
  alpha_only = np.zeros((2, 8), np.float32)
  alpha_only[:, 0] = 1.0
  beta_only = np.zeros((2, 8), np.float32)
  beta_only[:, 5] = 1.0
  rule = lambda name: jnp.asarray(config.rules.index(name))  # noqa: E731

  def error(outputs, name, min_dim=None):
    feats = imitation.encode.tensor_features(graph, min_dim)
    return float(imitation.primitive_error(jnp.asarray(outputs), config, rule(name), feats))

  assert error(alpha_only, "adam") < 1e-5
  assert error(alpha_only, "sgd") > 10.0
  assert error(beta_only, "sgd") < 1e-5
  # Adafactor at min_dim 16 factors the (32, 24) matrix: alpha there, beta on the vector.
  mixed = np.where(np.asarray([[len(s) == 2] for s in order]), beta_only, alpha_only)
  assert error(mixed, "adafactor", 16) < 1e-5
  assert error(mixed, "adafactor", 128) > 5.0    # 128 factors nothing: alpha everywhere
  assert error(alpha_only, "adafactor", 128) < 1e-5
  # The node bias e^{w_4} scales beta's term alone in the 'scaled' form.
  blend = np.zeros((2, 8), np.float32)
  blend[:, 0], blend[:, 5] = 1.0, 1.0
  np.testing.assert_allclose(error(blend, "sgd"), np.log(2.0), rtol=1e-4)
  blend[:, 4] = np.log(3.0)
  np.testing.assert_allclose(error(blend, "sgd"), np.log(4.0 / 3.0), rtol=1e-4)
  grad = jax.grad(lambda o: imitation.primitive_error(o, config, rule("sgd"),
                                                      imitation.encode.tensor_features(
                                                          graph, None)))(jnp.asarray(blend))
  assert float(grad[0, 0]) > 0 and float(grad[0, 5]) < 0   # descent: less alpha, more beta
  # Exempt rules leave the batch mean: SGD's conditioning on an Adam-like executor.
  weights = init_weights(config, jax.random.PRNGKey(0))
  conds = imitation.stack([imitation.conditioning_for(config, "sgd", {"learning_rate": 0.1},
                                                      params)])
  assert float(imitation.primitive_hint(weights, config, conds)) > 1.0
  assert float(imitation.primitive_hint(weights, config, conds, ("sgd",))) == 0.0
  unknown = dataclasses.replace(config, rules=config.rules + ("muon",))
  assert float(imitation.primitive_error(
      jnp.asarray(blend), unknown, jnp.asarray(len(unknown.rules) - 1),
      imitation.encode.tensor_features(graph, None))) == 0.0


def test_denominator_hint_scale_pins_the_scale_the_shape_error_leaves_free():
  rms = {"w": jnp.asarray([[1.0, 2.0], [3.0, 4.0]]), "b": jnp.asarray([0.5])}
  grads = jax.tree.map(jnp.ones_like, rms)
  double = jax.tree.map(lambda x: 2.0 * x, rms)
  assert float(imitation.denominator_shape_error(double, rms, grads)) < 1e-10
  np.testing.assert_allclose(
      float(imitation.denominator_shape_error(double, rms, grads, with_scale=True)),
      np.log(2.0) ** 2, rtol=1e-5)   # the scalar-sized bias counts once its scale does
  assert float(imitation.denominator_shape_error(rms, rms, grads, with_scale=True)) < 1e-10


@pytest.mark.slow
def test_imitation_with_penalties_logs_them(tmp_path):
  config = _tiny_config()
  config.num_steps = 1
  config.direction_readout_penalty = 0.1
  config.normalizer_mixture_penalty = 0.1
  config.mixture_penalty_exempt = ("sgd",)
  config.primitive_hint_weight = 0.1
  last = imitate.train(config, str(tmp_path))
  assert last["readout_penalty"] >= 0.0 and np.isfinite(last["loss"])
  assert 0.0 <= last["mixture_penalty"] <= 2.0 / 3.0
  assert last["primitive_hint"] > 0.0    # fresh weights: the Adam prior, wrong for SGD


@pytest.mark.slow
def test_imitation_with_adafactor_hints_logs_them(tmp_path):
  config = _tiny_config()
  config.num_steps = 1
  config.rules = {"adafactor": imitate_config.rule_ranges()["adafactor"]}
  config.preconditioner_hint_weight = 1.0
  config.denominator_hint_weight = 1.0
  config.denominator_hint_scale = True
  last = imitate.train(config, str(tmp_path))
  assert np.isfinite(last["loss"])
  assert last["preconditioner_rel_err"] > 0.0 and last["denominator_shape_err"] > 0.0


def test_clip_error_is_where_the_rules_update_sits_against_its_threshold():
  rms = [jnp.asarray([[1.0, 2.0], [4.0, 8.0]]), jnp.asarray([0.5, 0.5])]
  grads = [jnp.asarray([[1.0, 2.0], [4.0, 8.0]]), jnp.asarray([2.0, -2.0])]
  at_rule = jnp.asarray([0.0, np.log(4.0)])        # RMS(g / rms) = 1 and 4
  assert float(imitation.clip_error(at_rule, grads, rms)) < 1e-10
  np.testing.assert_allclose(float(imitation.clip_error(at_rule + np.log(2.0), grads, rms)),
                             np.log(2.0) ** 2, rtol=1e-5)
  # A tensor with an all-zero gradient counts zero, whatever its excess.
  silent = [grads[0], jnp.zeros(2)]
  assert float(imitation.clip_error(jnp.asarray([0.0, 50.0]), silent, rms)) < 1e-10


@pytest.mark.slow
@pytest.mark.parametrize("rules", [("adafactor",), ("adam", "adafactor", "sgd")])
def test_imitation_with_the_clip_hint_logs_it(tmp_path, rules):
  config = _tiny_config()
  config.num_steps = 1
  config.rules = {name: imitate_config.rule_ranges()[name] for name in rules}
  config.hand_set.rule_gain_slopes = True
  config.hand_set.rule_clip_knots = True
  config.hand_set.rule_node_decays = True
  config.clip_hint_weight = 1.0
  last = imitate.train(config, str(tmp_path))
  # Finite loss and meta-gradient (a non-finite one is skipped) also where the batch has
  # rules without the hint: their error is masked out, not NaN times zero.
  assert np.isfinite(last["loss"]) and last["skipped"] == 0.0
  if rules == ("adafactor",):
    assert last["clip_err"] > 0.0    # fresh weights: no knot where Adafactor clips


@pytest.mark.slow
def test_imitation_starts_from_a_checkpoint_and_adds_missing_modules(tmp_path):
  config = _tiny_config()
  imitate.train(config, str(tmp_path / "first"))
  first = checkpoint.restore(tmp_path / "first" / "checkpoints").weights
  config.init_from = str(tmp_path / "first" / "checkpoints")
  config.executor.learned_step_size = True
  config.num_steps = 1
  last = imitate.train(config, str(tmp_path / "second"))
  assert last["step"] == 1 and np.isfinite(last["loss"])
  weights, exec_config, _, _ = checkpoint.restore(tmp_path / "second" / "checkpoints")
  assert exec_config.learned_step_size and "step_size_head" in weights
  # It started from the first run's weights: one small step away from them, not fresh ones.
  moved = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
              for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(
                  {k: v for k, v in weights.items() if k in first})))
  assert 0.0 < moved < 0.05


def test_init_from_with_other_rules_is_refused(tmp_path):
  config = _tiny_config()
  imitate.train(config, str(tmp_path / "first"))
  config.init_from = str(tmp_path / "first" / "checkpoints")
  config.executor.rules = ("adam", "sgd")
  with pytest.raises(ValueError, match="trained for rules"):
    imitate.train(config, str(tmp_path / "second"))


def test_init_from_with_another_output_parameterization_is_refused(tmp_path):
  """The same raw outputs under another normalizer would be another optimizer
  (softplus(-12) ~ 0 but |-12| = 12): refused, naming the field."""
  config = _tiny_config()
  imitate.train(config, str(tmp_path / "first"))
  config.init_from = str(tmp_path / "first" / "checkpoints")
  for field, value in (("normalizer", "scaled"),):
    before = config.executor[field]
    config.executor[field] = value
    with pytest.raises(ValueError, match=f"executor.{field}="):
      imitate.train(config, str(tmp_path / f"second_{field}"))
    config.executor[field] = before
  config.standardize_decay_features = True
  with pytest.raises(ValueError, match="decay features standardized"):
    imitate.train(config, str(tmp_path / "second_standardized"))


def _regression_loss(params, key, batch):
  del key
  x, y = batch
  return jnp.mean(jnp.square(x @ params["w"] + params["b"] - y))


@pytest.mark.slow
def test_warmup_gradient_flows_through_the_warm_state_only_when_asked():
  from learned_opt.executor import ExecutorConfig, HandSet, init_weights
  config = ExecutorConfig(embed_dim=2, hidden=4, edge_hidden=1)
  weights = init_weights(config, jax.random.PRNGKey(0))
  key = jax.random.PRNGKey(1)
  params = {"w": 0.3 * jax.random.normal(key, (4, 3)), "b": jnp.zeros((3,))}
  x = jax.random.normal(jax.random.PRNGKey(2), (12, 8, 4))
  y = jnp.sin(x[..., :3])
  traj = imitation.rule_trajectory("adam", (), {"learning_rate": jnp.asarray(1e-2)},
                                   _regression_loss, params, (x, y), key)
  cond = imitation.conditioning_for(config, "adam", {"learning_rate": 1e-2}, params)

  def loss_and_grad(warmup_gradient):
    return jax.value_and_grad(lambda w: imitation.trajectory_loss(
        w, config, HandSet(), traj, cond, 0.3, warmup=8,
        warmup_gradient=warmup_gradient)[0])(weights)

  (loss_off, grad_off), (loss_on, grad_on) = loss_and_grad(False), loss_and_grad(True)
  np.testing.assert_allclose(float(loss_on), float(loss_off), rtol=1e-6)   # same forward
  off, on = jax.tree.leaves(grad_off), jax.tree.leaves(grad_on)
  assert all(np.all(np.isfinite(np.asarray(g))) for g in on)
  # The hypernet (decays and gains of the state) gets more signal through the warm state.
  assert max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(on, off)) > 1e-6


@pytest.mark.slow
def test_round_hints_supervise_every_newton_schulz_iterate_and_fail_untrained():
  """A batch of Muon and Adam on one tree runs the union plan; the round hints compare
  each X_k on Muon's matrices only. Hand-set Muon weights match them (and Muon's
  updates); fresh weights (the Adam prior, no rounds mixed in) do not."""
  from learned_opt.executor import init_weights  # pylint: disable=import-outside-toplevel
  # pylint: disable-next=import-outside-toplevel
  from tests.test_executor_multi_hop import CONFIG, muon_weights
  task = tasks_lib.get("digits_mlp", hidden=(16,))
  muon_kwargs, adam_kwargs = {"learning_rate": 1e-2}, {"learning_rate": 1e-3}
  runs = [imitation.rule_run(CONFIG, name, kwargs, task, steps=6)
          for name, kwargs in (("muon", muon_kwargs), ("adam", adam_kwargs))]
  plan = imitation.hops.union([cond.plan for _, cond in runs],
                              runs[0][1].tensor_features.shape[0])
  padded = [imitation.pad_rounds(traj, cond, plan) for traj, cond in runs]
  assert plan.rounds == 5 and padded[1][1].round_features[:, 4].sum() == 0.0
  assert len(padded[1][0].ns_iterates) == 6   # Adam's: zeros, never compared

  def losses(weights):
    out = [imitation.trajectory_loss(weights, CONFIG, learned_opt.executor.HandSet(), traj,
                                     cond, hint_weight=0.0, ns_hint_weight=1.0)
           for traj, cond in padded]
    return out[0][1], out[1][1]

  muon_metrics, adam_metrics = losses(muon_weights(adam_b1=0.9))
  assert float(muon_metrics["cosine"]) > 0.999
  # The per-hint report along Muon's own run: every iterate, none for the moments
  # (Muon gives no HINT_TARGETS).
  report = imitation.hint_agreement(muon_weights(adam_b1=0.9), CONFIG,
                                    learned_opt.executor.HandSet(), *runs[0])
  assert sorted(report) == [f"ns_iterate_{k}" for k in range(6)]
  assert max(report.values()) < 1e-3, report
  for k in range(6):
    assert float(muon_metrics[f"ns_iterate_{k}_rel_err"]) < 1e-6, k
    assert np.isnan(float(adam_metrics[f"ns_iterate_{k}_rel_err"]))
  # Fresh weights run the rounds (structure) on a momentum without Nesterov's term, and
  # mix none of their output into the update.
  fresh_metrics, _ = losses(init_weights(CONFIG, jax.random.PRNGKey(0)))
  assert float(fresh_metrics["cosine"]) < 0.9
  assert float(fresh_metrics["ns_iterate_0_rel_err"]) > 1e-3


@pytest.mark.slow
def test_a_batch_with_lars_reads_each_rules_own_input_readout():
  """LARS and Muon on one tree: the union plan runs Muon's rounds and LARS's input
  readouts; each rule reads only its own through its traced plan features. Hand-set
  LARS weights follow LARS's run, and a trust head moved off LARS's readout does not."""
  # pylint: disable-next=import-outside-toplevel
  from tests.test_executor_multi_hop import CONFIG, lars_weights
  task = tasks_lib.get("digits_mlp", hidden=(16,))
  lars_kwargs = {"learning_rate": 0.5, "momentum": 0.9}
  runs = [imitation.rule_run(CONFIG, name, kwargs, task, steps=6)
          for name, kwargs in (("lars", lars_kwargs), ("muon", {"learning_rate": 1e-2}))]
  plan = imitation.hops.union([cond.plan for _, cond in runs],
                              runs[0][1].tensor_features.shape[0])
  assert plan.rounds == 5 and all(r is not None for r in plan.input_readout)
  (traj, cond), (_, muon_cond) = [imitation.pad_rounds(t, c, plan) for t, c in runs]
  assert float(muon_cond.plan_features[:, 3].sum()) == 0.0   # Muon reads no input readout

  def cosine(weights):
    _, metrics = imitation.trajectory_loss(weights, CONFIG, learned_opt.executor.HandSet(),
                                           traj, cond, hint_weight=0.0)
    return float(metrics["cosine"])

  weights = lars_weights(0.9, nesterov=False)
  assert cosine(weights) > 0.9999
  weights["trust_head"]["b"] = jnp.asarray([0.0, -1.0, 1.0])   # rho = 1: plain momentum
  assert cosine(weights) < 0.999


def test_round_offset_penalty_is_zero_at_the_rules_own_rows_and_only_on_rounds():
  """Fresh weights keep Muon's coefficient rows (no penalty); moved round offsets are
  penalized on Muon's active rounds, never on a rule without rounds."""
  from learned_opt.executor import init_weights  # pylint: disable=import-outside-toplevel
  from tests.test_executor_multi_hop import CONFIG  # pylint: disable=import-outside-toplevel
  task = tasks_lib.get("digits_mlp", hidden=(16,))
  runs = [imitation.rule_run(CONFIG, name, {"learning_rate": 1e-2}, task, steps=2)
          for name in ("muon", "adam")]
  plan = imitation.hops.union([cond.plan for _, cond in runs],
                              runs[0][1].tensor_features.shape[0])
  conds = [imitation.pad_rounds(t, c, plan)[1] for t, c in runs]
  stack = lambda cs: jax.tree.map(lambda *x: jnp.stack(x), *cs)  # noqa: E731
  weights = init_weights(CONFIG, jax.random.PRNGKey(0))
  assert float(imitation.round_offset_penalty(weights, CONFIG, stack(conds))) == 0.0
  moved = dict(weights, hop_round_linear=dict(weights["hop_round_linear"],
                                              b=jnp.asarray([0.1, 0.0, 0.0])))
  assert float(imitation.round_offset_penalty(moved, CONFIG, stack(conds))) == pytest.approx(
      0.01 / 3, rel=1e-5)
  assert float(imitation.round_offset_penalty(moved, CONFIG, stack(conds[1:]))) == 0.0
