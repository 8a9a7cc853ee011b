"""Inner training steps per second: Python loop vs. lax.scan over stacked batches.

  python -m benchmarks.tasks_inner_speed [--steps 1000] [--repeats 5]

Task: `digits_mlp` (MLP 64-32-10, batch 128), Adam(1e-2). Rows:

* python loop, host batches: one jitted step per Python call, the batch a
  numpy array from the split's host iterator (copied to the device each step);
* python loop, device sampling: one jitted step per call, the batch gathered
  on device from the split passed as an argument;
* lax.scan, stacked batches: `split.stacked(key, steps)` and the whole unroll
  in one jitted call;
* lax.scan, sampled in the body: `split.sample(key)` inside each scan step
  (no `[steps, batch, ...]` buffer);
* lax.scan + vmap: the same for a population of tasks (inner steps summed).

Each row is timed after a warm-up call (compilation excluded); runs are
interleaved round-robin and the best of `--repeats` is reported. Prints a
Markdown table.
"""

import argparse
import platform
import time

import jax
import numpy as np
import optax
from jax import lax

import tasks


def _adam_step(task, opt):
  def step(params, opt_state, key, batch):
    loss, grads = jax.value_and_grad(task.loss)(params, key, batch)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss
  return step


def interleaved_best(fns: list, repeats: int) -> list[float]:
  """Best wall time of each function; runs are interleaved round-robin so
  that every method sees the same machine load."""
  for fn in fns:
    fn()  # warm-up: compile
  best = [float("inf")] * len(fns)
  for _ in range(repeats):
    for i, fn in enumerate(fns):
      start = time.perf_counter()
      fn()
      best[i] = min(best[i], time.perf_counter() - start)
  return best


def run(steps: int, repeats: int, population: int) -> list[tuple[str, float]]:
  """Returns (method, inner steps per second) rows."""
  task = tasks.get("digits_mlp", batch_size=128)
  opt = optax.adam(1e-2)
  step = _adam_step(task, opt)
  key = jax.random.PRNGKey(0)
  params = task.init(key)
  opt_state = opt.init(params)
  split = task.datasets.train
  step_keys = list(jax.random.split(key, steps))
  rows = []

  host_step = jax.jit(step)
  host_batches = iter(split)

  def python_host():
    p, s = params, opt_state
    for k in step_keys:
      p, s, loss = host_step(p, s, k, next(host_batches))
    jax.block_until_ready(loss)

  rows.append(("python loop, host numpy batches", steps, python_host))

  @jax.jit
  def device_step(p, s, k, split):
    return step(p, s, k, split.sample(k))

  def python_device():
    p, s = params, opt_state
    for k in step_keys:
      p, s, loss = device_step(p, s, k, split)
    jax.block_until_ready(loss)

  rows.append(("python loop, batches sampled on device", steps, python_device))

  def unroll(p, s, key, split):
    batches = split.stacked(key, steps)

    def body(carry, inputs):
      p, s = carry
      k, batch = inputs
      p, s, loss = step(p, s, k, batch)
      return (p, s), loss

    (p, s), losses = lax.scan(body, (p, s), (jax.random.split(key, steps), batches))
    return p, s, losses

  scanned = jax.jit(unroll)
  rows.append(("lax.scan, stacked batches (one call)", steps, lambda: (
      jax.block_until_ready(scanned(params, opt_state, key, split)))))

  def unroll_sampling(p, s, key, split):
    def body(carry, k):
      p, s = carry
      p, s, loss = step(p, s, k, split.sample(k))
      return (p, s), loss

    (p, s), losses = lax.scan(body, (p, s), jax.random.split(key, steps))
    return p, s, losses

  sampling = jax.jit(unroll_sampling)
  rows.append(("lax.scan, batch sampled in the scan body", steps, lambda: (
      jax.block_until_ready(sampling(params, opt_state, key, split)))))

  keys = jax.random.split(key, population)
  pop_params = jax.vmap(task.init)(keys)
  pop_state = jax.vmap(opt.init)(pop_params)
  vmapped = jax.jit(jax.vmap(unroll, in_axes=(0, 0, 0, None)))
  rows.append((f"lax.scan + vmap over {population} tasks (total)", population * steps,
               lambda: jax.block_until_ready(vmapped(pop_params, pop_state, keys, split))))
  times = interleaved_best([fn for _, _, fn in rows], repeats)
  return [(name, count / t) for (name, count, _), t in zip(rows, times)]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=1000)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--population", type=int, default=8)
  args = parser.parse_args()
  rows = run(args.steps, args.repeats, args.population)
  base = rows[0][1]
  print(f"Inner training speed: digits_mlp (MLP 64-32-10, batch 128), Adam; "
        f"{args.steps} steps per call, best of {args.repeats}; jax {jax.__version__} "
        f"on {jax.devices()[0].platform} ({platform.processor() or platform.machine()}).\n")
  print("| method | inner steps/s | us/step | vs. python loop |")
  print("| --- | ---: | ---: | ---: |")
  for name, rate in rows:
    print(f"| {name} | {rate:,.0f} | {1e6 / rate:.1f} | {rate / base:.1f}x |")


if __name__ == "__main__":
  np.set_printoptions(precision=3)
  main()
