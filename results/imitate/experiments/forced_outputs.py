r"""Which learned outputs keep an executor's Adafactor from Adafactor? Force them and see.

  PYTHONPATH=. python results/imitate/experiments/forced_outputs.py CHECKPOINT [FORCINGS]

FORCINGS is a comma-separated list of '+'-joined forcings (default: a ladder from
`as_is` to every forcing at once). Each forcing sets some of the executor's outputs to
what `tests/test_executor_expressivity.py::_adafactor_weights` sets them to (the
hand-set executor that is optax.adafactor):

  alpha0  no per-entry RMS term (alpha = 0) on the tensors Adafactor factors
  exp1    row and column exponents 1, 1 there (the degree-0 mean exponent follows)
  vec     alpha 1, beta 0 on the tensors it does not factor
  decay   row/column and second-moment decays 1 - (t + 1)^-0.8, gains 1 - decay
  ng      numerator g (no first moment in the edge network)
  k0      no sign gain
  eps0    no epsilon

Adafactor (min_dim_size_to_factor 16) runs 200 steps on digits MLPs 64-32-10 (lr 1e-2),
64-64-10 (lr 1e-3) and 64-256-10 (lr 1e-2); the executor runs along each with its own
state fed back. Prints the median over steps of each tensor's update cosine and norm
ratio (executor / Adafactor).
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import tasks
from learned_opt import checkpoint
from learned_opt.executor import network, step
from per_tensor_agreement import agreement_along_rule

FORCINGS = ("alpha0", "exp1", "vec", "decay", "ng", "k0", "eps0")
LADDER = "as_is,eps0,k0,alpha0+exp1+decay+ng,alpha0+exp1+decay+ng+k0,alpha0+exp1+decay+ng+eps0," \
         "alpha0+exp1+decay+ng+k0+eps0+vec"
RUNS = (((32,), 1e-2), ((64,), 1e-3), ((256,), 1e-2))
_active: set[str] = set()
_build, _split = network.build, step.split_hyper_outputs


class _Forced:
  """network.build(config) with the tensor net's outputs forced (see FORCINGS)."""

  def __init__(self, config):
    self.init = _build(config).init
    cond_fn, hyper_fn, tensor_fn = _build(config).apply
    self.apply = (cond_fn, hyper_fn, lambda w, c, feats: _force_tensor(tensor_fn(w, c, feats),
                                                                       feats))


def _force_tensor(out: jax.Array, feats: jax.Array) -> jax.Array:
  factored = step.factored_by_rule(feats)
  if "alpha0" in _active:
    out = out.at[:, 0].set(jnp.where(factored, 0.0, out[:, 0]))
  if "exp1" in _active:
    out = out.at[:, 1:3].set(jnp.where(factored[:, None], 1.0, out[:, 1:3]))
  if "vec" in _active:
    out = out.at[:, 0].set(jnp.where(factored, out[:, 0], 1.0))
    out = out.at[:, 5].set(jnp.where(factored, out[:, 5], 0.0))
  if "k0" in _active:
    out = out.at[:, 6].set(0.0)
  if "eps0" in _active:
    out = out.at[:, 7].set(-60.0)
  return out


def _forced_split(out, config, clock):
  coeffs = _split(out, config, clock)
  if "decay" in _active:
    a = 1.0 - (jnp.asarray(clock, jnp.float32) + 1.0) ** -0.8
    coeffs = coeffs._replace(decays=coeffs.decays.at[1:].set(a),
                             gains=coeffs.gains.at[1:].set(1.0 - a))
  if "ng" in _active:
    coeffs = coeffs._replace(linear=jnp.zeros_like(coeffs.linear).at[0].set(1.0),
                             hidden_out=jnp.zeros_like(coeffs.hidden_out))
  return coeffs


def agreement(weights, config, hidden: tuple, learning_rate: float):
  """(tensor shapes, median cosine per tensor, median norm ratio per tensor)."""
  task = tasks.get("digits_mlp", hidden=hidden)
  kwargs = {"learning_rate": learning_rate, "min_dim_size_to_factor": 16}
  shapes, cos, ratio = agreement_along_rule(weights, config, "adafactor", kwargs, task, 0)
  return shapes, np.median(cos, 0), np.median(ratio, 0)


def main(path: str, forcings: str = LADDER) -> None:
  weights, config, _ = checkpoint.restore(path)
  step.network = type("ForcedNetwork", (), {
      **{k: getattr(network, k) for k in dir(network) if not k.startswith("__")},
      "build": staticmethod(_Forced), "layer_log_gain": staticmethod(network.layer_log_gain)})
  step.split_hyper_outputs = _forced_split
  print("| forced | network (lr) | cosine per tensor | norm ratio per tensor |")
  print("|---|---|---|---|")
  for combo in forcings.split(","):
    names = set() if combo == "as_is" else set(combo.split("+"))
    unknown = names - set(FORCINGS)
    if unknown:
      raise SystemExit(f"unknown forcings {sorted(unknown)}; use {FORCINGS} or as_is")
    _active.clear()
    _active.update(names)
    jax.clear_caches()
    for hidden, lr in RUNS:
      shapes, cos, ratio = agreement(weights, config, hidden, lr)
      print(f"| {combo} | {shapes} ({lr:g}) | {', '.join(f'{c:.4f}' for c in cos)} | "
            f"{', '.join(f'{r:.3f}' for r in ratio)} |", flush=True)


if __name__ == "__main__":
  main(*sys.argv[1:])
