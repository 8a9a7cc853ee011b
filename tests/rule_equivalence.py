"""Helper that runs one of our rules beside optax's and compares every update."""

import jax
import numpy as np

import learned_opt
from tests.conftest import random_grads

STEPS = 25


def assert_matches_optax(name: str, optax_tx, params, rtol: float = 1e-5, atol: float = 1e-7,
                         steps: int = STEPS, **kwargs) -> None:
  """Our rule `name(**kwargs)` and `optax_tx` produce the same updates for `steps` steps."""
  rule = learned_opt.algorithms.get(name, **kwargs)
  ours_state, ref_state = rule.init(params), optax_tx.init(params)
  ours_params = ref_params = params
  step_fn = jax.jit(rule.step)
  ref_fn = jax.jit(optax_tx.update)
  key = jax.random.PRNGKey(42)
  apply = jax.jit(lambda p, u: jax.tree.map(lambda a, b: a + b, p, u))
  for t in range(steps):
    grads = random_grads(key, ref_params, t)
    ours, ours_state, trace = step_fn(grads, ours_state, ours_params)
    ref, ref_state = ref_fn(grads, ref_state, ref_params)
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(ours)[0], jax.tree.leaves(ref)):
      scale = np.max(np.abs(np.asarray(b))) + 1e-30
      np.testing.assert_allclose(
          np.asarray(a), np.asarray(b), rtol=rtol, atol=max(atol, rtol * scale),
          err_msg=f"{name}{kwargs} step {t} leaf {jax.tree_util.keystr(path)}")
      assert a.dtype == b.dtype or a.dtype == grads_dtype(grads, path)
    ours_params, ref_params = apply(ours_params, ours), apply(ref_params, ref)
    assert isinstance(trace, dict) and trace, f"{name} emitted no hints"


def grads_dtype(grads, path):
  leaf = grads
  for k in path:
    leaf = leaf[getattr(k, "key", getattr(k, "idx", None))]
  return leaf.dtype
