"""The paper's condition model files and ``brian-dendrite sweep`` (Dask distributed)."""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest
from brian2 import ms
from conftest import mnist_dir

from brian_dendrite.model import available_models, load_model
from brian_dendrite.paper import TEST_ERRORS
from brian_dendrite.sweeps import RESULT_COLUMNS, add_sweep_arguments, format_table, run_sweep_from_args
from brian_dendrite.sweeps._runner import _client_side_failure, build_specs, submission_order
from brian_dendrite.training import parse_models, parse_seeds

# name -> (hidden, learning rates, feedback, sparse gain, g_A in 1/ms, stochastic plateau)
CONDITIONS = {
    "sparse_feedback": ((500,), (0.21, 0.21), "sparse", 5.0, 0.0, False),
    "sparse_feedback_unamplified": ((500,), (0.21, 0.21), "sparse", 1.0, 0.0, False),
    "symmetric_feedback": ((500,), (0.21, 0.21), "symmetric", None, 0.0, False),
    "noisy_symmetric_feedback": ((500,), (0.21, 0.21), "noisy_symmetric", None, 0.0, False),
    "stochastic_plateau": ((500,), (0.21, 0.21), "random", None, 0.0, True),
    "two_hidden_apical_0_05": ((500, 100), (0.23, 0.23, 0.12), "random", None, 0.05, False),
    "two_hidden_apical_0_6": ((500, 100), (0.23, 0.23, 0.12), "random", None, 0.6, False),
}


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_condition_model_files(name):
    hidden, rates, feedback, gain, g_A, stochastic = CONDITIONS[name]
    assert name in available_models()
    p = load_model(name)
    assert p.name == name
    assert "Fig." in p.description
    assert p.network.hidden == hidden
    assert p.network.learning_rates == rates
    assert p.network.feedback == feedback
    if feedback == "sparse":
        assert p.network.sparse_fraction == 0.8
        assert p.network.sparse_gain == gain
    if feedback == "noisy_symmetric":
        assert p.network.symmetric_noise == 0.05
    assert float(p.cell.g_A * ms) == pytest.approx(g_A)
    assert p.protocol.stochastic_plateau is stochastic
    if stochastic:
        assert p.protocol.plateau_offset_sd == 3 * ms and p.protocol.plateau_offset_max == 5 * ms
    # everything else is the paper's default
    assert p.cell.g_B == 0.6 / ms and p.cell.g_L == 0.1 / ms
    assert p.network.feedback_spiking and not p.network.feedback_bias


def test_condition_descriptions_cite_the_paper_numbers():
    for name, value in TEST_ERRORS.items():
        assert f"{value} %" in load_model(name).description
    assert "4.1 %" in load_model("sparse_feedback").description  # the regular network it is compared with
    assert load_model("two_hidden_apical_0_05").cell.k_B == pytest.approx(0.8)
    assert load_model("two_hidden_apical_0_6").cell.k_B == pytest.approx(0.6 / 1.3)


def test_parse_lists():
    assert parse_seeds("0,1,5-7,1") == [0, 1, 5, 6, 7]
    assert parse_models(" a, b.toml ,") == ["a", "b.toml"]
    for bad in ("", "x", "-1", "3-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_seeds(bad)


def _parser():
    parser = argparse.ArgumentParser(prog="brian-dendrite sweep")
    add_sweep_arguments(parser)
    return parser


def _rows(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == RESULT_COLUMNS
        return {(r["model"], int(r["seed"])): r for r in reader}


TINY = """name = "{name}"
description = "a tiny network for the sweep tests"

[network]
hidden = [20]
learning_rates = {rates}
feedback = "{feedback}"
"""


def test_sweep_rate_grid_rerun_and_failure(tmp_path, capsys):
    import distributed  # noqa: F401 - a core dependency: missing must fail, not skip
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny_random.toml").write_text(TINY.format(name="tiny_random", rates="[0.21, 0.21]",
                                                          feedback="random"))
    (models / "tiny_sparse.toml").write_text(TINY.format(name="tiny_sparse", rates="[0.21, 0.21]",
                                                          feedback="sparse"))
    # invalid: two layers need two learning rates
    (models / "tiny_bad.toml").write_text(TINY.format(name="tiny_bad", rates="[0.21]", feedback="random"))
    out = tmp_path / "sweep"
    argv = ["--models", ",".join(str(models / f"{m}.toml") for m in ("tiny_random", "tiny_sparse", "tiny_bad")),
            "--seeds", "0,1", "--kind", "rate", "--examples", "300", "--test-examples", "200",
            "--data-dir", str(mnist_dir()), "--output", str(out)]

    assert run_sweep_from_args(_parser().parse_args([*argv, "--workers", "2"])) == 1
    rows = _rows(out / "results.csv")
    assert len(rows) == 6
    summaries = {}
    for model in ("tiny_random", "tiny_sparse"):
        for seed in (0, 1):
            r = rows[(model, seed)]
            assert r["status"] == "done", r
            assert r["kind"] == "rate" and int(r["examples"]) == 300 and int(r["test_images"]) == 200
            assert 0 <= float(r["final_test_error"]) <= 100
            assert float(r["ms_per_example"]) > 0 and float(r["wall_seconds"]) > 0
            task = out / model / f"seed{seed}"
            summary = json.loads((task / "summary.json").read_text())
            assert summary["model"] == model and summary["seed"] == seed
            assert summary["final_test_error"] == pytest.approx(float(r["final_test_error"]))
            assert not (task / "error.txt").exists()
            summaries[(model, seed)] = (task / "summary.json").stat().st_mtime_ns
    # different seeds, different networks
    w0, w1 = (np.load(out / "tiny_random" / f"seed{s}" / "weights.npz") for s in (0, 1))
    assert any(not np.array_equal(w0[k], w1[k]) for k in w0.files)
    for seed in (0, 1):
        r = rows[("tiny_bad", seed)]
        assert r["status"] == "failed"
        assert "learning_rates" in r["error"]
        assert "learning_rates" in (out / "tiny_bad" / f"seed{seed}" / "error.txt").read_text()
        assert not (out / "tiny_bad" / f"seed{seed}" / "summary.json").exists()
    table = capsys.readouterr().out
    assert "failed: tiny_bad seed 0" in table and "tiny_sparse" in table
    results = json.loads((out / "results.json").read_text())
    assert len(results["results"]) == 6 and results["sweep"]["examples"] == 300

    # rerun: the finished tasks are skipped (their files untouched), the failed one is tried again
    assert run_sweep_from_args(_parser().parse_args([*argv, "--workers", "2"])) == 1
    again = _rows(out / "results.csv")
    for key, mtime in summaries.items():
        assert again[key]["status"] == "skipped"
        assert again[key]["final_test_error"] == rows[key]["final_test_error"]
        assert (out / key[0] / f"seed{key[1]}" / "summary.json").stat().st_mtime_ns == mtime
    assert again[("tiny_bad", 0)]["status"] == "failed"
    assert "skipped" in capsys.readouterr().out

    # a finished sweep starts no cluster at all: only the good models
    argv_good = [*argv]
    argv_good[1] = ",".join(str(models / f"{m}.toml") for m in ("tiny_random", "tiny_sparse"))
    assert run_sweep_from_args(_parser().parse_args(argv_good)) == 0
    assert {r["status"] for r in _rows(out / "results.csv").values()} == {"skipped"}


def test_submission_order(tmp_path):
    specs = build_specs(["one_hidden", "no_hidden", "two_hidden"], [3, 0, 1], kind="rate", target="cython",
                        n_examples=10, test_examples=0, test_every=None, initial_test=False, chunk_size=1000,
                        data_dir=None, output=tmp_path)
    key = [(s["label"], s["seed"]) for s in specs]
    assert key[:3] == [("one_hidden", 3), ("one_hidden", 0), ("one_hidden", 1)]  # grid order: models, then seeds
    todo = [i for i in range(len(specs)) if key[i] != ("no_hidden", 3)]  # one task already done
    by_seed = [key[i] for i in submission_order(specs, todo, "seeds")]
    assert by_seed == [("one_hidden", 3), ("two_hidden", 3),
                       ("one_hidden", 0), ("no_hidden", 0), ("two_hidden", 0),
                       ("one_hidden", 1), ("no_hidden", 1), ("two_hidden", 1)]
    assert submission_order(specs, todo, "models") == todo
    with pytest.raises(ValueError, match="order"):
        submission_order(specs, todo, "random")


def test_sweep_starts_tasks_seed_major_on_one_worker(tmp_path):
    """With one worker the tasks run one after the other in the --order asked for."""
    import distributed  # noqa: F401 - a core dependency: missing must fail, not skip
    models = tmp_path / "models"
    models.mkdir()
    for name in ("tiny_a", "tiny_b"):
        (models / f"{name}.toml").write_text(TINY.format(name=name, rates="[0.21, 0.21]", feedback="random"))
    for order, expected in (("seeds", [("tiny_a", 0), ("tiny_b", 0), ("tiny_a", 1), ("tiny_b", 1)]),
                            ("models", [("tiny_a", 0), ("tiny_a", 1), ("tiny_b", 0), ("tiny_b", 1)])):
        out = tmp_path / order
        argv = ["--models", ",".join(str(models / f"{m}.toml") for m in ("tiny_a", "tiny_b")),
                "--seeds", "0,1", "--kind", "rate", "--examples", "50", "--test-examples", "0",
                "--data-dir", str(mnist_dir()), "--output", str(out), "--workers", "1", "--order", order, "--quiet"]
        assert run_sweep_from_args(_parser().parse_args(argv)) == 0
        done = {k: (out / k[0] / f"seed{k[1]}" / "summary.json").stat().st_mtime_ns for k in expected}
        assert sorted(done, key=done.get) == expected, order
        assert json.loads((out / "results.json").read_text())["sweep"]["order"] == order
    with pytest.raises(SystemExit):
        _parser().parse_args(["--models", "one_hidden", "--order", "random"])


def test_sweep_rejects_bad_arguments(tmp_path):
    import distributed  # noqa: F401 - a core dependency: missing must fail, not skip
    parser = _parser()
    base = ["--models", "one_hidden", "--output", str(tmp_path / "s")]
    with pytest.raises(ValueError, match="--workers"):
        run_sweep_from_args(parser.parse_args([*base, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]))
    with pytest.raises(ValueError, match="training examples"):
        run_sweep_from_args(parser.parse_args([*base, "--examples", "0"]))
    with pytest.raises(FileNotFoundError):
        run_sweep_from_args(parser.parse_args(["--models", str(tmp_path / "missing.toml"),
                                               "--output", str(tmp_path / "s")]))
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for d in (a, b):
        (d / "same.toml").write_text(TINY.format(name="same", rates="[0.21, 0.21]", feedback="random"))
    with pytest.raises(ValueError, match="share the output directory"):
        run_sweep_from_args(parser.parse_args(["--models", f"{a / 'same.toml'},{b / 'same.toml'}",
                                               "--output", str(tmp_path / "s")]))


def test_client_side_failure_is_reported(tmp_path):
    spec = {"label": "one_hidden", "seed": 3, "kind": "spiking", "target": "cython", "examples": 10,
            "test_examples": 5, "output": str(tmp_path / "one_hidden" / "seed3")}
    try:
        raise RuntimeError("worker killed")
    except RuntimeError as err:
        row = _client_side_failure(spec, err)
    assert row["status"] == "failed" and "worker killed" in row["error"]
    assert row["paper_test_error"] == 4.1
    assert "worker killed" in (tmp_path / "one_hidden" / "seed3" / "error.txt").read_text()
    assert "one_hidden" in format_table([row]) and "failed" in format_table([row])


@pytest.mark.slow
@pytest.mark.parametrize("target", ["numpy", pytest.param("cpp_standalone", marks=pytest.mark.standalone)])
def test_sweep_spiking_one_worker_two_seeds_and_resume(tmp_path, target):
    """Two spiking tasks in one worker process (the Brian2 device is reset between them), then a resume."""
    import distributed  # noqa: F401 - a core dependency: missing must fail, not skip
    model = tmp_path / "tiny_random.toml"
    model.write_text(TINY.format(name="tiny_random", rates="[0.21, 0.21]", feedback="random"))
    out = tmp_path / "sweep"
    argv = ["--models", str(model), "--seeds", "0,1", "--kind", "spiking", "--target", target,
            "--examples", "20", "--chunk-size", "10", "--test-examples", "10",
            "--data-dir", str(mnist_dir()), "--output", str(out), "--workers", "1"]
    assert run_sweep_from_args(_parser().parse_args(argv)) == 0
    rows = _rows(out / "results.csv")
    assert {r["status"] for r in rows.values()} == {"done"}
    assert {r["target"] for r in rows.values()} == {target}
    for seed in (0, 1):
        assert (out / "tiny_random" / f"seed{seed}" / "checkpoint.npz").exists()
        if target == "cpp_standalone":  # a private build per task
            assert any((out / "tiny_random" / f"seed{seed}" / "build").iterdir())
    # more examples: the task resumes from its checkpoint instead of starting again
    argv[argv.index("--examples") + 1] = "30"
    argv[argv.index("--seeds") + 1] = "0"
    assert run_sweep_from_args(_parser().parse_args(argv)) == 0
    summary = json.loads((out / "tiny_random" / "seed0" / "summary.json").read_text())
    assert summary["examples_trained"] == 30
    assert [h["examples"] for h in summary["test_history"]] == [20, 30]
    assert "resumed from" in (out / "tiny_random" / "seed0" / "task.log").read_text()


def test_dask_malloc_setting_is_undone(monkeypatch):
    from brian_dendrite.sweeps._tasks import _undo_dask_malloc_settings

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    _undo_dask_malloc_settings()
    import os

    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ


def test_summary_parameters_written_before_a_new_field_still_match():
    """A run finished before a parameter field existed answers a task that uses the field's default."""
    from brian_dendrite.model import load_model
    from brian_dendrite.sweeps._tasks import _same_parameters

    params = load_model("one_hidden")
    saved = json.loads(json.dumps(params.to_dict()))
    assert _same_parameters(saved, params)
    del saved["cell"]["kernel_gain"]  # as written by the code before kernel_gain existed
    assert _same_parameters(saved, params)
    assert not _same_parameters(saved, params.replace(cell=params.cell.replace(kernel_gain=2.0)))
    changed = json.loads(json.dumps(params.to_dict()))
    changed["network"]["learning_rates"] = [0.1, 0.21]
    assert not _same_parameters(changed, params)
    changed = json.loads(json.dumps(params.to_dict()))
    changed["cell"]["no_such_field"] = 1
    assert not _same_parameters(changed, params)
    assert not _same_parameters(None, params)


def test_paper_numbers_are_the_papers_conditions_with_their_sources():
    from brian_dendrite.paper import REPORTED, STATEMENTS

    # specification section 3: the test errors (%) the paper's text states after 60 epochs
    assert TEST_ERRORS == {"no_hidden": 8.3, "one_hidden": 4.1, "two_hidden": 3.2, "sparse_feedback": 3.7,
                           "symmetric_feedback": 3.6}
    assert set(TEST_ERRORS) | set(STATEMENTS) == set(REPORTED)
    for name, reported in REPORTED.items():
        assert name in available_models()
        assert "Fig." in reported.source


def test_train_and_sweep_share_the_training_options():
    from brian_dendrite.cli import build_parser

    train = build_parser().parse_args(["train"])
    sweep = build_parser().parse_args(["sweep", "--models", "one_hidden"])
    for option in ("kind", "target", "examples", "epochs", "test_examples", "test_every", "initial_test",
                   "chunk_size", "data_dir"):
        assert getattr(train, option) == getattr(sweep, option), option
    assert (train.model, train.seed) == ("one_hidden", 0) and (sweep.models, sweep.seeds) == (["one_hidden"], [0])
