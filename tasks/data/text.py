"""A byte-level text corpus from text every Python installation carries.

The corpus is the standard library's own top-level `.py` sources, read in
sorted file order up to `max_bytes`. Where an installation ships no sources
(some embedded builds), the docstrings of the builtins are used instead.
Tokens are raw bytes (vocabulary 256) or, at the character level, the
characters of `CHARSET` (printable ASCII, tab and newline) with one more token
for every other character (vocabulary `CHAR_VOCAB_SIZE`).

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
CHARSET = "\t\n" + "".join(chr(c) for c in range(32, 127))
CHAR_VOCAB_SIZE = len(CHARSET) + 1   # the last token: any other character
LEVELS = ("byte", "char")


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


def split_blocks(data: np.ndarray, seed: int = 0,
                 block_size: int = 4096) -> dict[str, np.ndarray]:
  """Token streams for 'train', 'valid' and 'test' from one stream `data`.

  `data` is cut into blocks of `block_size`; a permutation seeded by `seed`
  sends max(1, 5%) of the blocks to valid, as many to test and the rest to train,
  each split keeping its blocks in stream order.
  """
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


@functools.lru_cache(maxsize=None)
def load_text(max_bytes: int = 1 << 20, seed: int = 0,
              block_size: int = 4096) -> dict[str, np.ndarray]:
  """Byte streams `uint8[n]` of the corpus for 'train', 'valid' and 'test'.

  Args:
    max_bytes: size of the corpus before splitting.
    seed: seed of the block-to-split assignment (see `split_blocks`).
    block_size: bytes per block.
  """
  return split_blocks(np.frombuffer(corpus(max_bytes), np.uint8), seed, block_size)


_CHAR_TABLE = np.full(256, len(CHARSET), np.uint8)
_CHAR_TABLE[[ord(c) for c in CHARSET]] = np.arange(len(CHARSET), dtype=np.uint8)


def encode_chars(text: str | bytes) -> np.ndarray:
  """Characters of `text` as tokens: index in `CHARSET`, or `len(CHARSET)` for others.

  Bytes are decoded as UTF-8 (invalid sequences become a replacement character,
  so one other-character token).
  """
  if isinstance(text, bytes):
    text = text.decode("utf-8", "replace")
  codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
  out = np.full(codes.shape, len(CHARSET), np.uint8)
  ascii_ = codes < 256
  out[ascii_] = _CHAR_TABLE[codes[ascii_]]
  return out


def decode_chars(tokens) -> str:
  """Character tokens back to text (the other-character token as U+FFFD)."""
  table = CHARSET + "\ufffd"
  return "".join(table[int(t)] for t in np.asarray(tokens).ravel())


def vocab_size(level: str) -> int:
  """Tokens of a level: 256 bytes, or `CHAR_VOCAB_SIZE` characters."""
  if level not in LEVELS:
    raise ValueError(f"Unknown text level {level!r}; use one of {LEVELS}.")
  return VOCAB_SIZE if level == "byte" else CHAR_VOCAB_SIZE


@functools.lru_cache(maxsize=8)
def streams(level: str = "byte", max_bytes: int = 1 << 20, seed: int = 0,
            text: str | None = None) -> dict[str, np.ndarray]:
  """Train/valid/test token streams of the stdlib corpus, or of `text` when given.

  Args:
    level: "byte" (tokens are bytes) or "char" (see `encode_chars`).
    max_bytes: corpus size (ignored with `text`).
    seed: seed of the block-to-split assignment.
    text: another text to split instead of the corpus, cut into 40 blocks (at
      least 16 tokens each) so that each held-out split gets two of them.
  """
  vocab_size(level)
  if text is None:
    data = load_text(max_bytes, seed)
    if level == "byte":
      return data
    return {k: encode_chars(v.tobytes()) for k, v in data.items()}
  tokens = encode(text) if level == "byte" else encode_chars(text)
  return split_blocks(tokens, seed, max(16, len(tokens) // 40))


def encode(text: str | bytes) -> np.ndarray:
  """Bytes of `text` (UTF-8) as a uint8 token stream."""
  if isinstance(text, str):
    text = text.encode("utf-8")
  return np.frombuffer(text, np.uint8).copy()


def decode(tokens) -> str:
  """Tokens back to text (invalid UTF-8 replaced)."""
  return bytes(np.asarray(tokens, np.uint8).tolist()).decode("utf-8", "replace")

