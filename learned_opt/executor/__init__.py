"""The neural executor: encode-process-decode over the parameter graph.

`network` holds the learned (haiku) pieces, `step` the fused per-edge program,
`optimizer` the optax-facing wrapper, `conditioning` the rule features.
"""

from learned_opt.executor.network import ExecutorConfig, build, init_weights
from learned_opt.executor.optimizer import ExecutorOptimizer, graph_of
from learned_opt.executor.step import ExecutorState, StepOutput, executor_step, init_state

__all__ = ["ExecutorConfig", "ExecutorOptimizer", "ExecutorState", "StepOutput", "build",
           "executor_step", "graph_of", "init_state", "init_weights"]
