"""Sphinx configuration of the brian_dendrite documentation.

Build (from the repository root; this is what CI runs, warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Before Sphinx reads any page (at ``config-inited``), :func:`_generate` writes three things from the
installed package, so that they cannot drift from the code:

* ``api/generated/<module>.rst``: one page per public module, listing exactly the
  names in the module's ``__all__`` (autosummary then writes one page per class
  and function into ``api/generated/``);
* ``_generated/cli.inc``: the ``--help`` text of ``brian-dendrite`` and of each
  subcommand, included by ``cli.rst``;
* ``_generated/optional_pages.inc`` and ``_generated/gallery_toc.inc``: toctree
  entries for pages written elsewhere (``neuron.rst``, ``sonata.rst``) and for the
  gallery, each only if it exists, so that the site builds at every stage.

The examples gallery (sphinx-gallery) runs every ``examples/plot_*.py`` of the
repository and keeps the figures.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
import pkgutil
from pathlib import Path

import brian_dendrite
from brian_dendrite import paper

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLES = ROOT / "examples"

project = "brian_dendrite"
author = "the brian_dendrite developers"
copyright = "2026, the brian_dendrite developers"
version = release = brian_dendrite.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

# _generated/ holds .inc files that pages include, not pages of their own.
exclude_patterns = ["_build", "_generated", "**.ipynb_checkpoints"]
root_doc = "index"
templates_path = ["_templates"]
# Not nitpicky: docstrings name numpy, Brian2, neo and pynwb types that only intersphinx could
# resolve, and intersphinx would fetch inventories over the network, which CI does not have.
nitpicky = False
default_role = "py:obj"

# Every reference to the paper is the same string.
rst_epilog = f"""
.. |paper| replace:: {paper.REFERENCE}. https://doi.org/{paper.DOI}
"""

# -- autodoc, autosummary, numpydoc --------------------------------------------------------
autosummary_generate = True  # one page per class and function of the module pages written below
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False  # the class template documents the members (autodoc :members:)
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- HTML --------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"brian_dendrite {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
html_show_sourcelink = False

# -- sphinx-gallery --------------------------------------------------------------------
# The examples are scripts in <repository>/examples (plot_*.py are executed and their
# figures kept). Without that folder the gallery is left out; scripts without a gallery
# header (GALLERY_HEADER.rst) leave it out too, with a warning (an error with -W).
_HEADERS = ("GALLERY_HEADER.rst", "README.rst", "README.txt")
HAVE_GALLERY = EXAMPLES.is_dir() and any((EXAMPLES / h).is_file() for h in _HEADERS)
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"] if HAVE_GALLERY else [],
    "gallery_dirs": ["auto_examples"] if HAVE_GALLERY else [],
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
}
os.environ.setdefault("MPLBACKEND", "Agg")

# -- pages generated from the package -------------------------------------------------
#: Public modules documented in the API reference, in the order of the reference.
API_MODULES = [
    "brian_dendrite",
    "brian_dendrite.model",
    "brian_dendrite.simulation",
    "brian_dendrite.rate",
    "brian_dendrite.training",
    "brian_dendrite.validation",
    "brian_dendrite.io",
    "brian_dendrite.sweeps",
    "brian_dendrite.datasets",
    "brian_dendrite.analysis",
    "brian_dendrite.plotting",
    "brian_dendrite.paper",
    "brian_dendrite.provenance",
    "brian_dendrite.cli",
]
# Subpackages that other work adds join the reference when they exist (after the given module).
for _optional, _after in (("brian_dendrite.cells", "brian_dendrite.model"),
                          ("brian_dendrite.nrn", "brian_dendrite.sweeps")):
    try:
        importlib.import_module(_optional)
    except ImportError:
        continue
    API_MODULES.insert(API_MODULES.index(_after) + 1, _optional)


def _kind(obj) -> str:
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


def _write(path: Path, text: str) -> None:
    """Write only when the text changes, so that Sphinx rebuilds only what changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _public_home(name: str, member: str) -> str | None:
    """The documented submodule of ``name`` that also exports ``member`` (the same object), if any."""
    value = getattr(importlib.import_module(name), member)
    for other in API_MODULES:
        if other.startswith(name + "."):
            module = importlib.import_module(other)
            if member in getattr(module, "__all__", []) and getattr(module, member) is value:
                return other
    return None


def _module_page(name: str) -> str:
    """The reST of one module's reference page: its docstring, then its ``__all__`` by kind."""
    module = importlib.import_module(name)
    public = list(getattr(module, "__all__", []))
    groups: dict[str, list[str]] = {"class": [], "exception": [], "function": [], "data": []}
    reexported: dict[str, str] = {}
    for member in public:
        home = _public_home(name, member)
        if home is not None:
            # a package re-exporting a public module's name links to that module's page
            reexported[member] = home
            continue
        if member == "__version__":
            groups["data"].append(member)
            continue
        groups[_kind(getattr(module, member))].append(member)
    lines = [f"``{name}``", "=" * (len(name) + 4), "", f".. automodule:: {name}", "   :no-members:", "",
             f".. currentmodule:: {name}", ""]
    if reexported:
        lines += ["Re-exported names", "-----------------", "",
                  "Names of this package that are documented with the module that defines them:", ""]
        lines += [f"* :obj:`~{home}.{m}` (:mod:`{home}`)" for m, home in reexported.items()] + [""]
    titles = {"class": "Classes", "exception": "Exceptions", "function": "Functions"}
    for kind in ("class", "exception", "function"):
        if groups[kind]:
            lines += [titles[kind], "-" * len(titles[kind]), "", ".. autosummary::", "   :toctree: .",
                      "   :template: object.rst" if kind != "function" else "   :template: function.rst",
                      "", *(f"   {m}" for m in groups[kind]), ""]
    if groups["data"]:
        lines += ["Constants", "---------", ""]
        for member in groups["data"]:
            lines += _data_entry(module, member)
    return "\n".join(lines)


@functools.cache
def _attribute_docs(module) -> dict[str, list[str]]:
    """``#:`` comments of a module and of every module of its package (private ones included).

    A package re-exports constants defined in its submodules, where their ``#:`` comment
    is; ``autodata`` would look only in the package's ``__init__`` and otherwise print
    the docstring of the value's type (e.g. Brian2's ``Unit``).
    """
    from sphinx.pycode import ModuleAnalyzer

    docs: dict[str, list[str]] = {}
    names = [module.__name__]
    if hasattr(module, "__path__"):
        names += [f"{module.__name__}.{m.name}" for m in pkgutil.iter_modules(module.__path__)]
    for name in names:
        try:
            found = ModuleAnalyzer.for_module(name).find_attr_docs()
        except Exception:  # a module without source: nothing to find
            continue
        for (scope, attr), text in found.items():
            if scope == "" and attr not in docs:
                docs[attr] = list(text)
    return docs


def _data_entry(module, member: str) -> list[str]:
    """A ``.. data::`` entry: the constant's ``#:`` comment and, if short, its value."""
    value = getattr(module, member)
    lines = [f".. data:: {member}"]
    text = repr(value)
    if len(text) <= 80 and "\n" not in text and not text.startswith("<"):
        lines.append(f"   :value: {text}")
    doc = _attribute_docs(module).get(member, []) or (["The version of the package."] if member == "__version__" else [])
    lines.append("")
    lines += [f"   {line}".rstrip() for line in doc] or ["   (No description.)"]
    lines.append("")
    return lines


def _api_pages() -> None:
    out = HERE / "api" / "generated"
    for name in API_MODULES:
        _write(out / f"{name}.rst", _module_page(name))
    toc = "\n".join(f"   generated/{name}" for name in API_MODULES)
    _write(HERE / "_generated" / "api_toc.inc", f".. toctree::\n   :maxdepth: 1\n\n{toc}\n")


def _cli_help() -> None:
    """``--help`` of the command and of every subcommand, as literal blocks."""
    os.environ["COLUMNS"] = "100"  # argparse wraps at the terminal width; fix it for the page
    from brian_dendrite.cli import build_parser

    parser = build_parser()
    parts = ["``brian-dendrite``", "-" * 18, "", ".. code-block:: text", ""]
    parts += [f"   {line}".rstrip() for line in parser.format_help().splitlines()] + [""]
    subparsers = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for action in subparsers:
        for command, sub in action.choices.items():
            title = f"``brian-dendrite {command}``"
            parts += [f".. _cli-{command}:", "", title, "-" * len(title), "", ".. code-block:: text", ""]
            parts += [f"   {line}".rstrip() for line in sub.format_help().splitlines()] + [""]
    _write(HERE / "_generated" / "cli.inc", "\n".join(parts))


def _optional_pages() -> None:
    """Toctree entries for pages that other work adds (the NEURON side, SONATA) when they exist."""
    pages = [p for p in ("neuron", "sonata") if (HERE / f"{p}.rst").is_file()]
    text = (".. toctree::\n   :maxdepth: 2\n\n" + "".join(f"   {p}\n" for p in pages)) if pages else ""
    _write(HERE / "_generated" / "optional_pages.inc", text)
    # index.rst uses |examples| for the gallery and includes this file where the gallery goes
    gallery = (".. |examples| replace:: :doc:`examples <auto_examples/index>`\n\n"
               ".. toctree::\n   :maxdepth: 2\n\n   auto_examples/index\n") if HAVE_GALLERY else (
        ".. |examples| replace:: examples (not part of this build)\n\n"
        "The examples gallery is built from the ``examples/`` folder of the repository "
        "(scripts ``plot_*.py`` and a ``GALLERY_HEADER.rst``), which this build did not find.\n")
    _write(HERE / "_generated" / "gallery_toc.inc", gallery)


def _generate(app=None, config=None) -> None:
    """Write the generated pages and includes (Sphinx's ``config-inited``, before autosummary runs)."""
    if not HAVE_GALLERY and list(EXAMPLES.glob("plot_*.py")):
        from sphinx.util import logging

        logging.getLogger(__name__).warning(
            "examples/ has plot_*.py scripts but no GALLERY_HEADER.rst (the title and introduction of the "
            "gallery, which sphinx-gallery needs): the gallery is left out of this build")
    _api_pages()
    _cli_help()
    _optional_pages()


# -- the fields of the parameter classes ----------------------------------------------
# The parameter classes (brian_dendrite.model) are frozen dataclasses whose fields carry
# their documentation, kind and choices in the field metadata (model/_fields.py); the
# reference of every parameter is that metadata, shown here as a table under each class.
_ESCAPE = str.maketrans({c: "\\" + c for c in "\\*`_|"})


def _field_default(f) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    if f.metadata.get("kind") == "quantity":
        from brian_dendrite.model import format_quantity

        return f"``{format_quantity(value)}``"
    if f.metadata.get("kind") == "group":
        return f"see :class:`~{type(value).__module__}.{type(value).__qualname__}`"
    return f"``{value!r}``"


def _parameter_fields(app, what, name, obj, options, lines) -> None:
    if what != "class" or not dataclasses.is_dataclass(obj):
        return
    documented = [f for f in dataclasses.fields(obj) if "doc" in f.metadata or f.metadata.get("kind") == "group"]
    if not documented:
        return
    lines += ["", ".. rubric:: Fields", "", ".. list-table::", "   :header-rows: 1", "   :widths: 20 20 60", "",
              "   * - field", "     - default", "     - meaning"]
    for f in documented:
        doc = f.metadata.get("doc", "").translate(_ESCAPE) or "the parameters of this group"
        if f.metadata.get("choices"):
            doc += " (one of " + ", ".join(f"``{c!r}``" for c in f.metadata["choices"]) + ")"
        lines += [f"   * - ``{f.name}``", f"     - {_field_default(f)}", f"     - {doc}"]
    lines.append("")


def _parameter_signature(app, what, name, obj, options, signature, return_annotation):
    """Fields with default factories would show as ``<factory>``: show keyword arguments instead."""
    if what == "class" and dataclasses.is_dataclass(obj) and any(
            "doc" in f.metadata for f in dataclasses.fields(obj)):
        return "(**fields)", return_annotation
    return None


def setup(app):
    app.connect("config-inited", _generate)
    app.connect("autodoc-process-docstring", _parameter_fields)
    app.connect("autodoc-process-signature", _parameter_signature)
    return {"parallel_read_safe": True}
