"""Meta-training: imitation of the classic rules, meta-training beyond them, evaluation."""
