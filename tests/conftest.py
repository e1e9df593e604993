"""Shared fixtures: code-generation targets and the MNIST data folder."""

from __future__ import annotations

import os
from pathlib import Path

import brian2
import pytest

REPO = Path(__file__).resolve().parents[1]
#: The project's data folder lives beside the repository (../shared/data/mnist).
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"

RUNTIME_TARGETS = ["numpy", "cython"]


def mnist_dir() -> Path:
    env = os.environ.get("BRIAN_DENDRITE_DATA")
    return Path(env) if env else SHARED_MNIST


def validation_script(name: str):
    """Import the study script ``validation/studies/<name>/<name>.py`` (not part of the package) as a module."""
    import importlib.util

    path = REPO / "validation" / "studies" / name / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=RUNTIME_TARGETS)
def target(request):
    """Run the test once per runtime code-generation target."""
    old = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = request.param
    brian2.seed(20171205)  # the paper's publication date; any fixed seed works
    yield request.param
    brian2.prefs.codegen.target = old


@pytest.fixture
def numpy_target():
    old = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = "numpy"
    yield "numpy"
    brian2.prefs.codegen.target = old
