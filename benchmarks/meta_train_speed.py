"""Inner steps per second of meta-training (PES, antithetic) on 1 and 2 devices.

  python -m benchmarks.meta_train_speed [--truncation 20] [--repeats 5]

Setup: the executor (configs/meta_train.py architecture) meta-
trained with antithetic PES on MLP 64-32-10 classifiers of digits, batch 128,
a population of 8 tasks; one call = one full outer step of `meta_train.train`
(unroll every task by one truncation, estimate, clipped-Adam meta-update), with
the imitation regularizer off (and, in a second row, on). An inner step is one
task taking one optimizer step; an antithetic pair counts 2, so one outer step
is 8 x 2 x truncation inner steps.

The same run with the plain (unfused reference) form of the executor
(`config.executor_form = "plain"`) is timed beside it: the fused / plain ratio
is what fusing the per-edge network buys meta-training.

Beside it, in the same process: a plain `optax.adam` loop on the same MLP inside
`lax.scan` (one task, batches stacked), and the ratio PES / Adam. The 2-device
numbers come from a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=2 (the population sharded over
both); its Adam baseline runs in that subprocess. Runs are interleaved and the
best of `--repeats` is kept (compilation excluded).

Writes benchmarks/results/meta_train_speed_<backend>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

import jax
import numpy as np
import optax
from jax import lax

import tasks
from configs import meta_train as meta_train_config
from benchmarks import tasks_inner_speed
from meta_train import train

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
FAMILY = dict(datasets=("digits",), widths=(32, 32), depths=(1, 1), activations=("relu",),
              batch_sizes=(128,), layer_norm=(False,))


def _meta_step(truncation: int, population: int, imitation_weight: float, outer: int,
               form: str = "fused"):
  """A function running `outer` meta-training steps; and its inner-step count."""
  config = meta_train_config.get_config()
  config.executor_form = form
  config.init_from = ""   # the shipped architecture, fresh weights: same cost
  config.family = dict(name="image_mlp", **FAMILY)
  config.num_structures = 1
  config.population = population
  config.truncation_length = truncation
  config.imitation_weight = imitation_weight
  setup = train.build(config)
  state = [train.init_state(setup)]

  def run():
    s = state[0]
    for i in range(outer):
      s, _ = train.train_step(setup, s, i)
    jax.block_until_ready(s.weights)
    state[0] = s

  return run, outer * setup.estimators[0].inner_steps


def _adam_loop(steps: int):
  """optax.adam on the same MLP (one task), lax.scan over stacked batches."""
  family = tasks.families.ImageMLPFamily(**FAMILY)
  static = family.sample_static(jax.random.PRNGKey(0))
  task = family.task(tasks.TaskConfig(static, {"init_scale": np.float32(1.0)}))
  opt = optax.adam(1e-3)

  @jax.jit
  def loop(params, key, split):
    batches = split.stacked(key, steps)

    def body(carry, batch):
      params, state = carry
      loss, grads = jax.value_and_grad(task.loss)(params, key, batch)
      updates, state = opt.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), loss

    return lax.scan(body, (params, opt.init(params)), batches)[1]

  params = task.init(jax.random.PRNGKey(1))
  split = family.datasets(static).train
  return lambda: jax.block_until_ready(loop(params, jax.random.PRNGKey(2), split)), steps


def measure(truncation: int, population: int, repeats: int, outer: int) -> dict:
  """Inner steps/s of PES meta-training (fused: without and with the regularizer;
  plain: without) and of Adam."""
  pes, pes_steps = _meta_step(truncation, population, 0.0, outer)
  reg, reg_steps = _meta_step(truncation, population, 0.1, outer)
  plain, plain_steps = _meta_step(truncation, population, 0.0, outer, form="plain")
  adam, adam_steps = _adam_loop(pes_steps // population // 2)
  t_pes, t_reg, t_plain, t_adam = tasks_inner_speed.interleaved_best(
      [pes, reg, plain, adam], repeats)
  return {"devices": jax.device_count(), "pes": pes_steps / t_pes,
          "pes_regularized": reg_steps / t_reg, "pes_plain": plain_steps / t_plain,
          "adam": adam_steps / t_adam}


def _two_devices(args) -> dict:
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  out = subprocess.run(
      [sys.executable, "-m", "benchmarks.meta_train_speed", "--json",
       f"--truncation={args.truncation}", f"--repeats={args.repeats}",
       f"--outer={args.outer}", f"--population={args.population}"],
      env=env, check=True, capture_output=True, text=True,
      cwd=pathlib.Path(__file__).resolve().parents[1]).stdout
  return json.loads(out.strip().splitlines()[-1])


def report(rows: list[dict], args, load_before, load_after) -> str:
  lines = [
      f"# Meta-training speed ({jax.default_backend()})", "",
      f"`python -m benchmarks.meta_train_speed --truncation={args.truncation} "
      f"--population={args.population} --outer={args.outer} --repeats={args.repeats}`", "",
      f"jax {jax.__version__}, optax {optax.__version__}, {jax.default_backend()}, "
      f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); load average "
      f"(1/5/15 min) before {' '.join(f'{x:.2f}' for x in load_before)}, after "
      f"{' '.join(f'{x:.2f}' for x in load_after)}; {time.strftime('%Y-%m-%d %H:%M')}.", "",
      f"Antithetic PES on MLP 64-32-10 (digits, batch 128), {args.population} tasks, "
      f"truncation {args.truncation}: one timed call runs {args.outer} full outer steps of "
      "`meta_train.train` (unroll, estimate, clipped-Adam meta-update); an inner step is "
      "one task taking one optimizer step, antithetic pairs count 2. *+ regularizer*: "
      "with the imitation regularizer of configs/meta_train.py (2 Adam trajectories of 20 "
      "steps per outer step; its steps are not counted). *plain form*: the same PES run "
      "with `config.executor_form='plain'`, the unfused reference executor (stacked "
      "[..., F] features, a [F, H] matmul into a [..., H] hidden array, full readouts; "
      "`learned_opt/executor/step.py`). Adam: plain `optax.adam` on the "
      "same MLP in `lax.scan` (one task), measured in the same process. Best of "
      f"{args.repeats}, interleaved, compilation excluded.", "",
      "| devices | PES inner steps/s (fused) | PES + regularizer | PES, plain form | "
      "fused / plain | optax.adam loop steps/s | PES / Adam |",
      "|---:|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    lines.append(f"| {r['devices']} | {r['pes']:,.0f} | {r['pes_regularized']:,.0f} | "
                 f"{r['pes_plain']:,.0f} | {r['pes'] / r['pes_plain']:.2f}x | "
                 f"{r['adam']:,.0f} | {r['pes'] / r['adam']:.2f} |")
  return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--truncation", type=int, default=20)
  parser.add_argument("--population", type=int, default=8)
  parser.add_argument("--outer", type=int, default=10, help="outer steps per timed call")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--json", action="store_true", help="measure here, print one JSON line")
  parser.add_argument("--output", default=None)
  args = parser.parse_args(argv)
  if args.json:
    print(json.dumps(measure(args.truncation, args.population, args.repeats, args.outer)))
    return ""
  load_before = os.getloadavg()
  rows = [measure(args.truncation, args.population, args.repeats, args.outer),
          _two_devices(args)]
  text = report(rows, args, load_before, os.getloadavg())
  path = pathlib.Path(args.output or RESULTS / f"meta_train_speed_{jax.default_backend()}.md")
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  print(text)
  return text


if __name__ == "__main__":
  main()
