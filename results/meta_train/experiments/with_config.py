"""Copies a checkpoint with ExecutorConfig fields replaced and, optionally, raw decays shifted.

  python results/meta_train/experiments/with_config.py SOURCE_DIR TARGET_DIR FIELD=VALUE ...

e.g. `step_size_adaptation=0.3 step_size_target=-0.05`: the copy loads with
`learned_opt.load(TARGET_DIR)` and can be evaluated with `checkpoint:TARGET_DIR`.
Two pseudo-fields edit the weights instead of the config:

- `decay_shift=(k, delta)` adds delta to the hypernet's output bias of running
  average k's raw decay (0: first moment, 1: second moment, 2: row/column
  averages). With the default 'softplus' form, -log(1 - a) grows by about -delta
  where a is near 1: delta = -3 takes a = 0.98 to about 0.999, keeping how the
  decay moves with the clock and the rule.
- `zero_module=NAME` sets a haiku module's parameters to zero (e.g.
  `step_size_head`: the learned per-tensor step-size offsets, so
  `step_size_adaptation` and `step_size_target` apply as they are).

The provenance records the source and the replaced fields.
"""

import ast
import dataclasses
import sys

import jax
import jax.numpy as jnp

from learned_opt import checkpoint

HYPERNET_BIAS = ("hypernet_linear", "b")


def main(source: str, target: str, *pairs: str) -> None:
  weights, config, meta = checkpoint.restore(source)
  weights = jax.tree.map(jnp.asarray, weights)
  fields, edits = {}, {}
  for item in pairs:
    key, _, value = item.partition("=")
    value = ast.literal_eval(value) if key != "zero_module" else value
    if key == "decay_shift":
      k, delta = value
      module, name = HYPERNET_BIAS
      weights[module][name] = weights[module][name].at[k].add(delta)
      edits[key] = list(value)
    elif key == "zero_module":
      if value not in weights:
        raise KeyError(f"{source} has no module {value!r}; it has {sorted(weights)}.")
      weights[value] = jax.tree.map(jnp.zeros_like, weights[value])
      edits.setdefault(key, []).append(value)
    else:
      fields[key] = value
  config = dataclasses.replace(config, **fields)
  provenance = dict(meta.get("provenance") or {},
                    derived_from={"checkpoint": source, "fields": fields, "weight_edits": edits})
  step = int((meta.get("provenance") or {}).get("step") or 0)   # the source's step
  checkpoint.save(target, weights, config, step=step, default_rule=meta.get("default_rule"),
                  provenance=provenance)
  print(f"wrote {target} with {fields} {edits}")


if __name__ == "__main__":
  main(*sys.argv[1:])
