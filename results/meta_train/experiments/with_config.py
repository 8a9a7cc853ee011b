"""Copies a checkpoint with ExecutorConfig fields replaced (same weights).

  python results/meta_train/experiments/with_config.py SOURCE_DIR TARGET_DIR FIELD=VALUE ...

e.g. `step_size_adaptation=0.3 step_size_target=-0.05`: the copy loads with
`learned_opt.load(TARGET_DIR)` and can be evaluated with `checkpoint:TARGET_DIR`.
The provenance records the source and the replaced fields.
"""

import ast
import dataclasses
import sys

from learned_opt import checkpoint


def main(source: str, target: str, *pairs: str) -> None:
  weights, config, meta = checkpoint.restore(source)
  fields = {}
  for item in pairs:
    key, _, value = item.partition("=")
    fields[key] = ast.literal_eval(value)
  config = dataclasses.replace(config, **fields)
  provenance = dict(meta.get("provenance") or {},
                    derived_from={"checkpoint": source, "fields": fields})
  checkpoint.save(target, weights, config, step=0, default_rule=meta.get("default_rule"),
                  provenance=provenance)
  print(f"wrote {target} with {fields}")


if __name__ == "__main__":
  main(*sys.argv[1:])
