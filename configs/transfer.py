"""Transfer between rules ("one algorithm to rule them all"): does imitating SGD,
momentum and RMSProp first make Adam faster to learn than from scratch?

  python -m meta_train.transfer --config=configs/transfer.py --workdir=DIR

Both arms start from the SGD prior (the Adam prior would make the question moot)
and count imitation steps on Adam until its median update cosine reaches the
threshold.
"""

from configs import imitate


def get_config():
  config = imitate.get_config()
  config.executor.prior = "sgd"
  ranges = imitate.rule_ranges()
  config.rules = {k: ranges[k] for k in ("sgd", "rmsprop", "adam")}
  config.pretrain_steps = 300        # SGD (with and without momentum) and RMSProp only
  config.adam_steps = 400            # then Adam is added (both arms count these)
  config.cosine_threshold = 0.98
  config.num_structures = 2
  config.unroll = 20
  config.batch_size = 6
  config.log_every = 10
  config.checkpoint_every = 100
  return config
