"""The user's phases as the ``sched_*`` ``TimedArray`` s the neuron groups read."""

from __future__ import annotations

import numbers

import numpy as np
from brian2 import TimedArray
from brian2.units.fundamentalunits import Quantity

from ..model import PHASE_NAMES, CellParameters, PhaseSchedule, ProtocolParameters

_KINDS = ("forward", "target", "test", "idle")
_SCHEDULE_KEYS = ("sched_phase", "sched_steps_left", "sched_window_steps", "sched_example", "sched_label")


def phase_arrays(phases, cell: CellParameters, protocol: ProtocolParameters, name: str = "phases") -> dict:
    """The ``sched_*`` TimedArrays for ``phases`` (see :func:`brian_dendrite.cells.phase_schedule`)."""
    if isinstance(phases, dict):
        missing = [k for k in _SCHEDULE_KEYS if not isinstance(phases.get(k), TimedArray)]
        if missing:
            raise ValueError(f"{name}: a dict of schedule arrays needs TimedArrays {', '.join(missing)}")
        return {k: phases[k] for k in _SCHEDULE_KEYS}
    return phase_schedule(phases, cell, protocol, name=name).timed_arrays()


def phase_schedule(phases, cell: CellParameters | None = None, protocol: ProtocolParameters | None = None,
                   name: str = "phases") -> PhaseSchedule:
    """A :class:`~brian_dendrite.model.PhaseSchedule` from the forms the factories accept.

    ``None`` gives one endless idle phase; a list of ``(kind, duration)`` or
    ``(kind, duration, label)``, a ``TimedArray`` of phase codes or a
    ``PhaseSchedule`` give their phases followed by an endless idle phase (so that no
    phase-end, plateau or learning event fires after the last phase).
    """
    cell = cell or CellParameters()
    protocol = protocol or ProtocolParameters()
    if phases is None:
        rows = []
    elif isinstance(phases, PhaseSchedule):
        if float(phases.dt / cell.dt) != 1.0:
            raise ValueError(f"{name}: the schedule's dt = {phases.dt} differs from the cell's dt = {cell.dt}")
        rows = [(PHASE_NAMES[int(c)], int(n), int(ex), int(lab)) for _, n, c, ex, lab in phases.phase_table]
    elif isinstance(phases, TimedArray):
        rows = _rows_from_codes(phases, cell, name)
    elif isinstance(phases, list | tuple):
        rows = [_row(k, item, cell, name) for k, item in enumerate(phases)]
    else:
        raise TypeError(f"{name}: expected None, a list of (kind, duration[, label]) tuples, a TimedArray of "
                        f"phase codes or a PhaseSchedule, got {type(phases).__name__}")
    rows.append(("idle", 1, 0, 0))
    try:
        return PhaseSchedule.from_phases(rows, protocol, dt=cell.dt)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def _row(k: int, item, cell: CellParameters, name: str) -> tuple:
    if not isinstance(item, list | tuple) or len(item) not in (2, 3):
        raise ValueError(f"{name}[{k}] = {item!r}: expected (kind, duration) or (kind, duration, label)")
    kind, duration = item[0], item[1]
    label = item[2] if len(item) == 3 else 0
    if not isinstance(kind, str) or kind not in _KINDS:
        raise ValueError(f"{name}[{k}]: unknown phase kind {kind!r}, expected one of {', '.join(map(repr, _KINDS))}")
    if not isinstance(duration, Quantity) or duration.dim is not cell.dt.dim or np.ndim(duration) != 0:
        raise ValueError(f"{name}[{k}]: duration = {duration!r}, expected a time such as 100*ms")
    steps = float(duration / cell.dt)
    if not np.isfinite(steps) or steps < 1 or abs(steps - round(steps)) > 1e-6:
        raise ValueError(f"{name}[{k}]: duration = {duration} is not a positive whole number of steps dt = {cell.dt}")
    if isinstance(label, bool) or not isinstance(label, numbers.Integral) or label < 0:
        raise ValueError(f"{name}[{k}]: label = {label!r}, expected a non-negative integer")
    return kind, int(round(steps)), 0, int(label)


def _rows_from_codes(array: TimedArray, cell: CellParameters, name: str) -> list:
    codes = np.asarray(array.values)
    if codes.ndim != 1 or len(codes) == 0:
        raise ValueError(f"{name}: a TimedArray of phase codes must be 1-D and non-empty, got shape {codes.shape}")
    if abs(float(array.dt) - float(cell.dt)) > 1e-12:
        raise ValueError(f"{name}: the TimedArray's dt = {array.dt} s differs from the cell's dt = {cell.dt}")
    valid = set(PHASE_NAMES)
    bad = sorted(set(np.unique(codes).tolist()) - valid)
    if bad:
        raise ValueError(f"{name}: unknown phase codes {bad}; valid codes are {PHASE_NAMES}")
    starts = np.flatnonzero(np.diff(codes, prepend=codes[0] - 1))
    lengths = np.diff(np.append(starts, len(codes)))
    return [(PHASE_NAMES[int(codes[s])], int(n), 0, 0) for s, n in zip(starts, lengths, strict=True)]
