"""Small pytree helpers shared by the graph and the rules: readable leaf paths and checks."""

from __future__ import annotations

from typing import Any

import jax

PyTree = Any


def key_to_str(key: Any) -> str:
  """Renders one path entry (dict key, sequence index, attribute) as plain text."""
  for attr in ("key", "idx", "name"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def path_to_str(path: tuple[Any, ...]) -> str:
  """Renders a jax key path as 'a/b/0/w' (the root is '<root>')."""
  return "/".join(key_to_str(k) for k in path) or "<root>"


def leaf_paths(tree: PyTree) -> list[str]:
  """The '/'-joined path of every leaf, in `jax.tree.leaves` order (None leaves skipped)."""
  return [path_to_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def check_same_structure(tree: PyTree, reference: PyTree, what: str = "grads",
                         reference_name: str = "params") -> None:
  """Raises ValueError naming the first path where `tree` and `reference` differ.

  Args:
    tree: the pytree to check (for example the gradients).
    reference: the pytree it must match (for example the parameters).
    what: how to call `tree` in the error message.
    reference_name: how to call `reference` in the error message.
  """
  if jax.tree.structure(tree) == jax.tree.structure(reference):
    return
  left = dict((path_to_str(p), None) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0])
  right = dict((path_to_str(p), None) for p, _ in
               jax.tree_util.tree_flatten_with_path(reference)[0])
  for l, r in zip(left, right):
    if l != r:
      raise ValueError(
          f"{what} and {reference_name} have different structures: first difference at "
          f"leaf '{l}' in {what} against '{r}' in {reference_name}. Pass {what} with "
          f"exactly the structure of {reference_name}.")
  extra = [k for k in left if k not in right] or [k for k in right if k not in left]
  raise ValueError(
      f"{what} and {reference_name} have different structures (container types or "
      f"leaf counts {len(left)} vs {len(right)} differ; first unmatched leaf: "
      f"'{extra[0] if extra else '<container>'}'). Pass {what} with exactly the "
      f"structure of {reference_name}.")
