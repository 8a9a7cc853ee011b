"""The executor's per-edge network stays fused, and its state stays at 2 floats per parameter.

DESIGN.md (Neural executor -> Speed, Memory): the per-edge network runs as fused
elementwise work over the parameter tensors, never as a [num_params, hidden]
matrix; the persistent per-parameter state is k = 2 scalars plus O(nodes + layers).

Both are checked on the compiled CPU program of `tx.update` for a tree with a
512x256 dense layer: no HLO instruction (in the entry computation or inside a
fusion) has an array with (parameter size) x (hidden width) elements, nor any
array larger than the largest parameter.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_opt.executor import ExecutorConfig, ExecutorOptimizer, HandSet, network
from tests.conftest import random_executor_weights

_SHAPE = re.compile(r"\b(?:pred|bf16|[fsu]\d+)\[([0-9,]*)\]")

PARAMS = {
    "dense": {"w": jax.ShapeDtypeStruct((512, 256), jnp.float32),
              "b": jax.ShapeDtypeStruct((256,), jnp.float32)},
    "head": {"w": jax.ShapeDtypeStruct((256, 10), jnp.float32),
             "b": jax.ShapeDtypeStruct((10,), jnp.float32)},
}


def _param_like_split(state, params):
  """(state subtrees with params' structure and shapes, every other state leaf)."""
  treedef = jax.tree.structure(params)
  shapes = [tuple(x.shape) for x in jax.tree.leaves(params)]

  def like_params(x):
    return (jax.tree.structure(x) == treedef
            and [tuple(y.shape) for y in jax.tree.leaves(x)] == shapes)

  parts = jax.tree.leaves(state, is_leaf=like_params)
  per_param = [p for p in parts if like_params(p)]
  other = [p for p in parts if not like_params(p)]
  return per_param, other


def _shipped_records(name: str) -> tuple[ExecutorConfig, HandSet]:
  """The architecture and hand-set record of a shipped optimizer (`learned_opt.pretrained()`
  adds the step-size integrator, its gated band and the matrices' own momentum; the
  imitation executor the rules' pins and whole-tensor readouts)."""
  from learned_opt import checkpoint, shipped  # pylint: disable=import-outside-toplevel
  restored = checkpoint.restore(str(shipped.shipped_path(name)))
  return restored.config, restored.hand_set


@pytest.fixture(scope="module", params=["default", "meta_executor", "executor", "meta_controller"])
def compiled(request):
  config, hand_set = ((ExecutorConfig(), HandSet()) if request.param == "default"
                      else _shipped_records(request.param))
  tx = ExecutorOptimizer(random_executor_weights(config), config, "adam",
                         {"learning_rate": 1e-3}, hand_set).as_optax()
  state = jax.eval_shape(tx.init, PARAMS)
  hlo = jax.jit(tx.update).lower(PARAMS, state, PARAMS).compile().as_text()
  return config, state, hlo


def _element_counts(hlo: str) -> dict[str, int]:
  out = {}
  for dims in _SHAPE.findall(hlo):
    out[dims] = math.prod(int(d) for d in dims.split(",") if d)
  return out


def _hidden_by_parameter(hlo: str, config: ExecutorConfig, params) -> dict:
  """HLO shapes with (parameter size) x (hidden width) elements -> (size, width)."""
  counts = _element_counts(hlo)
  assert counts, "no shapes parsed from the HLO text"
  sizes = [math.prod(x.shape) for x in jax.tree.leaves(params) if len(x.shape) >= 2]
  widths = {h for h in (config.edge_hidden, network.NUM_EDGE_FEATURES,
                        network.NUM_NORMALIZER_OUTPUTS) if h > 1}
  forbidden = {p * h: (p, h) for p in sizes for h in widths}
  return {dims: forbidden[n] for dims, n in counts.items() if n in forbidden}


def test_no_hidden_by_parameter_intermediate(compiled):
  config, _, hlo = compiled
  bad = _hidden_by_parameter(hlo, config, PARAMS)
  assert not bad, (f"materialized [num_params, hidden] intermediates {bad} "
                   "(shape -> (parameter size, width)); the per-edge network must stay "
                   "a fused elementwise program")
  largest = max(math.prod(x.shape) for x in jax.tree.leaves(PARAMS))
  counts = _element_counts(hlo)
  too_big = {dims: n for dims, n in counts.items() if n > largest}
  assert not too_big, f"arrays larger than any parameter tensor in the HLO: {too_big}"


def _learned_optimizer(config: ExecutorConfig, form: str, hand_set: HandSet = HandSet()):
  from meta_train import unroll  # pylint: disable=import-outside-toplevel
  return unroll.executor_optimizer(config, hand_set, "adam", {"learning_rate": 1e-3}, form)


def test_plain_form_materializes_the_hidden_array_the_check_looks_for():
  """The reference form writes [..., F] and [..., H] arrays: the check above must see them."""
  config = ExecutorConfig()
  opt = _learned_optimizer(config, "plain")
  weights = random_executor_weights(config)
  state = jax.eval_shape(opt.init, PARAMS)
  hlo = jax.jit(opt.step).lower(weights, PARAMS, state, PARAMS).compile().as_text()
  assert _hidden_by_parameter(hlo, config, PARAMS)


def _run_both_forms(config: ExecutorConfig, in_neurons: int,
                    hand_set: HandSet = HandSet()) -> dict:
  """(params, state) after 5 steps of each form, same weights and gradients."""
  weights = random_executor_weights(config)
  rng = np.random.default_rng(1)
  params = {"w": jnp.asarray(rng.standard_normal((in_neurons, 16)), jnp.float32),
            "b": jnp.zeros((16,), jnp.float32)}
  results = {}
  for form in ("fused", "plain"):
    opt = _learned_optimizer(config, form, hand_set)
    step = jax.jit(opt.step)
    p, state = params, opt.init(params)
    grad_rng = np.random.default_rng(2)
    for _ in range(5):
      grads = jax.tree.map(
          lambda x: jnp.asarray(grad_rng.standard_normal(x.shape), jnp.float32), p)
      updates, state = step(weights, grads, state, p)
      p = jax.tree.map(jnp.add, p, updates)
    results[form] = (p, state)
  return results


def _agree(results: dict) -> bool:
  return all(np.allclose(a, b, rtol=2e-4, atol=1e-6) for a, b in
             zip(jax.tree.leaves(results["fused"]), jax.tree.leaves(results["plain"])))


@pytest.mark.parametrize("in_neurons,readout_rows", [(24, 64), (200, 0)])
def test_plain_and_fused_forms_agree(in_neurons, readout_rows):
  """Same weights, same gradients, 5 steps: the two forms give the same updates and state.

  The fused readout is exact where the tensors have at most readout_rows in-neurons,
  or everywhere with readout_rows=0.
  """
  assert _agree(_run_both_forms(ExecutorConfig(), in_neurons,
                                HandSet(readout_rows=readout_rows)))


def test_fused_readout_reads_a_row_sample_of_wide_tensors():
  """With 200 in-neurons and the default readout_rows (64) the fused form reads every 4th
  row, so its readouts, and its updates, differ from the plain form's whole-tensor ones."""
  assert not _agree(_run_both_forms(ExecutorConfig(), 200))


def test_negative_readout_rows_is_refused():
  with pytest.raises(ValueError, match="readout_rows must be >= 0"):
    HandSet(readout_rows=-1)


def test_unknown_form_is_refused():
  with pytest.raises(ValueError, match="Unknown executor form 'unfused'"):
    opt = _learned_optimizer(ExecutorConfig(), "unfused")
    opt.step(random_executor_weights(ExecutorConfig()), {"w": jnp.ones((2, 2))},
             opt.init({"w": jnp.ones((2, 2))}), {"w": jnp.ones((2, 2))})


def test_state_is_two_floats_per_parameter_plus_nodes(compiled):
  _, state, _ = compiled
  leaves = jax.tree.leaves(PARAMS)
  num_params = sum(math.prod(x.shape) for x in leaves)
  per_param, other = _param_like_split(state, PARAMS)
  assert len(per_param) == 2, f"expected 2 parameter-shaped state trees, got {len(per_param)}"
  per_param_bytes = sum(x.size * jnp.dtype(x.dtype).itemsize
                        for p in per_param for x in jax.tree.leaves(p))
  assert per_param_bytes == 8 * num_params  # float32 params: 2 x 4 bytes

  # Each rank >= 2 tensor has exactly 2 state leaves of its shape (s1, s2).
  state_shapes = [tuple(x.shape) for x in jax.tree.leaves(state)]
  for x in leaves:
    if len(x.shape) >= 2:
      assert state_shapes.count(tuple(x.shape)) == 2, (x.shape, state_shapes)

  # The rest is O(nodes + layers): at most 4 floats per neuron plus a little per tensor.
  nodes = 0
  for x in leaves:
    if len(x.shape) >= 2:
      nodes += math.prod(x.shape[:-2]) * (x.shape[-2] + x.shape[-1])
    else:
      nodes += max(1, math.prod(x.shape))
  other_bytes = sum(x.size * jnp.dtype(x.dtype).itemsize for x in other)
  assert other_bytes <= 16 * nodes + 64 * (len(leaves) + 1), (other_bytes, nodes)


def _direction_gain_zeroed(weights):
  """The weights with the tensor net's outputs for the direction readout's coefficients at 0."""
  # linear, hinge, knot and zero flag of log RMS(d)
  cols = slice(network.DIRECTION_GAIN_INDEX, network.DIRECTION_GAIN_INDEX + 4)
  out = dict(weights)
  for name in ("tensor_net_linear", "tensor_net_out"):
    out[name] = {k: v.at[..., cols].set(0.0) for k, v in weights[name].items()}
  return out


def test_direction_readout_off_removes_only_the_direction_term():
  """direction_readout=False equals the full readout with the direction's coefficients at 0."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  full = ExecutorConfig()
  without = dataclasses.replace(full, direction_readout=False)
  weights = random_executor_weights(full)
  rng = np.random.default_rng(3)
  params = {"w": jnp.asarray(rng.standard_normal((200, 16)), jnp.float32),
            "b": jnp.asarray(rng.standard_normal((16,)), jnp.float32)}
  grads = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), jnp.float32),
                       params)

  def update(config, w):
    opt = _learned_optimizer(config, "fused")
    return jax.jit(opt.step)(w, grads, opt.init(params), params)[0]

  off = update(without, weights)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
               off, update(full, _direction_gain_zeroed(weights)))
  with_term = update(full, weights)
  assert not np.allclose(off["w"], with_term["w"], rtol=1e-3)
