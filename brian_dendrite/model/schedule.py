"""The phase schedule, precomputed per time step and packed into ``TimedArray`` s.

A whole stretch of training (many examples, both phases) or a whole test pass is
one Brian2 ``run()``: the per-step facts the neurons need (which phase, how many
steps are left in it, the length of its averaging window, which example and
label) are computed here in numpy, with the random phase lengths drawn up front,
and read inside the simulation as shared subexpressions (see
:func:`brian_dendrite.model.equations.schedule_equations`).

Phase codes: ``FORWARD = 0``, ``TARGET = 1``, ``TEST = 2``, ``IDLE = -1``.

Phase lengths (specification 1.6): ``phase_min`` plus an extra drawn from a Wald
(inverse Gaussian) distribution with mean ``phase_extra_mean`` and scale
``phase_extra_scale``, independently for every phase, floored to whole
milliseconds as in the published code (``phase_extra_floor``).

Averaging windows (specification section 5, item 8): ``window='last'`` averages the
last ``window_length`` of every phase (published code); ``window='settle'``
averages from ``settle_time`` after the phase start to its end (paper Eq. 22).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from brian2 import TimedArray, ms
from brian2.units.fundamentalunits import Quantity

from .parameters import ParameterError, ProtocolParameters

__all__ = ["FORWARD", "TARGET", "TEST", "IDLE", "PHASE_NAMES", "PhaseSchedule", "draw_phase_lengths"]

#: Phase codes, as stored in the schedule and read by the neurons as ``phase``.
FORWARD, TARGET, TEST, IDLE = 0, 1, 2, -1
#: Phase code -> phase name.
PHASE_NAMES = {FORWARD: "forward", TARGET: "target", TEST: "test", IDLE: "idle"}
_CODES = {name: code for code, name in PHASE_NAMES.items()}
#: ``steps_left`` during idle padding: far from 0 so that no phase-end event fires.
_IDLE_STEPS_LEFT = 2**30


def _steps(duration: Quantity, dt: Quantity, what: str) -> int:
    n = float(duration / dt)
    if abs(n - round(n)) > 1e-6:
        raise ParameterError(f"{what} = {duration} is not a whole number of time steps dt = {dt}")
    return int(round(n))


def draw_phase_lengths(n: int, protocol: ProtocolParameters, dt: Quantity, rng: np.random.Generator) -> np.ndarray:
    """Lengths in steps of *n* phases: ``phase_min`` + Wald extra (floored or rounded to dt)."""
    base = _steps(protocol.phase_min, dt, "phase_min")
    if float(protocol.phase_extra_mean) == 0:
        return np.full(n, base, dtype=np.int64)
    extra = rng.wald(float(protocol.phase_extra_mean / dt), float(protocol.phase_extra_scale / dt), size=n)
    extra = np.floor(extra) if protocol.phase_extra_floor else np.round(extra)
    return base + extra.astype(np.int64)


@dataclass(frozen=True)
class PhaseSchedule:
    """Per-step schedule arrays of one run (all ``int32``, one entry per time step).

    Attributes
    ----------
    dt : Quantity
        The time step the arrays are sampled at.
    phase, steps_left, window_steps, example, label : ndarray
        See :func:`brian_dendrite.model.equations.schedule_equations`.
    n_steps : int
        The steps actually simulated; entries beyond are idle padding that keeps
        the array shapes (and so the generated code) fixed between chunks.
    phase_table : ndarray
        One row per phase: ``(start_step, n_steps, phase_code, example, label)``.
    """

    dt: Quantity
    phase: np.ndarray
    steps_left: np.ndarray
    window_steps: np.ndarray
    example: np.ndarray
    label: np.ndarray
    n_steps: int
    phase_table: np.ndarray

    @property
    def duration(self) -> Quantity:
        """Simulated duration (``n_steps * dt``)."""
        return self.n_steps * self.dt

    @property
    def capacity(self) -> int:
        return len(self.phase)

    @classmethod
    def from_phases(
        cls,
        phases,
        protocol: ProtocolParameters,
        dt: Quantity = 1 * ms,
        capacity: int | None = None,
    ) -> PhaseSchedule:
        """Build a schedule from explicit phases.

        Parameters
        ----------
        phases : iterable of (str, Quantity or int, int, int)
            ``(kind, length, example, label)`` with kind ``'forward'``,
            ``'target'``, ``'test'`` or ``'idle'``; a length given as an int is a
            number of steps.
        protocol : ProtocolParameters
            Gives the averaging windows.
        capacity : int, optional
            Pad the arrays with idle steps to this many entries.
        """
        rows = []
        start = 0
        for k, item in enumerate(phases):
            try:
                kind, length, example, label = item
            except (TypeError, ValueError):
                raise ValueError(f"phase {k}: expected (kind, length, example, label), got {item!r}") from None
            if kind not in _CODES:
                raise ValueError(f"phase {k}: unknown phase kind {kind!r}; expected one of {sorted(_CODES)}")
            n = length if isinstance(length, int | np.integer) else _steps(length, dt, f"phase {k} length")
            if n <= 0:
                raise ValueError(f"phase {k}: length must be positive, got {length}")
            rows.append((start, int(n), _CODES[kind], int(example), int(label)))
            start += int(n)
        table = np.array(rows, dtype=np.int64).reshape(-1, 5)
        return cls._from_table(table, protocol, dt, capacity)

    @classmethod
    def training(
        cls,
        labels,
        protocol: ProtocolParameters,
        dt: Quantity,
        rng: np.random.Generator,
        capacity: int | None = None,
        first_example: int = 0,
    ) -> PhaseSchedule:
        """Forward then target phase for every example, with random phase lengths.

        ``example`` indexes rows of the chunk's image array (``first_example +
        k``); ``labels[k]`` is the class that the teaching signal targets.
        """
        labels = np.asarray(labels, dtype=np.int64)
        n = len(labels)
        lengths = draw_phase_lengths(2 * n, protocol, dt, rng).reshape(n, 2)
        table = np.zeros((2 * n, 5), dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths.ravel())[:-1]])
        table[:, 0] = starts
        table[:, 1] = lengths.ravel()
        table[:, 2] = np.tile([FORWARD, TARGET], n)
        table[:, 3] = np.repeat(np.arange(n) + first_example, 2)
        table[:, 4] = np.repeat(labels, 2)
        return cls._from_table(table, protocol, dt, capacity)

    @classmethod
    def test(cls, n_examples: int, protocol: ProtocolParameters, dt: Quantity, labels=None) -> PhaseSchedule:
        """One test phase of ``test_duration`` per example, no teaching."""
        n = _steps(protocol.test_duration, dt, "test_duration")
        labels = np.zeros(n_examples, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
        table = np.zeros((n_examples, 5), dtype=np.int64)
        table[:, 0] = np.arange(n_examples) * n
        table[:, 1] = n
        table[:, 2] = TEST
        table[:, 3] = np.arange(n_examples)
        table[:, 4] = labels
        return cls._from_table(table, protocol, dt, None)

    @classmethod
    def _from_table(cls, table, protocol, dt, capacity) -> PhaseSchedule:
        n_steps = int(table[-1, 0] + table[-1, 1]) if len(table) else 0
        capacity = n_steps if capacity is None else max(int(capacity), n_steps)
        phase = np.full(capacity, IDLE, dtype=np.int32)
        steps_left = np.full(capacity, _IDLE_STEPS_LEFT, dtype=np.int32)
        window = np.ones(capacity, dtype=np.int32)
        example = np.zeros(capacity, dtype=np.int32)
        label = np.zeros(capacity, dtype=np.int32)
        if n_steps:
            lengths = table[:, 1]
            codes = table[:, 2]
            win = np.empty(len(table), dtype=np.int64)
            test = codes == TEST
            if protocol.window == "last":
                win[:] = _steps(protocol.window_length, dt, "window_length")
            else:
                win[:] = lengths - _steps(protocol.settle_time, dt, "settle_time")
            win[test] = _steps(protocol.test_window, dt, "test_window")
            # Idle phases never reach steps_left == 0; a window of 1 keeps the (hoisted,
            # always evaluated) division by window_steps in the generated code finite.
            win[codes == IDLE] = 1
            win = np.minimum(win, lengths)
            phase[:n_steps] = np.repeat(codes, lengths)
            window[:n_steps] = np.repeat(win, lengths)
            example[:n_steps] = np.repeat(table[:, 3], lengths)
            label[:n_steps] = np.repeat(table[:, 4], lengths)
            ends = np.repeat(table[:, 0] + lengths, lengths)
            steps_left[:n_steps] = ends - 1 - np.arange(n_steps)
            idle = phase[:n_steps] == IDLE
            steps_left[:n_steps][idle] = _IDLE_STEPS_LEFT
        return cls(dt, phase, steps_left, window, example, label, n_steps, table)

    def padded(self, capacity: int) -> PhaseSchedule:
        """The same schedule with idle padding up to ``capacity`` steps."""
        if capacity < self.n_steps:
            raise ValueError(f"capacity {capacity} is shorter than the schedule ({self.n_steps} steps)")
        if capacity == self.capacity:
            return self
        n = self.n_steps

        def pad(values, fill):
            out = np.full(capacity, fill, dtype=np.int32)
            out[:n] = values[:n]
            return out

        return PhaseSchedule(self.dt, pad(self.phase, IDLE), pad(self.steps_left, _IDLE_STEPS_LEFT),
                             pad(self.window_steps, 1), pad(self.example, 0), pad(self.label, 0), n,
                             self.phase_table)

    def timed_arrays(self) -> dict[str, TimedArray]:
        """The namespace entries ``sched_*`` read by :func:`schedule_equations`."""
        return {
            "sched_phase": TimedArray(self.phase, dt=self.dt, name="sched_phase*"),
            "sched_steps_left": TimedArray(self.steps_left, dt=self.dt, name="sched_steps_left*"),
            "sched_window_steps": TimedArray(self.window_steps, dt=self.dt, name="sched_window_steps*"),
            "sched_example": TimedArray(self.example, dt=self.dt, name="sched_example*"),
            "sched_label": TimedArray(self.label, dt=self.dt, name="sched_label*"),
        }

    def phase_intervals(self, kind: str | None = None):
        """``(start, stop, kind, example, label)`` per phase, times as quantities."""
        out = []
        for start, n, code, ex, lab in self.phase_table:
            name = PHASE_NAMES[int(code)]
            if kind is None or name == kind:
                out.append((start * self.dt, (start + n) * self.dt, name, int(ex), int(lab)))
        return out
