"""Declarative, validated parameter fields (internal machinery of :mod:`brian_dendrite.model.parameters`).

A parameter class is a frozen dataclass deriving from :class:`ValidatedParameters`
whose fields are made with :func:`quantity_field`, :func:`number_field`,
:func:`choice_field`, :func:`flag_field` or :func:`sequence_field`. Each field
carries its kind, dimension, range and documentation in its metadata; when an
object is built every value is checked and normalised by the validator of its kind
(text such as ``'10 ms'`` is parsed), and an invalid one raises
:class:`ParameterError` naming the field, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import field
from typing import Any

import numpy as np
from brian2.units.fundamentalunits import DIMENSIONLESS, Quantity, get_dimensions

from .units import dimension_name, format_quantity, parse_quantity

__all__ = ["ParameterError", "ValidatedParameters", "quantity_field", "number_field", "choice_field", "flag_field",
           "sequence_field"]


class ParameterError(ValueError):
    """A parameter has the wrong unit, is out of range or is unknown."""


def quantity_field(default, dim, doc, lo=None, hi=None, lo_open=False):
    """A quantity field with its dimension, range and documentation."""
    # Quantities are unhashable (dataclasses call them mutable): a factory returns the default.
    return field(
        default_factory=lambda: default,
        metadata={"kind": "quantity", "dim": dim, "lo": lo, "hi": hi, "lo_open": lo_open, "doc": doc},
    )


def number_field(default, doc, lo=None, hi=None, lo_open=False, integer=False):
    """A plain-number field (an integer if *integer*) with its range and documentation."""
    return field(
        default=default,
        metadata={
            "kind": "number",
            "dim": DIMENSIONLESS,
            "lo": lo,
            "hi": hi,
            "lo_open": lo_open,
            "integer": integer,
            "doc": doc,
        },
    )


def choice_field(default, choices, doc):
    """A field holding one of *choices* (text)."""
    return field(default=default, metadata={"kind": "choice", "choices": tuple(choices), "doc": doc})


def flag_field(default, doc):
    """A true/false field."""
    return field(default=default, metadata={"kind": "flag", "doc": doc})


def sequence_field(default, doc, integer, lo=None, lo_open=False):
    """A field holding a tuple of numbers (integers if *integer*), each with a lower bound *lo*."""
    return field(
        default=tuple(default),
        metadata={"kind": "sequence", "integer": integer, "lo": lo, "lo_open": lo_open, "doc": doc},
    )


def _lower_bound_violated(value: float, lo: float, lo_open: bool) -> bool:
    return value <= lo if lo_open else value < lo


def _validate_quantity(name: str, value, meta) -> Quantity | float:
    """A scalar of the field's dimension (text such as ``'10 ms'`` is parsed), within its range."""
    dim, doc = meta["dim"], meta.get("doc", "")
    if isinstance(value, str):
        try:
            value = parse_quantity(value)
        except ValueError as err:
            raise ParameterError(f"{name}: {err}") from None
    try:
        value_dim = get_dimensions(value)
    except TypeError:
        raise ParameterError(
            f"{name} = {value!r}: expected a Brian2 quantity of dimension "
            f"{dimension_name(dim)} ({doc})"
        ) from None
    if value_dim is not dim:
        raise ParameterError(
            f"{name} = {value!r}: wrong unit, expected dimension {dimension_name(dim)} "
            f"({doc}), got {dimension_name(value_dim)}"
        )
    if np.ndim(value) != 0:
        raise ParameterError(f"{name} = {value!r}: expected a scalar")
    if dim is DIMENSIONLESS:
        value = float(value)
    else:
        value = Quantity(float(np.asarray(value)), dim=dim)
    magnitude = float(np.asarray(value))
    lo, hi = meta.get("lo"), meta.get("hi")
    if not np.isfinite(magnitude):
        raise ParameterError(f"{name} = {value!r}: must be finite")
    if lo is not None and _lower_bound_violated(magnitude, float(np.asarray(lo)), meta["lo_open"]):
        raise ParameterError(f"{name} = {value!r}: must be {'>' if meta['lo_open'] else '>='} {lo!r} ({doc})")
    if hi is not None and magnitude > float(np.asarray(hi)):
        raise ParameterError(f"{name} = {value!r}: must be <= {hi!r} ({doc})")
    return value


def _validate_number(name: str, value, meta) -> float | int:
    """A plain (dimensionless) number, an integer if the field says so, within its range."""
    doc = meta.get("doc", "")
    if isinstance(value, Quantity) and value.dim is not DIMENSIONLESS:
        raise ParameterError(
            f"{name} = {value!r}: wrong unit, expected a plain number ({doc}), "
            f"got dimension {dimension_name(value.dim)}"
        )
    if isinstance(value, str):
        try:
            value = parse_quantity(value)
        except ValueError as err:
            raise ParameterError(f"{name}: {err}") from None
        return _validate_number(name, value, meta)
    if isinstance(value, bool) or not isinstance(value, numbers.Real | Quantity):
        raise ParameterError(f"{name} = {value!r}: expected a number ({doc})")
    value = float(value)
    if meta.get("integer"):
        if value != int(value):
            raise ParameterError(f"{name} = {value!r}: expected an integer ({doc})")
        value = int(value)
    if not np.isfinite(value):
        raise ParameterError(f"{name} = {value!r}: must be finite")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and _lower_bound_violated(value, lo, meta["lo_open"]):
        raise ParameterError(f"{name} = {value!r}: must be {'>' if meta['lo_open'] else '>='} {lo} ({doc})")
    if hi is not None and value > hi:
        raise ParameterError(f"{name} = {value!r}: must be <= {hi} ({doc})")
    return value


def _validate_choice(name: str, value, meta) -> str:
    """One of the field's choices."""
    if value not in meta["choices"]:
        raise ParameterError(
            f"{name} = {value!r}: unknown choice, expected one of {', '.join(map(repr, meta['choices']))}"
        )
    return value


def _validate_flag(name: str, value, meta) -> bool:
    """``True`` or ``False`` (Python or numpy booleans, not numbers)."""
    if not isinstance(value, bool | np.bool_):
        raise ParameterError(f"{name} = {value!r}: expected true or false ({meta.get('doc', '')})")
    return bool(value)


def _validate_sequence(name: str, value, meta) -> tuple:
    """A list of finite numbers (integers if the field says so), each within the lower bound."""
    doc = meta.get("doc", "")
    if isinstance(value, str | bytes) or not np.iterable(value):
        raise ParameterError(f"{name} = {value!r}: expected a list of numbers ({doc})")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise ParameterError(f"{name} = {value!r}: expected a list of numbers ({doc})")
        item = float(item)
        if not np.isfinite(item):
            raise ParameterError(f"{name} = {value!r}: all entries must be finite")
        if meta["integer"]:
            if item != int(item):
                raise ParameterError(f"{name} = {value!r}: expected integers ({doc})")
            item = int(item)
        lo = meta.get("lo")
        if lo is not None and _lower_bound_violated(item, lo, meta["lo_open"]):
            raise ParameterError(
                f"{name} = {value!r}: every entry must be {'>' if meta['lo_open'] else '>='} {lo} ({doc})"
            )
        out.append(item)
    return tuple(out)


#: Field kind (the ``kind`` of its metadata) -> its validator ``(name, value, metadata) -> value``.
_VALIDATORS = {
    "quantity": _validate_quantity,
    "number": _validate_number,
    "choice": _validate_choice,
    "flag": _validate_flag,
    "sequence": _validate_sequence,
}


class ValidatedParameters:
    """Validation, ``replace`` and (de)serialisation shared by the parameter classes."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, self._validate_field(f, value))
        self._check_consistency()

    def _check_consistency(self):
        pass

    def _validate_field(self, f, value):
        """The field's value checked (dimension, range) and normalised; raises :class:`ParameterError`."""
        kind = f.metadata.get("kind")
        if kind not in _VALIDATORS:
            raise AssertionError(f"field {type(self).__name__}.{f.name} has no kind")  # pragma: no cover
        return _VALIDATORS[kind](f"{type(self).__name__}.{f.name}", value, f.metadata)

    def replace(self, **changes):
        """A copy with *changes* applied (and validated).

        Raises
        ------
        ParameterError
            For an unknown field name (the valid names are listed) or an invalid value.
        """
        valid = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise ParameterError(
                f"{type(self).__name__}: unknown parameter(s) {', '.join(unknown)}; "
                f"valid names are {', '.join(sorted(valid))}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain, file-writable values (quantities as text such as ``'10.0 ms'``)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ValidatedParameters):
                out[f.name] = value.to_dict()
            elif f.metadata.get("kind") == "quantity":
                out[f.name] = format_quantity(value)
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> ValidatedParameters:
        """Build from plain values, rejecting unknown keys (with the valid names)."""
        where = f"{source}: " if source else ""
        if not isinstance(data, dict):
            raise ParameterError(f"{where}[{cls.__name__}] must be a table of parameters")
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ParameterError(
                f"{where}unknown key(s) {', '.join(map(repr, unknown))} for {cls.__name__}; "
                f"valid keys are {', '.join(sorted(valid))}"
            )
        try:
            return cls(**data)
        except ParameterError as err:
            raise ParameterError(f"{where}{err}") from None

    @classmethod
    def describe(cls) -> dict[str, str]:
        """Field name -> documentation string."""
        return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}
