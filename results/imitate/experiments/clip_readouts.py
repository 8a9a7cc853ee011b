r"""Where an executor's Adafactor clips, against where Adafactor does, along Adafactor's run.

  PYTHONPATH=. python results/imitate/experiments/clip_readouts.py CHECKPOINT [NETWORK [STEPS]]

Adafactor (`configs/evaluate_imitation.py`'s kwargs) runs on digits MLP 64-32-10 (or
NETWORK, a key of that config's networks) for max(STEPS) + 1 steps (STEPS
comma-separated, default 0,2,50,100,199); the executor runs along it with its own state
fed back. At each of STEPS, per tensor: Adafactor's log RMS(u), u = g / its factored
RMS (it clips where this is above 0), the executor's log RMS(d) above its clipping knot
('clip_excess': the same number when it imitates exactly; it clips where this is above
0), and the norm ratio of the two updates (executor / rule).
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import tasks
from configs import evaluate_imitation
from learned_opt import algorithms, checkpoint
from learned_opt.executor import step as step_lib
from meta_train import imitation


def main(path: str, network: str = "mlp 64-32-10", steps: str = "0,2,50,100,199") -> None:
  shown = [int(s) for s in steps.split(",")]
  weights, config, _ = checkpoint.restore(path)
  eval_config = evaluate_imitation.get_config()
  spec = eval_config.networks[network]
  task = tasks.get(spec.name, **spec.kwargs)
  kwargs = dict(eval_config.rules["adafactor"])
  traj, cond = imitation.rule_run(config, "adafactor", kwargs, task, max(shown) + 1,
                                  eval_config.seed)
  rule = algorithms.get("adafactor", **kwargs)
  first = jax.tree.map(lambda x: x[0], traj.params)
  graph = imitation.graph_of(first)

  @jax.jit
  def one(state, rule_state, params, grads):
    out = step_lib.executor_step(weights, config, graph, cond.rule_id, cond.hyper_features,
                                 cond.learning_rate, cond.tensor_features, grads, state, params)
    updates, rule_state, trace = rule.step(grads, rule_state, params)
    log_rms_u = jnp.stack([0.5 * jnp.log(jnp.mean(jnp.square(g * s)) + 1e-30) for g, s in
                           zip(graph.leaves(grads), graph.leaves(trace["scale"].value))])
    ratio = jnp.stack([jnp.linalg.norm(a) / (jnp.linalg.norm(b) + 1e-30) for a, b in
                       zip(graph.leaves(out.updates), graph.leaves(updates))])
    return out.state, rule_state, log_rms_u, out.predictions["clip_excess"], ratio

  state, rule_state = step_lib.init_state(first), rule.init(first)
  print(f"adafactor on {network}; tensors {[info.shape for info in graph.tensors]}")
  print("| step | Adafactor log RMS(u) | executor's log RMS(d) above its knot | norm ratio |")
  print("|---|---|---|---|")
  for t in range(max(shown) + 1):
    params, grads = (jax.tree.map(lambda x, t=t: x[t], tree) for tree in (traj.params,
                                                                           traj.grads))
    state, rule_state, log_rms_u, excess, ratio = one(state, rule_state, params, grads)
    if t in shown:
      fmt = lambda xs: ", ".join(f"{float(x):+.2f}" for x in np.asarray(xs))  # noqa: E731
      print(f"| {t} | {fmt(log_rms_u)} | {fmt(excess)} | "
            f"{', '.join(f'{float(x):.3f}' for x in np.asarray(ratio))} |")


if __name__ == "__main__":
  main(*sys.argv[1:])
