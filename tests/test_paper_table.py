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


# --- seeds_table.py: the table over seeds, its intervals and the paper's orderings ---------------------------

@pytest.fixture(scope="module")
def seeds():
    import importlib.util

    from conftest import REPO

    path = REPO / "validation" / "studies" / "paper_table" / "seeds_table.py"
    spec = importlib.util.spec_from_file_location("seeds_table_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _curve(final, epochs=60):
    # a learning curve that ends at `final` (epochs 1..60), decreasing
    return [final + 2.0 * (epochs - k) / epochs for k in range(1, epochs + 1)]


def test_t_interval_matches_the_textbook_formula(seeds):
    ci = seeds.interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, sd sqrt(2.5), t_{0.975,4} = 2.776445
    half = 2.7764451051977987 * (2.5 ** 0.5) / 5 ** 0.5
    assert ci["mean"] == pytest.approx(3.0) and ci["sd"] == pytest.approx(2.5 ** 0.5)
    assert ci["low"] == pytest.approx(3.0 - half) and ci["high"] == pytest.approx(3.0 + half)
    assert seeds.interval([2.0])["low"] is None


def test_verdicts(seeds):
    assert seeds.verdict("<", {"low": -0.5, "high": -0.1}) == "reproduced"
    assert seeds.verdict("<", {"low": 0.1, "high": 0.5}) == "reversed"
    assert seeds.verdict("<", {"low": -0.1, "high": 0.5}) == "not resolved"
    assert seeds.verdict("~", {"low": -0.1, "high": 0.1}) == "reproduced"
    assert seeds.verdict("~", {"low": -0.6, "high": 0.6}) == "not resolved"
    assert seeds.verdict("~", {"low": 0.3, "high": 0.6}) == "different"
    assert seeds.verdict("<", {"low": None, "high": None}) == "too few seeds"


def test_collect_and_table_from_summaries(seeds, tmp_path):
    sweep = tmp_path / "sweep"
    # one_hidden worse than two_hidden in every seed by 0.5-0.7 points; symmetric equal to one_hidden
    for seed, (one, two) in enumerate([(2.0, 1.5), (2.2, 1.6), (1.9, 1.3)]):
        _summary(sweep, "one_hidden", _curve(one), seed=seed)
        _summary(sweep, "two_hidden", _curve(two), seed=seed)
        _summary(sweep, "symmetric_feedback", _curve(one + (0.1 if seed % 2 else -0.1)), seed=seed)
    _summary(sweep, "no_hidden", _curve(8.0)[:30], seed=0)  # incomplete: tested to epoch 30 only
    committed = tmp_path / "summaries"
    written = seeds.collect([sweep], committed)
    assert len(written) == 10 and (committed / "rate" / "two_hidden" / "seed2.json").is_file()
    out = tmp_path / "out"
    assert seeds.main(["table", "--summaries", str(committed), "--out", str(out)]) == 0
    result = json.loads((out / "seeds_table.json").read_text())
    by_model = {r["model"]: r for r in result["conditions"]}
    assert by_model["two_hidden"]["final"]["n"] == 3
    assert by_model["two_hidden"]["final"]["mean"] == pytest.approx((1.5 + 1.6 + 1.3) / 3)
    assert by_model["no_hidden"]["incomplete_seeds"] == [0]
    by_pair = {(p["a"], p["b"]): p for p in result["orderings"]}
    assert by_pair[("two_hidden", "one_hidden")]["verdict"] == "reproduced"
    assert by_pair[("two_hidden", "one_hidden")]["difference"]["mean"] == pytest.approx(-0.5666666, abs=1e-6)
    assert by_pair[("symmetric_feedback", "one_hidden")]["verdict"] == "not resolved"
    assert by_pair[("one_hidden", "no_hidden")]["verdict"] == "too few seeds"
    assert "| two_hidden | < | one_hidden |" in (out / "seeds_table.md").read_text()
    assert (out / "learning_curves_seeds_rate.png").stat().st_size > 1000


def test_collect_refuses_what_is_not_a_summary(seeds, tmp_path):
    bad = tmp_path / "sweep" / "one_hidden" / "seed0"
    bad.mkdir(parents=True)
    (bad / "summary.json").write_text(json.dumps({"model": "one_hidden"}))
    with pytest.raises(ValueError, match="not a run summary"):
        seeds.collect([tmp_path / "sweep"], tmp_path / "summaries")
    with pytest.raises(FileNotFoundError, match="no such sweep directory"):
        seeds.collect([tmp_path / "nowhere"], tmp_path / "summaries")


def _checkpoint(run: Path, model: str, errors, examples: int, seed=0):
    """A spiking run's checkpoint as the trainer writes it (weights, meta with progress and test history)."""
    import numpy as np

    from brian_dendrite.model import initial_weights, load_model
    from brian_dendrite.training._common import save_checkpoint

    params = load_model(model)
    run.mkdir(parents=True)
    hist = [{"examples": 60000 * (k + 1), "test_error": e, "test_images": 10000} for k, e in enumerate(errors)]
    meta = {"progress": {"epoch": examples // 60000, "offset": examples % 60000, "examples": examples,
                         "train_seconds": 1.0, "chunk_ms_per_example": [9.0, 3.0, 2.0, 4.0]},
            "history": hist, "seed": seed, "chunk_size": 10000, "params": params.to_toml(),
            "target": "cpp_standalone", "code_history": [{"from_examples": 0, "git_commit": None}]}
    save_checkpoint(run / "checkpoint.npz", initial_weights(params, np.random.default_rng(0)), meta)


def test_collect_partial_runs_from_checkpoints(seeds, tmp_path):
    committed = tmp_path / "summaries"
    old = tmp_path / "old"  # a finished 2-epoch spiking run
    _summary(old, "one_hidden", [9.0, 8.0], kind="spiking")
    assert len(seeds.collect([old], committed)) == 1
    # an unfinished run in a train --output folder: collected only with partial=True
    run = tmp_path / "one_hidden_seed0"
    _checkpoint(run, "one_hidden", [9.5], examples=70000)
    assert seeds.collect([run], committed) == []
    assert seeds.collect([run], committed, commit="1234abc", partial=True) == []  # shorter than the finished run
    _checkpoint(tmp_path / "longer", "one_hidden", [9.5, 8.5, 7.5], examples=190000)
    (written,) = seeds.collect([tmp_path / "longer"], committed, commit="1234abc", partial=True)
    summary = json.loads(written.read_text())
    assert summary["status"] == "in progress" and summary["final_test_error"] is None
    assert summary["model"] == "one_hidden" and summary["kind"] == "spiking" and summary["seed"] == 0
    assert summary["examples_trained"] == 190000 and summary["ms_per_example_median_chunk"] == 3.0
    assert [h["test_error"] for h in summary["test_history"]] == [9.5, 8.5, 7.5]
    assert summary["code_history"][0]["git_commit"] == "1234abc"
    # the table counts it as incomplete, not as a 60-epoch result
    rows = {r["model"]: r for r in seeds.conditions(seeds.load(committed, "spiking"))}
    assert rows["one_hidden"]["incomplete_seeds"] == [0] and rows["one_hidden"]["final"]["n"] == 0
    # the finished run replaces the partial one
    done = tmp_path / "done"
    _summary(done, "one_hidden", [9.0, 8.0, 7.0, 6.5], kind="spiking")
    seeds.collect([done], committed)
    assert "status" not in json.loads(written.read_text())
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "checkpoint.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="unreadable checkpoint"):
        seeds.collect([tmp_path / "broken"], committed, partial=True)


def test_spiking_vs_rate_table_and_figure(seeds, tmp_path):
    import importlib.util

    from conftest import REPO

    path = REPO / "validation" / "studies" / "paper_table" / "spiking_vs_rate.py"
    spec = importlib.util.spec_from_file_location("spiking_vs_rate_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    sweep = tmp_path / "sweep"
    for seed, final in enumerate([2.0, 2.2]):
        _summary(sweep, "one_hidden", _curve(final), seed=seed)
    committed = tmp_path / "summaries"
    seeds.collect([sweep], committed)
    _checkpoint(tmp_path / "run", "one_hidden", [9.5, 8.5], examples=150000)
    seeds.collect([tmp_path / "run"], committed, partial=True)
    out = tmp_path / "out"
    assert script.main(["--summaries", str(committed), "--out", str(out)]) == 0
    text = (out / "spiking_vs_rate.md").read_text()
    assert "| one_hidden | 0 | in progress (2.50 epochs trained) | 9.50 | 8.50 | - |" in text
    rate_1 = (_curve(2.0)[0] + _curve(2.2)[0]) / 2
    assert f"| one_hidden (rate) | mean | 2 seeds | {rate_1:.2f} (2) |" in text
    assert (out / "learning_curves_spiking_vs_rate.png").stat().st_size > 1000
    assert script.main(["--summaries", str(tmp_path / "empty"), "--out", str(out)]) == 2
