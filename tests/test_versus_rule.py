"""meta_train.versus_rule: learned optimizers against Adam at one learning rate."""

import pytest

from meta_train import versus_rule


def _summary(learned_loss, diverged=0):
  adam = {"optimizer": "optax:adam", "sweep": {"lr=0.001": 0.5, "lr=0.01": 0.2},
          "final_train_loss": 0.2, "diverged_runs": 0}
  muon = {"optimizer": "optax:contrib.muon", "sweep": {"lr=0.01,adam_lr=0.01": 0.15},
          "final_train_loss": 0.15, "diverged_runs": 0}
  learned = {"optimizer": "pretrained", "final_train_loss": learned_loss,
             "diverged_runs": diverged}
  return {"baselines": ["optax:adam", "optax:contrib.muon"],
          "optimizers": ["optax:adam", "optax:contrib.muon", "pretrained"],
          "tasks": [{"task": "t", "target": 0.15, "rows": [adam, muon, learned]}]}


def test_counts_wins_against_the_fixed_rate():
  assert "on 1/1 tasks (100%)" in versus_rule.compare(_summary(0.4), 1e-3)
  assert "on 0/1 tasks (0%)" in versus_rule.compare(_summary(0.6), 1e-3)


def test_a_diverged_run_never_wins():
  assert "on 0/1 tasks" in versus_rule.compare(_summary(0.1, diverged=1), 1e-3)


def test_a_rate_that_was_not_swept_is_an_error():
  with pytest.raises(ValueError, match="no optax:adam lr=0.003"):
    versus_rule.compare(_summary(0.4), 3e-3)


def test_only_candidates_get_columns_and_the_best_tuned_rule_is_shown():
  text = versus_rule.compare(_summary(0.4), 1e-3)
  assert "| t | 0.5 | 0.15 | 0.4 | yes |" in text
  assert "optax:contrib.muon" not in text.splitlines()[0]
