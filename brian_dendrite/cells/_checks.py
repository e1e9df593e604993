"""Argument checks of the public factories: every error names the argument that is wrong."""

from __future__ import annotations

import numbers

import numpy as np
from brian2 import NeuronGroup, have_same_dimensions
from brian2.core.spikesource import SpikeSource
from brian2.units.fundamentalunits import Quantity, get_dimensions

from ..model import CellParameters, ModelParameters, NetworkParameters, ProtocolParameters

#: Attribute under which a factory leaves the cell parameters on the group it built.
CELL_ATTRIBUTE = "_brian_dendrite_cell"


def check_count(value, name: str = "N") -> int:
    """A positive integer (``bool`` is refused: ``True`` is not a population size)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} = {value!r}: expected a positive integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} = {value}: expected a positive integer")
    return int(value)


def check_choice(value, choices, name: str) -> str:
    """One of a fixed set of names; an unknown one lists the valid ones."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} = {value!r}: unknown name, expected one of {', '.join(map(repr, choices))}")
    return value


def check_flag(value, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} = {value!r}: expected True or False")
    return bool(value)


def resolve_parameters(params, protocol=None, method=None, name: str = "params"):
    """``(cell, protocol, network)`` from ``params`` (None, CellParameters or ModelParameters).

    ``protocol`` overrides the protocol of a ModelParameters; ``method`` the cell's
    integration method.
    """
    if params is None:
        cell, prot, net = CellParameters(), ProtocolParameters(), NetworkParameters()
    elif isinstance(params, ModelParameters):
        cell, prot, net = params.cell, params.protocol, params.network
    elif isinstance(params, CellParameters):
        cell, prot, net = params, ProtocolParameters(), NetworkParameters()
    else:
        raise TypeError(
            f"{name}: expected CellParameters, ModelParameters or None, got {type(params).__name__}"
        )
    if protocol is not None:
        if not isinstance(protocol, ProtocolParameters):
            raise TypeError(f"protocol: expected ProtocolParameters or None, got {type(protocol).__name__}")
        prot = protocol
    if method is not None:
        cell = cell.replace(method=check_choice(method, ("exponential_euler", "euler"), "method"))
    return cell, prot, net


def check_quantity(value, unit: Quantity, name: str, *, shape_n: int | None = None,
                   nonnegative: bool = False) -> Quantity:
    """A finite quantity with the dimensions of ``unit``; scalar or, with ``shape_n``, of shape ``(shape_n,)``."""
    if not isinstance(value, Quantity | numbers.Number | np.ndarray | list | tuple):
        raise TypeError(f"{name} = {value!r}: expected a quantity in {unit}")
    if not have_same_dimensions(value, unit):
        raise ValueError(
            f"{name} = {value!r}: wrong units, expected dimensions of {unit} ({get_dimensions(unit)}), "
            f"got {get_dimensions(value)}"
        )
    arr = np.asarray(value / unit, dtype=float)
    if shape_n is not None and arr.ndim != 0 and arr.shape != (shape_n,):
        raise ValueError(f"{name} has shape {arr.shape}, expected a scalar or shape ({shape_n},)")
    if shape_n is None and arr.ndim != 0:
        raise ValueError(f"{name} has shape {arr.shape}, expected a scalar")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if nonnegative and np.any(arr < 0):
        raise ValueError(f"{name} contains negative values")
    return arr * unit


def check_dimensionless(value, name: str, *, shape=None) -> np.ndarray:
    """Finite dimensionless numbers (a scalar, or ``shape`` when given as a tuple)."""
    if isinstance(value, Quantity) and not value.is_dimensionless:
        raise ValueError(f"{name} = {value!r}: wrong units, expected a dimensionless value, got {value.dim}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} = {value!r}: expected a number or an array of numbers") from None
    if shape is not None and arr.ndim != 0 and arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected a scalar or shape {shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_source(source, name: str = "source") -> None:
    if not isinstance(source, SpikeSource):
        raise TypeError(f"{name}: expected a Brian2 group that emits spikes (NeuronGroup, PoissonGroup, ...), "
                        f"got {type(source).__name__}")


def check_clock(source, cell: CellParameters, name: str = "source") -> None:
    """The source must run at the cell's dt (Brian2 would only warn, and round kernel delays)."""
    dt = source.clock.dt
    if abs(float(dt / cell.dt) - 1) > 1e-9:
        raise ValueError(
            f"{name} {source.name!r} runs at dt = {dt}, the target's cells at dt = {cell.dt}: build the "
            f"source with dt={cell.dt!r} (or set brian2.defaultclock.dt = {cell.dt!r} before building it)"
        )


def check_target(target, site: str, name: str = "target") -> None:
    """A NeuronGroup that has the two kernel traces of ``site``."""
    if not isinstance(target, NeuronGroup):
        raise TypeError(f"{name}: expected a NeuronGroup built by pyramidal_neurons or output_neurons, "
                        f"got {type(target).__name__}")
    if f"x_{site}_L" not in target.variables:
        sites = [s for s in ("basal", "apical", "soma") if f"x_{s}_L" in target.variables]
        hint = " (build it with somatic_input=True)" if site == "soma" and sites else ""
        raise ValueError(f"{name} {target.name!r} has no {site!r} site{hint}; its sites: {sites or 'none'}")


def cell_of(group, params, name: str = "params") -> CellParameters:
    """The cell parameters for synapses onto ``group``: ``params`` or those the group was built with."""
    built = getattr(group, CELL_ATTRIBUTE, None)
    if params is None:
        return built if built is not None else CellParameters()
    cell, _, _ = resolve_parameters(params, name=name)
    if built is not None and (cell.kernel, cell.dt, cell.kernel_cutoff) != (built.kernel, built.dt,
                                                                            built.kernel_cutoff):
        raise ValueError(f"{name}: kernel {cell.kernel!r}, dt {cell.dt} differ from those the target "
                         f"{group.name!r} was built with ({built.kernel!r}, dt {built.dt})")
    return cell


def check_weights(weights, n_source: int, n_target: int, all_to_all: bool, name: str = "weights"):
    """Weights as a scalar, a per-synapse vector or, all-to-all, an ``(n_target, n_source)`` matrix.

    Returns the value to assign to ``w`` (a matrix is flattened to the synapses'
    presynaptic-major order), or None.
    """
    if weights is None:
        return None
    arr = check_dimensionless(weights, name)
    if arr.ndim == 0:
        return float(arr)
    if arr.ndim == 2:
        if not all_to_all:
            raise ValueError(f"{name}: a matrix needs connect=True (all-to-all); give one value per synapse")
        if arr.shape != (n_target, n_source):
            raise ValueError(f"{name} has shape {arr.shape}, expected (n_target, n_source) = "
                             f"({n_target}, {n_source})")
        return np.ascontiguousarray(arr.T).ravel()
    if arr.ndim == 1:
        return arr
    raise ValueError(f"{name} has {arr.ndim} dimensions, expected a scalar, one value per synapse or a matrix")
