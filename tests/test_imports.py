"""What importing and using the package costs: no optional dependency, one version."""

import importlib.metadata
import subprocess
import sys
import textwrap

import pytest

import learned_opt
from tasks.data import arrays

OPTIONAL = ("matplotlib", "sklearn", "mnist1d", "tensorflow", "tensorflow_datasets",
            "tasks", "meta_train")


def test_pretrained_loads_no_optional_dependency():
  code = textwrap.dedent("""
      import sys
      import learned_opt
      learned_opt.pretrained()
      learned_opt.pretrained("executor", algorithm="adam", learning_rate=1e-3)
      print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
  """)
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        check=True, timeout=300)
  loaded = set(done.stdout.split())
  assert "learned_opt" in loaded and "optax" in loaded
  assert not loaded & set(OPTIONAL), sorted(loaded & set(OPTIONAL))


def test_a_missing_data_dependency_says_what_to_install(monkeypatch):
  monkeypatch.setitem(sys.modules, "sklearn", None)   # import sklearn now fails
  monkeypatch.delitem(sys.modules, "sklearn.datasets", raising=False)
  with pytest.raises(ImportError, match=r"pip install 'learned-opt\[data\]'"):
    arrays.optional_import("sklearn.datasets", "scikit-learn")


def test_one_version():
  assert importlib.metadata.version("learned-opt") == learned_opt.__version__
