"""The Sphinx site in docs/: the API reference covers the public API, and the site builds.

Needs the ``docs`` extra (``pip install ".[docs]"``); CI installs it, so these tests
run there. The full build (``-W``: warnings are errors) is marked slow.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re

import pytest

pytest.importorskip("sphinx", reason='the documentation tests need the docs extra: pip install ".[docs]"')
pytest.importorskip("numpydoc", reason='the documentation tests need the docs extra: pip install ".[docs]"')
pytest.importorskip("sphinx_gallery", reason='the documentation tests need the docs extra: pip install ".[docs]"')

from conftest import REPO  # noqa: E402

import brian_dendrite  # noqa: E402

DOCS = REPO / "docs"
# Not part of the API: the model files (data) and the entry point of 'python -m'.
NOT_API = {"brian_dendrite.model_files", "brian_dendrite.validation.__main__"}


@pytest.fixture(scope="module")
def conf():
    """docs/conf.py as a module (importing it generates nothing; Sphinx's config-inited does)."""
    spec = importlib.util.spec_from_file_location("brian_dendrite_docs_conf", DOCS / "conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_modules() -> list[str]:
    """The package, its public subpackages and its public top-level modules.

    A subpackage's ``__init__`` is its public API (docs/architecture.rst), so the
    modules inside a subpackage are documented through it, not one by one.
    """
    names = ["brian_dendrite"]
    for info in pkgutil.iter_modules(brian_dendrite.__path__):
        if not info.name.startswith("_"):
            names.append(f"brian_dendrite.{info.name}")
    return sorted(set(names) - NOT_API)


def test_every_public_module_is_in_the_api_reference(conf):
    missing = sorted(set(public_modules()) - set(conf.API_MODULES))
    assert not missing, f"add these public modules to API_MODULES in docs/conf.py: {missing}"


@pytest.mark.parametrize("name", public_modules())
def test_every_public_name_is_on_its_module_page(conf, name):
    module = importlib.import_module(name)
    public = getattr(module, "__all__", None)
    assert public, f"{name} has no __all__: the API reference lists exactly the names in __all__"
    page = conf._module_page(name)
    # a name is documented (autosummary entry, '.. data::') or linked to the module that documents it
    listed = set(re.findall(r"^   (\w+)$", page, re.MULTILINE))
    listed |= set(re.findall(r"^\.\. data:: (\w+)$", page, re.MULTILINE))
    listed |= set(re.findall(r"^\* :obj:`~[\w.]+\.(\w+)`", page, re.MULTILINE))
    assert set(public) <= listed, f"{name}: not on its API page: {sorted(set(public) - listed)}"
    private = sorted(m for m in listed if m.startswith("_") and m != "__version__")
    assert not private, f"{name}: private names on its API page: {private}"


def test_constants_are_described(conf):
    """Every public constant carries a ``#:`` comment, which the reference shows."""
    undescribed = []
    for name in conf.API_MODULES:
        page = conf._module_page(name)
        for entry in re.findall(r"^\.\. data:: (\w+)\n(?:   :value: .*\n)?\n   \(No description\.\)", page,
                                re.MULTILINE):
            if entry != "__version__":
                undescribed.append(f"{name}.{entry}")
    assert not undescribed, f"add a '#:' comment where these constants are defined: {undescribed}"


def test_the_command_reference_has_every_subcommand(conf, tmp_path, monkeypatch):
    monkeypatch.setattr(conf, "HERE", tmp_path)
    conf._cli_help()
    text = (tmp_path / "_generated" / "cli.inc").read_text(encoding="utf-8")
    from brian_dendrite.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    for command in commands:
        assert f"``brian-dendrite {command}``" in text
        assert f"usage: brian-dendrite {command}" in text


@pytest.mark.slow
def test_the_site_builds_without_warnings(tmp_path):
    """The CI build (warnings are errors), without executing the gallery's examples."""
    from sphinx.cmd.build import build_main

    status = build_main(["-W", "--keep-going", "-q", "-E", "-b", "html", "-D", "plot_gallery=0",
                         str(DOCS), str(tmp_path / "html")])
    assert status == 0
    index = (tmp_path / "html" / "index.html").read_text(encoding="utf-8")
    assert "10.7554/eLife.22901" in index
    assert (tmp_path / "html" / "api" / "generated" / "brian_dendrite.model.html").is_file()
