"""Sweeps: independent training runs (models x seeds) on Dask distributed."""

from .sweep import (
    RESULT_COLUMNS,
    add_sweep_arguments,
    run_sweep,
    run_sweep_from_args,
    run_task,
    task_directory,
)

__all__ = ["RESULT_COLUMNS", "add_sweep_arguments", "run_sweep", "run_sweep_from_args", "run_task", "task_directory"]
