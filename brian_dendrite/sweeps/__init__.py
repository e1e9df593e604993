"""Sweeps: a grid of models x seeds trained as independent tasks on Dask distributed.

``brian-dendrite sweep --models one_hidden,two_hidden --seeds 0,1 --kind rate
--epochs 60 --output sweep`` trains every (model, seed) pair of the grid in its
own output directory ``OUTPUT/<model>/seed<seed>/`` (``summary.json``,
``weights.npz`` and ``checkpoint.npz``) and gathers
the results into one table, ``OUTPUT/results.csv`` and ``OUTPUT/results.json``
(columns :data:`RESULT_COLUMNS`), beside the paper's test error for the models it
reports (:data:`brian_dendrite.paper.TEST_ERRORS`, specification section 3).

Where the tasks run
-------------------
Training is online SGD with batch size 1, so one run does not parallelise;
what scales out is independent runs (BRIAN2-NOTES.md, "GPUs and more than one
machine"). Every task is one call of :func:`run_task`, a plain function
executed in a Dask worker process, one task at a time per worker:

* by default a :class:`distributed.LocalCluster` with ``--workers`` (default:
  the number of cores available to this process) single-threaded worker
  *processes* (BLAS and OpenMP limited to one thread each by the Dask nanny;
  the nanny's ``MALLOC_TRIM_THRESHOLD_`` is undone in each task, see
  ``_undo_dask_malloc_settings`` in :mod:`._tasks`: it made the rate model 4x slower);
* with ``--scheduler ADDRESS`` a :class:`distributed.Client` is connected to an
  existing cluster instead, e.g. one started by ``dask-jobqueue`` on SLURM
  (``SLURMCluster(cores=1, processes=1, ...)``, or ``dask scheduler`` and
  ``dask worker --nthreads 1`` by hand). The workers need the same
  ``brian_dendrite`` installed, and the output directory and ``--data-dir``
  must be visible to them under the same paths (a shared file system). Model
  files given as paths are read here and sent to the workers as text; model
  names are resolved by the workers' installed package.

Reruns, resume and failures
---------------------------
* A task whose ``summary.json`` exists and matches the request (kind, seed,
  number of training examples, number of test images and the model's
  parameters) is not run again: its row is marked ``skipped`` and its numbers
  are read from the existing summary.
* A task continues from its ``checkpoint.npz``, so an interrupted sweep loses
  little when rerun with the same arguments: a spiking task
  (:meth:`~brian_dendrite.training.Trainer.resume`) at most one chunk, a rate
  task (:func:`~brian_dendrite.training.train_rate`, checkpointed at every test
  point) at most the examples since its last test.
* A task that raises is reported, not fatal: the traceback goes to
  ``OUTPUT/<model>/seed<seed>/error.txt`` and the first line of the error into
  the table (status ``failed``); the other tasks go on. A worker process that
  dies (killed, out of memory) is restarted by its Dask nanny and the scheduler
  runs its task again, which resumes from the task's checkpoint (tested with
  ``kill -9`` of the worker: the final weights equal an uninterrupted run's, bit
  for bit); a task whose workers die more often than Dask's
  ``distributed.scheduler.allowed-failures`` (default 3) is reported ``failed``
  by the client, with the same files.
* The table is rewritten after every finished task, so a long sweep can be
  followed in ``results.csv``; tasks not finished yet are ``pending``. Each task
  directory also has ``task.json`` (host, process, start, status, wall time) and
  ``task.log`` (the library's log messages during the task).

cpp_standalone builds
---------------------
Every spiking task with ``--target cpp_standalone`` compiles its own project,
under ``OUTPUT/<model>/seed<seed>/build/<host>/`` (the task sets
``BRIAN_DENDRITE_BUILD_CACHE`` there while it runs). A build takes tens of
seconds, negligible against a training run, and private builds avoid sharing a
project directory between processes and machines: the project is compiled with
``-march=native``, so a binary built on one node of a cluster may not run on
another, and a task resumed on another host gets a fresh build. (Processes can
share a build: :class:`~brian_dendrite.simulation.network.SpikingNetwork` writes its
results to a per-process directory, and ``brian-dendrite train`` uses the
shared cache.) A worker runs its tasks one after the other in the same
process; the Brian2 device is reset (``device.reinit()``) before and after each
task, because a standalone device can be built only once.

Exit status of :func:`run_sweep_from_args`: 0 if every task succeeded (trained
or skipped), 1 if any failed. Invalid arguments raise :class:`ValueError`.

The API
-------
:func:`run_sweep`
    Run a grid from Python; returns the table rows.
:func:`add_sweep_arguments`, :func:`run_sweep_from_args`
    The command line: the options (those of a training run,
    :func:`brian_dendrite.training.add_training_arguments`, and of the cluster)
    and the call they make.
:func:`run_task`
    One task, as a worker runs it.
:func:`task_directory`, :data:`RESULT_COLUMNS`, :func:`format_table`
    Where a task writes, the columns of the table, the table as text.
"""

from ._arguments import add_sweep_arguments, run_sweep_from_args
from ._runner import run_sweep, task_directory
from ._table import RESULT_COLUMNS, format_table
from ._tasks import run_task

__all__ = ["RESULT_COLUMNS", "add_sweep_arguments", "format_table", "run_sweep", "run_sweep_from_args", "run_task",
           "task_directory"]
