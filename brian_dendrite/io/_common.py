"""What the neo and the NWB exporters share: units stripped to seconds, the model's name, phase codes."""

from __future__ import annotations

import tomllib

import numpy as np
from brian2 import second
from brian2.units.fundamentalunits import DimensionMismatchError, Quantity, have_same_dimensions

from ..simulation import RunRecording

__all__ = ["check_layers", "model_info", "phase_name", "seconds", "stimulus_of"]

_PHASE_NAMES = RunRecording.PHASE_NAMES


def seconds(value, name: str) -> np.ndarray | float:
    """A Brian2 time (Quantity in seconds) as float(s) in seconds, without copying arrays.

    Raises
    ------
    brian2.DimensionMismatchError
        If ``value`` (the argument ``name``) is not a Brian2 time quantity.
    """
    if not isinstance(value, Quantity) or not have_same_dimensions(value, second):
        raise DimensionMismatchError(f"{name} must be a Brian2 time quantity, got {value!r}")
    arr = np.asarray(value, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


def model_info(recording: RunRecording) -> tuple[str, str]:
    """Name and description of the model from the parameter TOML of the recording (if any).

    Raises
    ------
    ValueError
        If ``recording.metadata['model']`` is not valid TOML.
    """
    text = recording.metadata.get("model")
    if not text:
        return "unknown", ""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"recording.metadata['model'] is not valid TOML: {err}") from None
    return str(data.get("name", "unknown")), str(data.get("description", ""))


def phase_name(code) -> str:
    """The name (``"forward"``, ``"target"``, ``"test"``) of a phase code of ``recording.phases``."""
    code = int(code)
    if code not in _PHASE_NAMES:
        raise ValueError(f"unknown phase code {code}; known codes are {sorted(_PHASE_NAMES)}")
    return _PHASE_NAMES[code]


def check_layers(recording: RunRecording) -> None:
    """Refuse spikes of a layer that ``recording.layer_sizes`` does not have."""
    missing = sorted(set(recording.spikes) - set(recording.layer_sizes))
    if missing:
        raise ValueError(f"spikes recorded for layer(s) {missing} that are not in layer_sizes "
                         f"{sorted(recording.layer_sizes)}")


def stimulus_of(recording: RunRecording, example: np.ndarray) -> np.ndarray:
    """Dataset index of each phase's example (-1 where unknown)."""
    stimulus = np.asarray(recording.stimulus, dtype=np.int64)
    out = np.full(len(example), -1, dtype=np.int64)
    known = (example >= 0) & (example < len(stimulus))
    out[known] = stimulus[example[known]]
    return out
