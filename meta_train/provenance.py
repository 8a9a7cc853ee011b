"""What a checkpoint records about the run that wrote it: command line and code version.

`run_record()` is the part of a checkpoint's provenance that every binary writes:

  {"command": "python -m meta_train.train --config=configs/meta_train.py --workdir=runs/a",
   "git": {"commit": "<40 hex digits>", "dirty": False}}

The command is the process's real command line (a module run with `python -m`
is written that way). `git` describes the checkout the package was imported
from: its HEAD commit and whether tracked files differ from it; both are
"unknown" outside a git checkout (an installed wheel) or without git.
"""

from __future__ import annotations

import functools
import pathlib
import shlex
import subprocess
import sys
from typing import Any

UNKNOWN = "unknown"
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def command_line(argv: list[str] | None = None) -> str:
  """The command that started this process, as a shell line.

  Args:
    argv: the arguments (default `sys.argv`); `argv[0]` is replaced by
      `python -m MODULE` when the main module was run as a module.
  """
  argv = list(sys.argv if argv is None else argv)
  main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
  if main_spec is not None and main_spec.name:
    name = main_spec.name.removesuffix(".__main__")
    head = ["python", "-m", name]
  else:
    head = ["python", argv[0]] if argv else ["python"]
  return shlex.join(head + argv[1:])


def _git(*args: str, cwd: pathlib.Path = REPO_ROOT) -> str | None:
  try:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=30, check=False)
  except (OSError, subprocess.SubprocessError):
    return None
  return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def git_state(repo: pathlib.Path = REPO_ROOT) -> dict[str, Any]:
  """{'commit': HEAD's hash, 'dirty': tracked files differ from HEAD}, or "unknown"s.

  Read once per process: a run records the code it started with.
  """
  if not (repo / ".git").exists():
    return {"commit": UNKNOWN, "dirty": UNKNOWN}
  commit = _git("rev-parse", "HEAD", cwd=repo)
  status = _git("status", "--porcelain", "--untracked-files=no", cwd=repo)
  return {"commit": commit or UNKNOWN,
          "dirty": UNKNOWN if status is None else bool(status)}


def run_record() -> dict[str, Any]:
  """{'command': the real command line, 'git': git_state()} for a checkpoint."""
  return {"command": command_line(), "git": dict(git_state())}
