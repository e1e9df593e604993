"""Parsing and checking Brian2 quantities written as text.

Model files store quantities as strings such as ``"10 ms"``, ``"0.6 / ms"`` or
``"200 Hz"``. This module turns such strings into Brian2 quantities without
``eval``: the text is parsed with :mod:`ast` and only numbers, Brian2 unit names
and the operators ``*``, ``/``, ``**`` and unary minus are accepted.
"""

from __future__ import annotations

import ast
import numbers

import brian2
import numpy as np
from brian2.units.fundamentalunits import DIMENSIONLESS, Quantity

__all__ = ["parse_quantity", "format_quantity", "dimension_name"]

_UNIT_NAMES = {
    name: getattr(brian2.units, name)
    for name in dir(brian2.units)
    if isinstance(getattr(brian2.units, name), brian2.units.fundamentalunits.Unit)
}


def _evaluate(node: ast.AST, text: str):
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, text)
    if isinstance(node, ast.Constant) and isinstance(node.value, numbers.Real):
        if isinstance(node.value, bool):
            raise ValueError(f"{text!r}: a boolean is not a quantity")
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in _UNIT_NAMES:
            raise ValueError(f"{text!r}: unknown unit {node.id!r}")
        return _UNIT_NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div, ast.Pow)):
        left = _evaluate(node.left, text)
        right = _evaluate(node.right, text)
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right
        if not isinstance(right, numbers.Real):
            raise ValueError(f"{text!r}: an exponent must be a plain number")
        return left**right
    raise ValueError(
        f"{text!r}: only numbers, Brian2 unit names and * / ** are allowed in a quantity"
    )


def parse_quantity(text: str | numbers.Real) -> Quantity | float:
    """Parse ``"0.6 / ms"``-style text into a Brian2 quantity.

    Parameters
    ----------
    text : str or number
        The quantity. A number and its unit may be separated by white space
        (``"10 ms"`` means ``10 * ms``). A plain number is returned unchanged.

    Returns
    -------
    Quantity or float

    Raises
    ------
    ValueError
        If the text is not a number followed by a product of Brian2 units.

    Examples
    --------
    >>> parse_quantity("10 ms")
    10. * msecond
    >>> parse_quantity("0.6 / ms")
    0.6 * khertz
    """
    if isinstance(text, numbers.Real) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str):
        raise ValueError(f"{text!r}: expected a number or a string such as '10 ms'")
    stripped = text.strip()
    if not stripped:
        raise ValueError("an empty string is not a quantity")
    parts = stripped.split(None, 1)
    source = stripped
    if len(parts) == 2 and not parts[1].lstrip().startswith(("*", "/")):
        try:
            float(parts[0])
        except ValueError:
            pass
        else:
            source = f"{parts[0]} * ({parts[1]})"
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        raise ValueError(f"{text!r} is not a quantity such as '10 ms'") from err
    return _evaluate(tree, text)


def dimension_name(dim) -> str:
    """Readable name of a Brian2 dimension (``'1'`` for dimensionless)."""
    return "1 (dimensionless)" if dim is DIMENSIONLESS else str(dim)


def format_quantity(value) -> str | float:
    """Inverse of :func:`parse_quantity` for writing model files and summaries."""
    if isinstance(value, Quantity) and value.dim is not DIMENSIONLESS:
        unit = value.get_best_unit()
        return f"{float(np.asarray(value / unit))!r} {unit}"
    return float(value)
