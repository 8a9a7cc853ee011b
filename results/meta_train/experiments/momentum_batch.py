"""Does the momentum a task wants follow its gradient noise? Final losses by batch size.

  PYTHONPATH=.:results/meta_train/experiments python \
      results/meta_train/experiments/momentum_batch.py LABEL BATCH[,BATCH...] CHECKPOINT [CHECKPOINT ...]

LABEL is any suite's task (`cosine_probe.suite_task`); it is rebuilt at each batch
size with its other settings kept. Prints the mean training loss of the last 5% of
steps, seed 0, per batch size and checkpoint (e.g. the shipped optimizer and copies
with a shorter momentum, `meta_train.ship --decay_shift=first:S`).
"""

import sys

import learned_opt
from compare_mean_log import train
from cosine_probe import suite_task


def main(label: str, batches: str, paths: list[str]) -> None:
  print(f"| {label}: batch size | " + " | ".join(paths) + " |")
  print("|---|" + "---|" * len(paths))
  for batch in map(int, batches.split(",")):
    task, steps = suite_task(label, batch_size=batch)
    finals = [train(task, learned_opt.load(path), steps)[1][-steps // 20:].mean()
              for path in paths]
    print(f"| {batch} | " + " | ".join(f"{f:.3g}" for f in finals) + " |", flush=True)


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2], sys.argv[3:])
