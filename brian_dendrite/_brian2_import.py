"""Import Brian2 without the modules it loads only for interactive use (internal).

``import brian2`` runs ``from pylab import *`` (matplotlib's pyplot, about a third
of Brian2's import time), imports ``matplotlib`` to look for a bug of its version
1.3.1 and imports ``pytest`` for ``brian2.test()``. Each of these imports sits in a
``try: ... except ImportError`` of Brian2's, whose fallback is Brian2's own path for
a machine without the module: the numpy names instead of pylab's, no matplotlib
workaround, a ``brian2.test()`` that cannot run. No simulation uses them.

:func:`import_brian2` imports Brian2 with those three modules hidden (a ``None``
entry in ``sys.modules`` makes an import raise ``ImportError``) and then removes the
entries again, so that the process can import them normally afterwards. It does
nothing if Brian2 is already imported; a module that is already imported is not
hidden. The one visible difference: ``from brian2 import *`` does not bring
pylab's plotting names (``plot``, ``show``, ...); import ``brian2`` (or ``pylab``)
before ``brian_dendrite`` to have them, or set ``BRIAN_DENDRITE_BRIAN2_PYLAB=1``.

``brian_dendrite/__init__.py`` calls it before importing anything that imports
Brian2, so the training path imports neither matplotlib nor pytest.

Brian2 logs while it is imported: its cache-size notice (INFO, on every import once
its Cython cache is larger than ``codegen.max_cache_dir_size``) goes to the console.
The ``brian-dendrite`` command's ``--quiet`` promises an empty stderr, but the
package (and so Brian2) is imported before the command line is parsed. So when this
process is the command with ``--quiet`` (:func:`cli_quiet_requested`), the records
below WARNING that Brian2's top-level logger emits during the import are held back
from the console and passed to Brian2's other handlers (its log file) afterwards.
Warnings and errors still reach the console. While the quiet command runs it sets
:data:`QUIET_ENV`, so the processes it starts (a sweep's Dask workers) do the same
and keep their console at WARNING (:func:`quiet_console`).
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["HIDDEN_FROM_BRIAN2", "QUIET_ENV", "cli_quiet_requested", "import_brian2", "quiet_console"]

#: Modules that Brian2 imports only for interactive use or its own test suite.
HIDDEN_FROM_BRIAN2 = ("pylab", "matplotlib", "pytest")


#: Set to "1" by ``brian-dendrite ... --quiet`` while the command runs, so that the processes it
#: starts (a sweep's Dask workers) are quiet too: they hold back Brian2's import-time notices and
#: show warnings and errors only (their task logs keep everything).
QUIET_ENV = "BRIAN_DENDRITE_QUIET"

#: The command's names: the console script, and the module run with ``python -m``.
CLI_PROGRAM = "brian-dendrite"
CLI_MODULES = ("brian_dendrite", "brian_dendrite.cli")


def cli_quiet_requested(argv=None, orig_argv=None) -> bool:
    """Whether this process is the ``brian-dendrite`` command run with ``--quiet``.

    ``argv`` and ``orig_argv`` default to :data:`sys.argv` and :data:`sys.orig_argv`.
    The console script is recognised by the name of ``argv[0]``; ``python -m
    brian_dendrite.cli`` by the interpreter's own arguments, since ``sys.argv[0]`` is
    still ``"-m"`` while the package is imported. Without arguments, also true in a
    process started by the quiet command (:data:`QUIET_ENV`).
    """
    if argv is None and os.environ.get(QUIET_ENV) == "1":  # a process started by the quiet command
        return True
    argv = list(sys.argv if argv is None else argv)
    orig_argv = list(getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv)
    if argv and os.path.basename(argv[0]).startswith(CLI_PROGRAM):
        args = argv[1:]
    elif "-m" in orig_argv[:-1] and orig_argv[orig_argv.index("-m") + 1] in CLI_MODULES:
        args = orig_argv[orig_argv.index("-m") + 2:]
    else:
        return False
    return "--quiet" in args[: args.index("--")] if "--" in args else "--quiet" in args


#: The loggers of Brian2's import-time records: Brian2 names a module's logger
#: ``"brian2." + __name__``, so its package module logs (the cache check) as ``brian2.brian2``.
IMPORT_LOGGERS = ("brian2", "brian2.brian2")


class _HoldBelowWarning(logging.Filter):
    """A logger filter that keeps records below WARNING out of the handlers, in a list."""

    def __init__(self):
        super().__init__()
        self.records = []

    def filter(self, record):
        if record.levelno >= logging.WARNING:
            return True
        self.records.append(record)
        return False


def _import():
    """``import brian2``; under ``brian-dendrite ... --quiet`` with its top-level INFO/DEBUG
    records kept off the console."""
    if not cli_quiet_requested():
        import brian2

        return brian2
    held = _HoldBelowWarning()
    loggers = [logging.getLogger(name) for name in IMPORT_LOGGERS]
    for logger in loggers:
        logger.addFilter(held)
    try:
        import brian2
    finally:
        for logger in loggers:
            logger.removeFilter(held)
    from brian2.utils.logger import BrianLogger

    for record in held.records:  # the log file still gets them
        for handler in logging.getLogger("brian2").handlers:
            if handler is not BrianLogger.console_handler and record.levelno >= handler.level:
                handler.handle(record)
    return brian2


def import_brian2():
    """Import and return ``brian2``, hiding :data:`HIDDEN_FROM_BRIAN2` while it is imported
    (and Brian2's import-time notices from the console under ``brian-dendrite ... --quiet``)."""
    if "brian2" in sys.modules:
        return sys.modules["brian2"]
    if os.environ.get("BRIAN_DENDRITE_BRIAN2_PYLAB", "") not in ("", "0"):
        return _import()
    hidden = [name for name in HIDDEN_FROM_BRIAN2 if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # import raises ImportError
    try:
        brian2 = _import()
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return brian2


def quiet_console():
    """``--quiet``: Brian2's console handler (which shows this package's log too) keeps warnings
    and errors only, and :data:`QUIET_ENV` is set for the processes started meanwhile; returns
    the function that restores both."""
    from brian2.utils.logger import BrianLogger

    handler, env = BrianLogger.console_handler, os.environ.get(QUIET_ENV)
    level = None if handler is None else handler.level
    if handler is not None:
        handler.setLevel(max(level, logging.WARNING))
    os.environ[QUIET_ENV] = "1"

    def restore():
        if handler is not None:
            handler.setLevel(level)
        if env is None:
            os.environ.pop(QUIET_ENV, None)
        else:
            os.environ[QUIET_ENV] = env

    return restore
