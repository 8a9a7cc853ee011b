"""Copies a checkpoint with ExecutorConfig fields replaced (and weights edited).

  python results/meta_train/experiments/with_config.py SOURCE_DIR TARGET_DIR FIELD=VALUE ...

e.g. `step_size_adaptation=0.3 step_size_target=-0.05`: the copy loads with
`learned_opt.load(TARGET_DIR)` and can be evaluated with `checkpoint:TARGET_DIR`.
Two pseudo-fields edit the weights: `decay_shift=(K, DELTA)` (K: 0 first moment,
1 second moment, 2 row/column averages) and `zero_module=NAME`; see
`python -m meta_train.ship --help`, which this calls, for what they do. The
provenance records the source and the edits.
"""

import ast
import sys

from learned_opt.executor import network
from meta_train import ship


def main(source: str, target: str, *pairs: str) -> None:
  sets, shifts, zeros = [], [], []
  for item in pairs:
    key, _, value = item.partition("=")
    if key == "decay_shift":
      k, delta = ast.literal_eval(value)
      shifts.append(f"{network.RUNNING_AVERAGES[k]}:{delta}")
    elif key == "zero_module":
      zeros.append(value)
    else:
      sets.append(item)
  edits = ship.parse_edits(sets, shifts, zeros)
  print("wrote", ship.ship(source, "", target_root=target, edits=edits), edits.as_json())


if __name__ == "__main__":
  main(*sys.argv[1:])
