"""Progress bars of the long commands: a tqdm bar on stderr, or an object that does nothing.

:func:`progress_bar` returns a :class:`tqdm.tqdm` bar (count, rate and ETA) on
``sys.stderr`` when progress is wanted and a :class:`NullBar` otherwise, so that
callers update a bar without testing whether there is one. On a terminal the bar
is redrawn up to ten times a second; when stderr is a file or a pipe (a CI log, a
batch job) at most every :data:`LOG_INTERVAL` seconds, so that logs stay short
(the first and the last state are always written). tqdm's own environment
variables apply as well (``TQDM_DISABLE=1`` turns every bar off).

:class:`BrianProgress` is a Brian2 ``report`` callable (``Network.run(report=...)``)
that advances a bar while one or more ``run()`` calls complete: it only reads
the completed fraction and touches no random number, so results are unchanged.
"""

from __future__ import annotations

import sys

__all__ = ["LOG_INTERVAL", "BrianProgress", "NullBar", "progress_bar", "write_above"]

#: Seconds between two redraws of a bar when stderr is not a terminal.
LOG_INTERVAL = 30.0


class NullBar:
    """What the package uses of a tqdm bar, doing nothing: progress is off.

    ``n`` counts the updates all the same, so code may read it like tqdm's.
    """

    def __init__(self, total=None, initial=0):
        self.total = total
        self.n = initial

    def update(self, n=1) -> None:
        self.n += n

    def set_postfix_str(self, s="", refresh=True) -> None:
        pass

    def set_description_str(self, desc=None, refresh=True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(total, desc: str, unit: str = "it", *, enabled: bool = True, initial: int = 0):
    """A tqdm bar on stderr with an ETA, or a :class:`NullBar` if ``enabled`` is false.

    Parameters
    ----------
    total : int or None
        The count at completion (None: no ETA, only a rate).
    desc : str
        Text before the bar (e.g. ``"training"``).
    unit : str
        What is counted (e.g. ``"example"``).
    enabled : bool
        False (``--quiet``, or ``progress=False`` in a library call): nothing is shown.
    initial : int
        Count already done (a resumed run).

    Returns
    -------
    tqdm.tqdm or NullBar
        Use ``update``, ``set_postfix_str`` and ``close`` (or ``with``).
    """
    if not enabled:
        return NullBar(total, initial)
    from tqdm import tqdm

    stream = sys.stderr  # looked up now: a redirected or captured stderr is honoured
    terminal = _isatty(stream)
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=stream, dynamic_ncols=terminal,
                mininterval=0.1 if terminal else LOG_INTERVAL, smoothing=0.1)


def write_above(bar, text: str, echo=print) -> None:
    """``echo(text)`` (a line of output) without breaking ``bar``: a tqdm bar is cleared and redrawn around it."""
    if echo is None:
        return
    if isinstance(bar, NullBar):
        echo(text)
        return
    from tqdm import tqdm

    with tqdm.external_write_mode():
        echo(text)


class BrianProgress:
    """A Brian2 ``report`` callable that advances ``bar`` as consecutive ``run()`` calls complete.

    Parameters
    ----------
    bar : tqdm.tqdm or NullBar
        Advanced with ``update``; only this object's own increments are counted.
    sizes : sequence of int
        What each run is worth on the bar, in the order of the runs (e.g. the
        examples of each chunk). A run's share is advanced by its completed
        fraction; a new run is recognised by its completed fraction starting again.

    Notes
    -----
    Brian2 calls the callable at the start of a run (fraction 0), every
    ``report_period`` (10 s by default) and at the end (fraction 1). The
    standalone device reports nothing; :meth:`finish` then moves the bar to the end.
    """

    def __init__(self, bar, sizes):
        self.bar = bar
        self.sizes = [int(s) for s in sizes]
        self._run = -1
        self._last = 1.0
        self._done = 0  # the bar's increments made by this object

    def __call__(self, elapsed, completed, start, duration) -> None:
        completed = min(max(float(completed), 0.0), 1.0)
        if completed < self._last and self._run < len(self.sizes) - 1:
            self._run += 1  # a new run() started
        self._last = completed
        if self._run < 0:
            return
        self._advance(sum(self.sizes[: self._run]) + int(self.sizes[self._run] * completed))

    def finish(self) -> None:
        """Advance the bar to the sum of ``sizes`` (the runs are over)."""
        self._advance(sum(self.sizes))

    def _advance(self, position: int) -> None:
        if position > self._done:
            self.bar.update(position - self._done)
            self._done = position
