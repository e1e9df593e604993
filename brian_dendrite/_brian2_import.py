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
"""

from __future__ import annotations

import os
import sys

__all__ = ["HIDDEN_FROM_BRIAN2", "import_brian2"]

#: Modules that Brian2 imports only for interactive use or its own test suite.
HIDDEN_FROM_BRIAN2 = ("pylab", "matplotlib", "pytest")


def import_brian2():
    """Import and return ``brian2``, hiding :data:`HIDDEN_FROM_BRIAN2` while it is imported."""
    if "brian2" in sys.modules or os.environ.get("BRIAN_DENDRITE_BRIAN2_PYLAB", "") not in ("", "0"):
        import brian2

        return brian2
    hidden = [name for name in HIDDEN_FROM_BRIAN2 if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # import raises ImportError
    try:
        import brian2
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return brian2
