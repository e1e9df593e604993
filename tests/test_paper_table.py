"""validation/studies/paper_table/paper_table.py: collecting run summaries into the table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import validation_script


@pytest.fixture(scope="module")
def script():
    return validation_script("paper_table")


def _summary(directory: Path, model: str, errors, kind="rate", seed=0):
    run = directory / model / f"seed{seed}"
    run.mkdir(parents=True)
    hist = [{"examples": 60000 * (k + 1), "test_error": e, "test_images": 10000} for k, e in enumerate(errors)]
    run.joinpath("summary.json").write_text(json.dumps({
        "model": model, "kind": kind, "target": "numpy", "seed": seed, "examples_trained": 60000 * len(errors),
        "epochs_completed": float(len(errors)), "final_test_error": errors[-1], "test_history": hist,
        "code_history": [{"from_examples": 0, "git_commit": "abcdef0123"}]}))


def test_a_later_directory_replaces_the_same_run(script, tmp_path):
    _summary(tmp_path / "a", "two_hidden", [5.0, 4.0])
    _summary(tmp_path / "a", "one_hidden", [6.0])
    _summary(tmp_path / "b", "two_hidden", [5.0, 4.0, 3.5])
    _summary(tmp_path / "b", "two_hidden", [9.0], seed=1)
    runs = script.collect([tmp_path / "a", tmp_path / "b"])
    by_key = {(r["model"], r["seed"]): r for r in runs}
    assert sorted(by_key) == [("one_hidden", 0), ("two_hidden", 0), ("two_hidden", 1)]
    assert by_key[("two_hidden", 0)]["final"] == 3.5
    # run directories are recorded relative to the current directory, never absolute
    replaced = Path(os.path.relpath(tmp_path / "a" / "two_hidden" / "seed0")).as_posix()
    assert by_key[("two_hidden", 0)]["supersedes"] == [replaced]
    assert not any(Path(r["path"]).is_absolute() for r in runs)
    assert "supersedes" not in by_key[("two_hidden", 1)]
    # the order of the directories decides
    runs = script.collect([tmp_path / "b", tmp_path / "a"])
    assert {(r["model"], r["seed"]): r["final"] for r in runs}[("two_hidden", 0)] == 4.0
    table = script.table(runs)
    assert "| `two_hidden` seed 0 | rate (numpy) | 3.2 % | **4.00 %** | 2.0 | 1: 5.00, 2: 4.00 |" in table
