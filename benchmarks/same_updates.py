r"""Are the shipped optimizers' updates bit-identical to those of another commit?

  python -m benchmarks.same_updates --against=COMMIT [--steps=20]

Runs `learned_opt.pretrained()` and `learned_opt.pretrained("executor",
algorithm=RULE, ...)` for the six rules of `configs/evaluate_imitation.py` for
`--steps` jitted float32 steps on the mixed pytrees of `tests/conftest.py`
(small, and big enough for Adafactor's factored path), once in this checkout and
once in a temporary git worktree of COMMIT, and compares every update leaf bit
for bit. Prints one row per optimizer and exits non-zero if any differs. Only
public names are used, so the same code runs against older commits.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent


def optimizers() -> dict:
  """label -> optax transformation, for every shipped optimizer compared."""
  import learned_opt  # pylint: disable=import-outside-toplevel
  from configs import evaluate_imitation  # pylint: disable=import-outside-toplevel
  txs = {"pretrained()": learned_opt.pretrained()}
  for rule, kwargs in evaluate_imitation.get_config().rules.items():
    txs[f"executor:{rule}"] = learned_opt.pretrained("executor", algorithm=rule, **kwargs)
  return txs


def run_updates(steps: int) -> dict[str, np.ndarray]:
  """'label/pytree/step/leaf' -> the update leaf, for every optimizer."""
  import jax  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from tests import conftest  # pylint: disable=import-outside-toplevel
  out = {}
  for label, tx in optimizers().items():
    for size, big in (("small", False), ("big", True)):
      params = conftest.mixed_params(jax.random.PRNGKey(0), big=big)
      state = tx.init(params)
      update = jax.jit(tx.update)
      for step in range(steps):
        grads = conftest.random_grads(jax.random.PRNGKey(1), params, step)
        updates, state = update(grads, state, params, value=1.0 / (1.0 + step))
        params = optax.apply_updates(params, updates)
        for i, leaf in enumerate(jax.tree.leaves(updates)):
          out[f"{label}/{size}/{step}/{i}"] = np.asarray(leaf)
  return out


def dump(path: str, steps: int) -> None:
  np.savez(path, **run_updates(steps))


def updates_at(commit: str, steps: int, scratch: pathlib.Path) -> dict[str, np.ndarray]:
  """Runs `dump` with the package of `commit` (a temporary worktree)."""
  tree = scratch / "tree"
  subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT,
                 check=True, capture_output=True)
  try:
    out = scratch / "updates.npz"
    env = dict(os.environ, PYTHONPATH=str(tree))
    subprocess.run([sys.executable, str(pathlib.Path(__file__).resolve()), "--dump", str(out),
                    f"--steps={steps}"], cwd=tree, env=env, check=True)
    with np.load(out) as data:
      return dict(data)
  finally:
    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
  return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def compare(ours: dict, theirs: dict) -> list[tuple[str, int, int]]:
  """(optimizer, leaves compared, leaves that differ) per optimizer."""
  if set(ours) != set(theirs):
    raise SystemExit(f"Different update structure: {sorted(set(ours) ^ set(theirs))[:5]}")
  rows: dict[str, list[int]] = {}
  for key in sorted(ours):
    label = key.split("/", 1)[0]
    row = rows.setdefault(label, [0, 0])
    row[0] += 1
    row[1] += not same_bits(ours[key], theirs[key])
  return [(label, n, bad) for label, (n, bad) in rows.items()]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--against", help="The commit to compare with.")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--dump", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.dump:
    sys.path.insert(0, os.getcwd())
    dump(args.dump, args.steps)
    return
  if not args.against:
    parser.error("--against=COMMIT is required")
  with tempfile.TemporaryDirectory() as scratch:
    theirs = updates_at(args.against, args.steps, pathlib.Path(scratch))
  ours = run_updates(args.steps)
  rows = compare(ours, theirs)
  print(f"| optimizer | update leaves ({args.steps} steps, 2 pytrees) | bit-identical to "
        f"{args.against} |\n|---|---|---|")
  for label, n, bad in rows:
    print(f"| {label} | {n} | {'yes' if not bad else f'no: {bad} differ'} |")
  if any(bad for _, _, bad in rows):
    sys.exit(1)


if __name__ == "__main__":
  main()
