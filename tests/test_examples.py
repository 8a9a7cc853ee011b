"""Each script in examples/ runs as a user would run it (a subprocess, few steps)."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> str:
  """stdout of `python examples/NAME ARGS` on one CPU device (as a user runs it)."""
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # conftest's 4 devices
  env["JAX_PLATFORMS"] = "cpu"
  result = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def train_losses(stdout: str) -> list[float]:
  return [float(x) for x in re.findall(r"train loss (\S+)", stdout)]


def test_train_haiku_fits_digits():
  out = run_example("train_haiku.py", "--steps", "40")
  losses = train_losses(out)
  assert len(losses) >= 2 and losses[-1] < 0.5 * losses[0], out
  assert float(re.search(r"valid accuracy (\S+)", out).group(1)) > 0.8, out


def test_train_flax_nnx_fits_digits():
  out = run_example("train_flax_nnx.py", "--steps", "40")
  losses = train_losses(out)
  assert len(losses) >= 2 and losses[-1] < 0.5 * losses[0], out
  assert float(re.search(r"valid accuracy (\S+)", out).group(1)) > 0.8, out


@pytest.mark.slow   # a 50 s meta-training run: in CI's slow subset (.ci/run)
def test_meta_train_small_writes_a_loadable_optimizer_that_trains(tmp_path):
  workdir = tmp_path / "run"
  out = run_example("meta_train_small.py", "--outer_steps", "2", "--workdir", str(workdir))
  assert "step 2/2 meta-loss" in out, out
  assert (workdir / "checkpoints" / "2").is_dir()
  # The script trained digits_mlp with learned_opt.load(workdir/checkpoints).
  losses = train_losses(out)
  assert len(losses) >= 2 and losses[-1] < 0.5 * losses[0], out
