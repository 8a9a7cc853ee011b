"""The neural executor: encode -> process -> decode over the parameter graph.

`config` holds what an executor is (ExecutorConfig: the architecture; HandSet: what
was set by hand), `network` the learned (haiku) pieces, `encode`, `processors` and
`decode` the three rooms of a step and `step` the step itself, `pins` the per-rule
table, `optimizer` the optax-facing wrapper, `conditioning` the rule features.
"""

from learned_opt.executor import processors
from learned_opt.executor.config import ExecutorConfig, HandSet
from learned_opt.executor.network import build, init_weights
from learned_opt.executor.optimizer import ExecutorOptimizer, graph_of
from learned_opt.executor.step import ExecutorState, StepOutput, executor_step, init_state

__all__ = ["ExecutorConfig", "ExecutorOptimizer", "ExecutorState", "HandSet", "StepOutput",
           "build", "executor_step", "graph_of", "init_state", "init_weights", "processors"]
