"""A byte-level text corpus from text every Python installation carries.

The corpus is the standard library's own top-level `.py` sources, read in
sorted file order up to `max_bytes`. Where an installation ships no sources
(some embedded builds), the docstrings of the builtins are used instead.
Tokens are raw bytes (vocabulary 256).

The corpus is cut into blocks; a seeded permutation sends 5% of the blocks to
valid, 5% to test and the rest to train (each split keeps its blocks in
corpus order), so every split sees every kind of file.
"""

import builtins
import functools
import pathlib
import sysconfig

import numpy as np

VOCAB_SIZE = 256


def _stdlib_sources(max_bytes: int) -> bytes:
  root = pathlib.Path(sysconfig.get_paths()["stdlib"])
  parts, total = [], 0
  for path in sorted(root.glob("*.py")):
    try:
      data = path.read_bytes()
    except OSError:
      continue
    parts.append(data)
    total += len(data)
    if total >= max_bytes:
      break
  return b"\n".join(parts)[:max_bytes]


def _builtin_docs() -> bytes:
  docs = [getattr(builtins, name).__doc__ or "" for name in sorted(dir(builtins))]
  return "\n\n".join(docs).encode("utf-8")


@functools.lru_cache(maxsize=None)
def corpus(max_bytes: int = 1 << 20) -> bytes:
  """The raw corpus: stdlib sources (or builtin docstrings as a fallback)."""
  text = _stdlib_sources(max_bytes)
  if len(text) < 64 * 1024:
    text = (text + b"\n" + _builtin_docs())[:max_bytes]
  if len(text) < 4096:
    raise RuntimeError("This Python installation carries neither its standard "
                       "library sources nor builtin docstrings (python -OO?).")
  return text


@functools.lru_cache(maxsize=None)
def load_text(max_bytes: int = 1 << 20, seed: int = 0,
              block_size: int = 4096) -> dict[str, np.ndarray]:
  """Byte streams `uint8[n]` for 'train', 'valid' and 'test'.

  Args:
    max_bytes: size of the corpus before splitting.
    seed: seed of the block-to-split assignment.
    block_size: bytes per block.
  """
  data = np.frombuffer(corpus(max_bytes), np.uint8)
  blocks = [data[i:i + block_size] for i in range(0, len(data), block_size)]
  perm = np.random.default_rng(seed).permutation(len(blocks))
  n_hold = max(1, len(blocks) // 20)
  owner = np.zeros(len(blocks), np.int64)  # 0 train, 1 valid, 2 test
  owner[perm[:n_hold]] = 1
  owner[perm[n_hold:2 * n_hold]] = 2
  out = {name: np.concatenate([b for b, o in zip(blocks, owner) if o == i])
         for i, name in enumerate(("train", "valid", "test"))}
  for v in out.values():
    v.setflags(write=False)
  return out


def encode(text: str | bytes) -> np.ndarray:
  """Bytes of `text` (UTF-8) as a uint8 token stream."""
  if isinstance(text, str):
    text = text.encode("utf-8")
  return np.frombuffer(text, np.uint8).copy()


def decode(tokens) -> str:
  """Tokens back to text (invalid UTF-8 replaced)."""
  return bytes(np.asarray(tokens, np.uint8).tolist()).decode("utf-8", "replace")

