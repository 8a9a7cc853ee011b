"""Task families: deterministic per key, cover their ranges, and a population
of one structure trains in one vectorized (vmapped, jitted, scanned) call."""

import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

import tasks
from tasks.families import (ImageAutoencoderFamily, ImageAutoencoderStatic, ImageMLPFamily,
                            ImageMLPStatic, MixtureFamily, MixtureStatic, PatchTransformerFamily,
                            PatchTransformerStatic, QuadraticFamily, QuadraticStatic,
                            RecurrentLMFamily, RecurrentLMStatic, ResidualMLPFamily,
                            ResidualMLPStatic)


# Test-only: cheapest XLA CPU optimization level, ~3x faster compiles.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def keys(n, seed=0):
  return jax.random.split(jax.random.PRNGKey(seed), n)


def assert_same_config(a, b):
  assert a.static == b.static
  jax.tree.map(np.testing.assert_array_equal, a.dynamic, b.dynamic)


@pytest.mark.parametrize("family", [ImageMLPFamily(), QuadraticFamily(),
                                    ImageAutoencoderFamily(), ResidualMLPFamily(),
                                    PatchTransformerFamily(), RecurrentLMFamily()],
                         ids=["image_mlp", "quadratic", "image_autoencoder", "residual_mlp",
                              "patch_transformer", "recurrent_lm"])
def test_deterministic_per_key(family):
  key = jax.random.PRNGKey(42)
  assert_same_config(family.sample(key), family.sample(key))
  typed = jax.random.key(42)  # new-style keys work too
  assert_same_config(family.sample(typed), family.sample(typed))
  configs = [family.sample(k) for k in keys(6)]
  assert len({c.static for c in configs}) > 1
  pop_a = family.sample_population(key, 5)
  pop_b = family.sample_population(key, 5)
  assert_same_config(pop_a, pop_b)


def test_image_mlp_static_covers_its_ranges():
  family = ImageMLPFamily()
  statics = [family.sample_static(k) for k in np.asarray(keys(400))]
  widths = [s.width for s in statics]
  assert 16 <= min(widths) <= 20 and 220 <= max(widths) <= 256
  assert np.median(widths) < 100  # log-uniform: about sqrt(16 * 256) = 64
  assert {s.depth for s in statics} == {1, 2, 3, 4}
  assert {s.activation for s in statics} == set(family.activations)
  assert {s.batch_size for s in statics} == {32, 64, 128}
  assert {s.dataset for s in statics} == {"digits", "mnist1d"}
  assert {s.layer_norm for s in statics} == {False, True}


def test_dynamic_sampling_is_jittable_vmappable_and_covers_its_range():
  family = ImageMLPFamily()
  static = ImageMLPStatic("digits", 32, 2, "relu", 64)
  sample = jax.jit(jax.vmap(functools.partial(family.sample_dynamic, static=static)))
  scales = np.asarray(sample(keys(500))["init_scale"])
  assert scales.min() >= 0.5 and scales.max() <= 2.0
  assert scales.min() < 0.55 and scales.max() > 1.8
  one = family.sample_dynamic(keys(500)[7], static)
  assert float(one["init_scale"]) == pytest.approx(float(scales[7]), rel=1e-6)

  quad = QuadraticFamily()
  qs = QuadraticStatic(16, 8)
  dyn = jax.jit(jax.vmap(lambda k: quad.sample_dynamic(k, qs)))(keys(500))
  cond = np.asarray(dyn["log10_condition"])
  assert cond.min() >= 0 and cond.max() <= 4 and cond.min() < 0.1 and cond.max() > 3.9
  noise = np.asarray(dyn["noise_scale"])
  assert noise.min() >= 0 and noise.max() <= 0.5
  assert dyn["seed"].shape == (500, 2) and dyn["seed"].dtype == jnp.uint32
  dims = [quad.sample_static(k).dim for k in np.asarray(keys(300))]
  assert min(dims) == 8 and max(dims) >= 56 and max(dims) <= 64


def test_quadratic_task_of_a_config_has_the_sampled_conditioning():
  family = QuadraticFamily()
  config = family.sample(jax.random.PRNGKey(1))
  task = family.task(config)
  eig = np.linalg.eigvalsh(np.asarray(task.hessian, np.float64))
  assert np.log10(eig.max() / eig.min()) == pytest.approx(
      float(config.dynamic["log10_condition"]), abs=0.02)
  assert task.batch_spec["noise"].shape == (config.static.batch_size, config.static.dim)


def test_task_refuses_a_foreign_config():
  config = QuadraticFamily().sample(jax.random.PRNGKey(0))
  with pytest.raises(TypeError, match="ImageMLPStatic"):
    ImageMLPFamily().task(config)


def test_init_scale_scales_the_weights():
  family = ImageMLPFamily()
  static = ImageMLPStatic("digits", 24, 2, "tanh", 32)

  @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
  def init(scale):  # the scale is traced: one compile serves every value
    task = family.task(tasks.TaskConfig(static, {"init_scale": scale}))
    return task.init(jax.random.PRNGKey(0))

  base, scaled = init(jnp.float32(1.0)), init(jnp.float32(2.0))
  for a, b in zip(jax.tree.leaves(base), jax.tree.leaves(scaled)):
    np.testing.assert_allclose(b, a * (2.0 if a.ndim >= 2 else 1.0), rtol=1e-6)


def train_population(family, population, steps, learning_rate):
  """Trains every task of a population in ONE jitted call: vmap over the
  dynamic config, lax.scan over steps, batches sampled on device."""
  opt = optax.adam(learning_rate)
  splits = family.datasets(population.static)
  n = len(jax.tree.leaves(population.dynamic)[0])

  def one(config, key, train, valid):
    task = family.task(config)  # config.dynamic is traced here
    params = task.init(key)
    batches = train.stacked(key, steps)

    def step(carry, batch):
      params, opt_state = carry
      loss, grads = jax.value_and_grad(task.loss)(params, key, batch)
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    held = valid.sample(jax.random.PRNGKey(9))
    before = task.loss(params, key, held)
    (params, _), _ = lax.scan(step, (params, opt.init(params)), batches)
    return before, task.loss(params, key, held)

  run = jax.jit(jax.vmap(one, in_axes=(0, 0, None, None)))
  compiled = run.lower(population, keys(n, 5), splits.train, splits.valid).compile(
      compiler_options=FAST_COMPILE)
  return compiled(population, keys(n, 5), splits.train, splits.valid)


def test_image_mlp_population_trains_in_one_vectorized_call():
  family = ImageMLPFamily()
  static = ImageMLPStatic("digits", 32, 1, "relu", 64)
  population = family.sample_population(jax.random.PRNGKey(0), 4, static=static)
  assert population.dynamic["init_scale"].shape == (4,)
  before, after = train_population(family, population, 60, 1e-2)
  assert before.shape == after.shape == (4,)
  assert (np.asarray(after) < 0.5 * np.asarray(before)).all()
  assert len(set(np.round(np.asarray(before), 5))) == 4  # different tasks


def test_image_autoencoder_covers_its_ranges_and_its_population_trains():
  family = ImageAutoencoderFamily()
  statics = [family.sample_static(k) for k in np.asarray(keys(300))]
  latents = [s.latent for s in statics]
  assert min(latents) == 4 and max(latents) == 16
  assert {s.depth for s in statics} == {1, 2}
  assert {s.dataset for s in statics} == {"digits", "mnist1d"}
  assert 16 <= min(s.width for s in statics) <= 20 and max(s.width for s in statics) >= 110
  static = ImageAutoencoderStatic("digits", 32, 1, 8, "relu", 64)
  population = family.sample_population(jax.random.PRNGKey(0), 3, static=static)
  task = family.task(jax.tree.map(lambda x: x[0], population))
  assert isinstance(task, tasks.supervised.AutoencoderTask)
  shapes = sorted(x.shape for x in jax.tree.leaves(task.init(jax.random.PRNGKey(0))))
  assert (64, 32) in shapes and (32, 8) in shapes and (8, 32) in shapes and (32, 64) in shapes
  before, after = train_population(family, population, 100, 1e-2)
  assert (np.asarray(after) < 0.7 * np.asarray(before)).all()
  with pytest.raises(TypeError, match="ImageAutoencoderStatic"):
    family.task(ImageMLPFamily().sample(jax.random.PRNGKey(0)))


def test_a_mixture_spec_takes_image_autoencoders():
  family = tasks.families.from_spec({"name": "mixture", "members": {
      "image": {"name": "image_mlp", "widths": (16, 32), "depths": (1, 1), "share": 2.0},
      "autoencoder": {"name": "image_autoencoder", "widths": (16, 32), "share": 1.0}}})
  statics = family.sample_structures(jax.random.PRNGKey(0), 3)
  assert [s.member for s in statics] == ["autoencoder", "image", "image"]
  config = family.sample_population(jax.random.PRNGKey(1), 2, static=statics[0])
  assert isinstance(family.task(jax.tree.map(lambda x: x[0], config)),
                    tasks.supervised.AutoencoderTask)


def test_quadratic_population_trains_in_one_vectorized_call():
  family = QuadraticFamily(log10_conditions=(0.0, 2.0))
  population = family.sample_population(jax.random.PRNGKey(3), 6)
  assert population.dynamic["seed"].shape == (6, 2)
  before, after = train_population(family, population, 150, 1e-1)
  assert (np.asarray(after) < 0.1 * np.asarray(before)).all()


def mixture():
  return MixtureFamily({"mlp": ImageMLPFamily(widths=(16, 32), depths=(1, 1)),
                        "quad": QuadraticFamily(log10_conditions=(0.0, 2.0))},
                       {"mlp": 3.0, "quad": 1.0})


@hypothesis.given(shares=st.lists(st.floats(0.01, 100.0), min_size=1, max_size=5),
                  n=st.integers(0, 40))
def test_mixture_counts_follow_the_shares(shares, n):
  family = MixtureFamily({f"m{i}": QuadraticFamily() for i in range(len(shares))},
                         {f"m{i}": s for i, s in enumerate(shares)})
  counts = family.counts(n)
  assert sum(counts.values()) == n and min(counts.values()) >= 0
  if n >= len(shares):
    assert min(counts.values()) >= 1
  exact = [n * share / sum(shares) for share in shares]
  for i, e in enumerate(exact):
    assert counts[f"m{i}"] <= max(1, np.ceil(e - 1e-9))   # only the one-each floor adds
    if min(exact) >= 1:                                    # no floor: largest remainders
      assert abs(counts[f"m{i}"] - e) < 1.0


def test_mixture_structures_trains_and_refuses_foreign_configs():
  family = mixture()
  statics = family.sample_structures(jax.random.PRNGKey(0), 4)
  assert statics == family.sample_structures(jax.random.PRNGKey(0), 4)
  assert [s.member for s in statics] == ["mlp", "mlp", "mlp", "quad"]
  assert len(set(statics)) == 4
  population = family.sample_population(jax.random.PRNGKey(1), 3, static=statics[-1])
  assert isinstance(family.task(jax.tree.map(lambda x: x[0], population)),
                    tasks.quadratic.QuadraticTask)
  before, after = train_population(family, population, 150, 1e-1)
  assert (np.asarray(after) < 0.1 * np.asarray(before)).all()
  drawn = {family.sample_static(k).member for k in np.asarray(keys(40))}
  assert drawn == {"mlp", "quad"}
  with pytest.raises(TypeError, match="MixtureStatic"):
    family.task(QuadraticFamily().sample(jax.random.PRNGKey(0)))
  with pytest.raises(ValueError, match="Unknown member 'conv'"):
    family.datasets(MixtureStatic("conv", statics[0].static))


def test_mixture_refuses_bad_shares():
  with pytest.raises(ValueError, match="one share per member"):
    MixtureFamily({"a": QuadraticFamily()}, {"b": 1.0})
  with pytest.raises(ValueError, match="positive"):
    MixtureFamily({"a": QuadraticFamily()}, {"a": 0.0})
  with pytest.raises(ValueError, match="at least one member"):
    MixtureFamily({})


def test_too_few_distinct_structures_is_refused():
  with pytest.raises(ValueError, match="fewer than 3 distinct structures"):
    QuadraticFamily(dims=(8, 8)).sample_structures(jax.random.PRNGKey(0), 3)


def test_family_sample_is_the_familys_own_draw_and_reads_config_dicts():
  import ml_collections
  spec = {"name": "mixture", "members": {
      "image": {"name": "image_mlp", "widths": (16, 32), "depths": (1, 2), "share": 3.0},
      "quad": {"name": "quadratic", "dims": (8, 16), "share": 1.0}}}
  family = tasks.families.from_spec(ml_collections.ConfigDict(spec))
  assert isinstance(family, MixtureFamily) and family.shares == {"image": 0.75, "quad": 0.25}
  for seed in range(4):
    own = family.task(family.sample(jax.random.PRNGKey(seed)))
    drawn = tasks.get("family_sample", family=spec, seed=seed)
    assert drawn.name == own.name
    jax.tree.map(np.testing.assert_array_equal, drawn.init(jax.random.PRNGKey(0)),
                 own.init(jax.random.PRNGKey(0)))
  assert isinstance(tasks.families.from_spec({"name": "quadratic"}), QuadraticFamily)
  with pytest.raises(ValueError, match="Unknown task family 'quadric'"):
    tasks.get("family_sample", family={"name": "quadric"})


def test_evaluate_family_config_draws_held_out_training_tasks():
  from configs import evaluate as evaluate_config  # pylint: disable=import-outside-toplevel
  config = evaluate_config.get_config("family")
  names = [tasks.get(e.name, **e.kwargs).name for e in config.tasks.values()]
  assert len(names) == 12 and len(set(names)) == 12
  assert {n.split("/")[0] for n in names} == {"image_mlp", "quadratic"}
  assert config.long_horizon is None and config.steps == 2000


def test_the_autoencoder_meta_training_config_builds_its_mixture():
  from configs import meta_train  # pylint: disable=import-outside-toplevel
  family = tasks.families.from_spec(meta_train.get_config("autoencoders").family)
  assert isinstance(family, MixtureFamily)
  assert family.shares == pytest.approx({"image": 0.5, "quadratic": 1 / 6, "autoencoder": 1 / 3})
  assert isinstance(family.members["autoencoder"], ImageAutoencoderFamily)
  assert family.counts(8) == {"autoencoder": 3, "image": 4, "quadratic": 1}


# The recurrent, residual and Transformer families: ranges, the static/dynamic split
# (a traced init scale under jit), and a population of one structure trained in
# one vmapped, jitted, scanned call.
NEW_FAMILIES = {
    "residual_mlp": (ResidualMLPFamily(), ResidualMLPStatic("digits", 32, 3, "relu", 64),
                     ResidualMLPStatic, 0.5),
    "patch_transformer": (PatchTransformerFamily(), PatchTransformerStatic(4, 16, 2, 1, 64),
                          PatchTransformerStatic, 0.7),
    "recurrent_lm": (RecurrentLMFamily(), RecurrentLMStatic("gru", "char", 16, 32, 16, 16),
                     RecurrentLMStatic, 0.8),
}


def test_new_families_cover_their_ranges():
  residual = [ResidualMLPFamily().sample_static(k) for k in np.asarray(keys(300))]
  assert {s.depth for s in residual} == set(range(1, 9))
  assert {s.dataset for s in residual} == {"digits", "mnist1d"}
  assert 16 <= min(s.width for s in residual) <= 20 and max(s.width for s in residual) >= 100
  patch = [PatchTransformerFamily().sample_static(k) for k in np.asarray(keys(200))]
  assert {s.patch for s in patch} == {2, 4} and {s.num_layers for s in patch} == {1, 2, 3}
  assert {s.num_heads for s in patch} == {1, 2, 4}
  assert all(s.d_model % s.num_heads == 0 for s in patch)
  recurrent = [RecurrentLMFamily().sample_static(k) for k in np.asarray(keys(200))]
  assert {(s.cell, s.level) for s in recurrent} == {
      (c, l) for c in ("lstm", "gru") for l in ("byte", "char")}
  assert min(s.hidden_size for s in recurrent) < 24 and max(s.hidden_size for s in recurrent) > 90
  with pytest.raises(ValueError, match="Unknown recurrent cell"):
    RecurrentLMFamily(cells=("rnn",))
  with pytest.raises(ValueError, match="must divide 8"):
    PatchTransformerFamily(patches=(3,))


@pytest.mark.parametrize("name", sorted(NEW_FAMILIES))
def test_new_family_jits_with_a_traced_init_scale_and_its_population_trains(name):
  family, static, static_type, ratio = NEW_FAMILIES[name]

  @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
  def init(scale):
    task = family.task(tasks.TaskConfig(static, {"init_scale": scale}))
    return task.init(jax.random.PRNGKey(0))

  base, scaled = init(jnp.float32(1.0)), init(jnp.float32(2.0))
  for a, b in zip(jax.tree.leaves(base), jax.tree.leaves(scaled)):
    np.testing.assert_allclose(b, a * (2.0 if a.ndim >= 2 else 1.0), rtol=1e-6)
  population = family.sample_population(jax.random.PRNGKey(0), 3, static=static)
  assert population.dynamic["init_scale"].shape == (3,)
  before, after = train_population(family, population, 60, 1e-2)
  assert before.shape == after.shape == (3,)
  assert (np.asarray(after) < ratio * np.asarray(before)).all(), (before, after)
  with pytest.raises(TypeError, match=static_type.__name__):
    family.task(QuadraticFamily().sample(jax.random.PRNGKey(0)))


def test_a_mixture_spec_takes_the_new_families():
  family = tasks.families.from_spec({"name": "mixture", "members": {
      "residual": {"name": "residual_mlp", "share": 1.0},
      "patch": {"name": "patch_transformer", "share": 1.0},
      "recurrent": {"name": "recurrent_lm", "share": 1.0}}})
  members = {s.member for s in family.sample_structures(jax.random.PRNGKey(0), 3)}
  assert members == {"residual", "patch", "recurrent"}
