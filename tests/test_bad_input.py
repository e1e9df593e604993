"""The written list of bad inputs of every command and what each one must answer (issue 17).

One parametrised test per command (``train``, ``test``, ``validate``, ``export``,
``plot``, ``sweep``, ``cell``). Every case is a command line, the exit status it
must end with, a regular expression that its standard error must match (the
message names the option or file that is wrong), and the promise that nothing
already computed is lost: every file of an existing run directory (and of the other
folders the cases point at) has the same bytes and modification time afterwards,
and a refused command creates no output directory. The cases run the command in
this process (``brian_dendrite.cli.main``), on a 784-5-10 network and a rate run of
20 examples made once for the module.

Faults that are not bad input (``kill -9``, a full disk) are in
``tests/test_interruption.py``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from conftest import mnist_dir

from brian_dendrite.cli import main
from brian_dendrite.model import load_model

TINY_HIDDEN = (5,)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files the cases point at: models, a finished rate run, corrupt copies of its files, odd paths."""
    root = tmp_path_factory.mktemp("world")
    p = load_model("one_hidden")
    p = p.replace(name="tiny", description="784-5-10, for the bad-input tests",
                  network=p.network.replace(hidden=TINY_HIDDEN))
    text = p.to_toml()
    (root / "tiny.toml").write_text(text)
    (root / "bad_syntax.toml").write_text("this is [not toml\n")
    bad = re.sub(r"learning_rates = \[.*\]", "learning_rates = [0.21]", text)
    assert bad != text
    (root / "bad_value.toml").write_text(bad)
    run = root / "run"
    argv = ["train", "--kind", "rate", "--model", str(root / "tiny.toml"), "--examples", "20", "--test-every", "10",
            "--test-examples", "20", "--data-dir", str(mnist_dir()), "--output", str(run), "--no-progress"]
    assert main(argv) == 0
    for name in ("checkpoint.npz", "weights.npz", "summary.json"):
        assert (run / name).is_file()
    corrupt = root / "corrupt"
    corrupt.mkdir()
    for name in ("checkpoint.npz", "weights.npz"):
        data = (run / name).read_bytes()
        (corrupt / name).write_bytes(data[: len(data) // 2])
    data = (run / "weights.npz").read_bytes()
    (corrupt / "recording.npz").write_bytes(data[: len(data) // 2])
    (corrupt / "summary.json").write_text('{"model": "tiny", ')
    (root / "notes.txt").write_text("not an archive\n")
    (root / "empty").mkdir()
    (root / "other").mkdir()  # a second model file named tiny.toml
    (root / "other" / "tiny.toml").write_text(text.replace("784-5-10", "784-5-10 (the other file)"))
    (root / "lonely").mkdir()  # weights without the summary of their run
    (root / "lonely" / "weights.npz").write_bytes((run / "weights.npz").read_bytes())
    (root / "badsummary").mkdir()  # weights beside a summary that is not JSON
    (root / "badsummary" / "weights.npz").write_bytes((run / "weights.npz").read_bytes())
    (root / "badsummary" / "summary.json").write_text("{")
    spiking = root / "spiking"  # a finished spiking run of 10 examples, untested
    assert main(["train", "--model", str(root / "tiny.toml"), "--examples", "10", "--chunk-size", "10",
                 "--target", "numpy", "--test-examples", "0", "--data-dir", str(mnist_dir()),
                 "--output", str(spiking), "--no-progress"]) == 0
    (run / "figures").mkdir()
    (run / "figures" / "cell.png").write_bytes(b"an earlier figure")
    return root


def _paths(world: Path, tmp_path: Path) -> dict[str, str]:
    return {
        "model": str(world / "tiny.toml"), "bad_syntax": str(world / "bad_syntax.toml"),
        "bad_value": str(world / "bad_value.toml"), "missing_model": str(world / "missing.toml"),
        "run": str(world / "run"), "weights": str(world / "run" / "weights.npz"),
        "checkpoint": str(world / "run" / "checkpoint.npz"), "summary": str(world / "run" / "summary.json"),
        "corrupt": str(world / "corrupt"), "file": str(world / "notes.txt"), "empty": str(world / "empty"),
        "missing": str(world / "missing.npz"), "new": str(tmp_path / "new"), "data": str(mnist_dir()),
        "nodir": str(tmp_path / "no_such_folder" / "out"), "other": str(world / "other"),
        "lonely": str(world / "lonely"), "badsummary": str(world / "badsummary"), "spiking": str(world / "spiking"),
    }


def _hashes(world: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``world``: relative path -> (sha256 of the bytes, mtime in ns)."""
    return {str(p.relative_to(world)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(world.rglob("*")) if p.is_file()}


def check_case(world, tmp_path, capsys, argv, status, message):
    """Run ``argv``; assert the exit status, the message on stderr, and that nothing computed was touched."""
    paths = _paths(world, tmp_path)
    argv = [a.format(**paths) for a in argv]
    before = _hashes(world)
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == status, f"{argv}: exit {rc}, expected {status}; stderr:\n{err}"
    assert re.search(message, err), f"{argv}: stderr does not match {message!r}:\n{err}"
    after = _hashes(world)
    changed = [k for k in before if after.get(k) != before[k]]
    assert not changed, f"{argv}: changed or removed {changed}"
    # a new file is allowed only where a command may put output (figures); never a temporary file
    new = [k for k in after if k not in before]
    assert all("figures" in Path(k).parts and ".tmp" not in k for k in new), f"{argv}: left {new}"
    assert not Path(paths["new"]).exists(), f"{argv}: created {paths['new']}"
    assert "Traceback" not in err


def _cases(rows):
    return [pytest.param(argv, status, message, id=name) for name, argv, status, message in rows]


TRAIN_BASE = ["train", "--model", "{model}", "--examples", "20", "--chunk-size", "10", "--target", "numpy",
              "--data-dir", "{data}", "--no-progress"]
RATE = ["--kind", "rate", "--test-every", "10", "--test-examples", "20"]

#: train: (id, extra arguments, exit status, stderr regex)
TRAIN_CASES = [
    ("unknown-model", ["--model", "no_such_model", "--output", "{new}"], 2, r"no_such_model"),
    ("missing-model-file", ["--model", "{missing_model}", "--output", "{new}"], 2, r"missing\.toml"),
    ("model-file-not-toml", ["--model", "{bad_syntax}", "--output", "{new}"], 2, r"bad_syntax\.toml"),
    ("model-file-invalid-value", ["--model", "{bad_value}", "--output", "{new}"], 2, r"learning_rates"),
    ("zero-examples", ["--examples", "0", "--output", "{new}"], 2, r"--examples 0 gives no training examples"),
    ("negative-epochs", ["--epochs", "-1", "--output", "{new}"], 2, r"--epochs -1 gives no training examples"),
    ("examples-not-a-number", ["--examples", "ten", "--output", "{new}"], 2, r"--examples: invalid int value"),
    ("unknown-kind", ["--kind", "analog", "--output", "{new}"], 2, r"--kind: invalid choice"),
    ("unknown-target", ["--target", "gpu", "--output", "{new}"], 2, r"--target: invalid choice"),
    ("negative-test-examples", ["--test-examples", "-1", "--output", "{new}"], 2, r"--test-examples = -1"),
    ("negative-test-every", ["--test-every", "-5", "--output", "{new}"], 2, r"--test-every = -5"),
    ("zero-chunk-size", ["--chunk-size", "0", "--output", "{new}"], 2, r"--chunk-size = 0"),
    ("negative-record", ["--record", "-1", "--output", "{new}"], 2, r"--record = -1"),
    ("record-with-rate", [*RATE, "--record", "3", "--output", "{new}"], 2, r"--record = 3: .*--kind rate"),
    ("record-more-than-mnist", ["--record", "70000", "--output", "{new}"], 2, r"--record = 70000: more than"),
    ("missing-data-dir", ["--data-dir", "{nodir}", "--output", "{new}"], 2, r"no_such_folder"),
    ("empty-data-dir", ["--data-dir", "{empty}", "--output", "{new}"], 2, r"empty"),
    ("output-is-a-file", [*RATE, "--output", "{file}"], 2, r"notes\.txt.*not writable"),
    ("existing-run-without-resume", [*RATE, "--output", "{run}"], 2, r"checkpoint\.npz exists: pass --resume"),
    ("resume-other-seed", [*RATE, "--seed", "9", "--resume", "--output", "{run}"], 2, r"seed 0.*seed 9"),
    ("resume-other-test-every", [*RATE, "--test-every", "5", "--resume", "--output", "{run}"], 2,
     r"test_every 10.*test_every 5"),
    ("resume-other-model", [*RATE, "--model", "one_hidden", "--resume", "--output", "{run}"], 2,
     r"checkpoint\.npz was written for another run"),
    ("resume-fewer-examples", [*RATE, "--examples", "10", "--resume", "--output", "{run}"], 2,
     r"cannot train fewer"),
    ("resume-spiking-fewer-examples", ["--examples", "5", "--resume", "--output", "{spiking}"], 2,
     r"after 10 examples; this run asks for 5: it cannot train fewer"),
    ("resume-rate-checkpoint-as-spiking", ["--resume", "--output", "{run}"], 2, r"from rate training"),
    ("resume-corrupt-checkpoint", [*RATE, "--resume", "--output", "{corrupt}"], 2,
     r"checkpoint .*corrupt.*checkpoint\.npz|corrupt"),
]


@pytest.mark.parametrize(("extra", "status", "message"), _cases(TRAIN_CASES))
def test_train_bad_input(extra, status, message, world, tmp_path, capsys):
    base = list(TRAIN_BASE)
    if "--epochs" in extra:  # --examples would take precedence
        del base[base.index("--examples"):base.index("--examples") + 2]
    check_case(world, tmp_path, capsys, [*base, *extra], status, message)


#: test: (id, arguments, exit status, stderr regex)
TEST_CASES = [
    ("missing-weights", ["test", "{missing}", "--model", "{model}"], 2, r"missing\.npz"),
    ("weights-is-a-directory", ["test", "{empty}", "--model", "{model}"], 2, r"empty"),
    ("weights-is-text", ["test", "{file}", "--model", "{model}"], 2, r"notes\.txt"),
    ("weights-truncated", ["test", "{corrupt}/weights.npz", "--model", "{model}"], 2, r"corrupt.weights\.npz"),
    ("weights-of-another-model", ["test", "{weights}", "--model", "one_hidden"], 2,
     r"weights\.npz does not fit model 'one_hidden'"),
    ("missing-model-file", ["test", "{weights}", "--model", "{missing_model}"], 2, r"missing\.toml"),
    ("no-model-no-summary", ["test", "{lonely}/weights.npz"], 2, r"no --model given and no .*lonely.summary\.json"),
    ("summary-unreadable", ["test", "{badsummary}/weights.npz"], 2, r"badsummary.summary\.json is not a readable"),
    ("zero-test-examples", ["test", "{weights}", "--test-examples", "0"], 2, r"--test-examples = 0"),
    ("unknown-target", ["test", "{weights}", "--target", "gpu"], 2, r"--target: invalid choice"),
]


@pytest.mark.parametrize(("argv", "status", "message"), _cases(TEST_CASES))
def test_test_bad_input(argv, status, message, world, tmp_path, capsys):
    check_case(world, tmp_path, capsys, [*argv, "--data-dir", "{data}"], status, message)


#: validate: (id, arguments, exit status, stderr regex); --output points at an existing run
VALIDATE_CASES = [
    ("unknown-check", ["validate", "--checks", "rates,telepathy", "--output", "{run}"], 2, r"telepathy"),
    ("unknown-tier", ["validate", "--tier", "huge", "--output", "{run}"], 2, r"--tier: invalid choice"),
    ("unknown-target", ["validate", "--target", "gpu", "--output", "{run}"], 2, r"--target: invalid choice"),
    ("seed-not-a-number", ["validate", "--seed", "x", "--output", "{run}"], 2, r"--seed: invalid int value"),
    ("missing-data-dir", ["validate", "--checks", "learning", "--data-dir", "{nodir}", "--output", "{new}"], 2,
     r"no_such_folder"),
]


@pytest.mark.parametrize(("argv", "status", "message"), _cases(VALIDATE_CASES))
def test_validate_bad_input(argv, status, message, world, tmp_path, capsys):
    check_case(world, tmp_path, capsys, argv, status, message)


#: export (NWB): (id, arguments, exit status, stderr regex)
EXPORT_CASES = [
    ("missing-recording", ["export", "{missing}"], 2, r"missing\.npz"),
    ("run-without-recording", ["export", "{run}"], 2, r"recording\.npz"),
    ("weights-not-a-recording", ["export", "{weights}", "--output", "{new}"], 2, r"weights\.npz"),
    ("text-not-a-recording", ["export", "{file}", "--output", "{new}"], 2, r"notes\.txt"),
    ("truncated-recording", ["export", "{corrupt}", "--output", "{new}"], 2, r"recording\.npz"),
    ("output-is-a-folder", ["export", "{corrupt}", "--output", "{empty}"], 2, r"--output .*empty is a folder"),
    ("output-folder-missing", ["export", "{corrupt}", "--output", "{nodir}/r.nwb"], 2,
     r"--output .*no_such_folder.* does not exist"),
]

#: export --format sonata: cases added when brian_dendrite/io/sonata.py exists (see SONATA_CASES below)


@pytest.mark.parametrize(("argv", "status", "message"), _cases(EXPORT_CASES))
def test_export_bad_input(argv, status, message, world, tmp_path, capsys):
    check_case(world, tmp_path, capsys, argv, status, message)


#: plot: (id, arguments, exit status, stderr regex)
PLOT_CASES = [
    ("missing-run", ["plot", "{nodir}"], 2, r"no_such_folder.* is not a run directory"),
    ("file-not-a-run", ["plot", "{file}"], 2, r"notes\.txt is not a run directory"),
    ("empty-run", ["plot", "{empty}", "--output", "{new}"], 2, r"has no summary\.json, weights\.npz or recording"),
    ("corrupt-files", ["plot", "{corrupt}", "--output", "{new}"], 2, r"corrupt.summary\.json"),
    ("output-is-a-file", ["plot", "{run}", "--output", "{file}"], 2, r"notes\.txt cannot be created"),
]


@pytest.mark.parametrize(("argv", "status", "message"), _cases(PLOT_CASES))
def test_plot_bad_input(argv, status, message, world, tmp_path, capsys):
    check_case(world, tmp_path, capsys, argv, status, message)


SWEEP_BASE = ["sweep", "--models", "{model}", "--kind", "rate", "--examples", "20", "--data-dir", "{data}"]

#: sweep: (id, extra arguments, exit status, stderr regex); all refused before a cluster starts
SWEEP_CASES = [
    ("missing-model-file", ["--models", "{missing_model}", "--output", "{new}"], 2, r"missing\.toml"),
    ("seeds-not-numbers", ["--seeds", "a,b", "--output", "{new}"], 2, r"--seeds: .*'a,b'"),
    ("seed-range-backwards", ["--seeds", "3-1", "--output", "{new}"], 2, r"--seeds: .*'3-1'"),
    ("zero-examples", ["--examples", "0", "--output", "{new}"], 2, r"training examples"),
    ("zero-workers", ["--workers", "0", "--output", "{new}"], 2, r"--workers = 0"),
    ("workers-and-scheduler", ["--workers", "2", "--scheduler", "tcp://127.0.0.1:1", "--output", "{new}"], 2,
     r"--workers .*--scheduler"),
    ("negative-test-examples", ["--test-examples", "-1", "--output", "{new}"], 2, r"--test-examples = -1"),
    ("negative-test-every", ["--test-every", "-1", "--output", "{new}"], 2, r"--test-every = -1"),
    ("zero-chunk-size", ["--chunk-size", "0", "--output", "{new}"], 2, r"--chunk-size = 0"),
    ("missing-data-dir", ["--data-dir", "{nodir}", "--output", "{new}"], 2, r"--data-dir .*no_such_folder"),
    ("unknown-kind", ["--kind", "analog", "--output", "{new}"], 2, r"--kind: invalid choice"),
    ("two-models-one-name", ["--models", "{model},{other}/tiny.toml", "--output", "{new}"], 2,
     r"share the output directory 'tiny'"),
    ("output-is-a-file", ["--output", "{file}"], 2, r"notes\.txt cannot be created"),
    ("refused-in-existing-folder", ["--workers", "0", "--output", "{run}"], 2, r"--workers = 0"),
]


@pytest.mark.parametrize(("extra", "status", "message"), _cases(SWEEP_CASES))
def test_sweep_bad_input(extra, status, message, world, tmp_path, capsys):
    pytest.importorskip("distributed")
    check_case(world, tmp_path, capsys, [*SWEEP_BASE, *extra], status, message)


#: cell: (id, arguments, exit status, stderr regex); --output points at an existing figure of the run
CELL_CASES = [
    ("basal-not-numbers", ["--basal", "a,b"], 2, r"--basal: .*'a,b'"),
    ("no-neurons", ["--basal="], 2, r"--basal: expected at least one"),
    ("basal-nan", ["--basal", "1,nan"], 2, r"basal_bias contains NaN"),
    ("apical-length", ["--apical", "1,2"], 2, r"--apical has 2 values for 3 neurons"),
    ("zero-phase", ["--phase", "0"], 2, r"--phase = 0: expected a positive"),
    ("negative-apical-drive", ["--apical-drive", "-5"], 2, r"--apical-drive = -5"),
    ("label-out-of-range", ["--kind", "output", "--label", "12"], 2, r"label = 12"),
    ("unknown-kind", ["--kind", "interneuron"], 2, r"--kind: invalid choice"),
    ("missing-model", ["--model", "{missing_model}"], 2, r"missing\.toml"),
    ("output-folder-missing", ["--output", "{nodir}/cell.png"], 2, r"--output .*no_such_folder"),
]


@pytest.mark.parametrize(("extra", "status", "message"), _cases(CELL_CASES))
def test_cell_bad_input(extra, status, message, world, tmp_path, capsys):
    argv = ["cell", "--target", "numpy", "--phase", "5", "--output", "{run}/figures/cell.png", *extra]
    check_case(world, tmp_path, capsys, argv, status, message)


# ---------------------------------------------------------------------------------------------
# export --format sonata (brian_dendrite/io/sonata.py, built by another change): its cases go here
# ---------------------------------------------------------------------------------------------
#: export --format sonata: (id, arguments, exit status, stderr regex)
SONATA_CASES = [
    ("missing-recording", ["export", "{missing}", "--format", "sonata"], 2, r"missing\.npz"),
    ("run-without-recording", ["export", "{run}", "--format", "sonata"], 2, r"has no recording\.npz"),
    ("truncated-recording", ["export", "{corrupt}", "--format", "sonata", "--output", "{new}"], 2,
     r"recording\.npz is not a readable"),
    ("inspect-is-for-nwb", ["export", "{corrupt}", "--format", "sonata", "--inspect"], 2, r"--inspect"),
    ("output-is-a-folder", ["export", "{corrupt}", "--format", "sonata", "--output", "{empty}"], 2,
     r"--output .*empty is a folder"),
    ("output-folder-missing", ["export", "{corrupt}", "--format", "sonata", "--output", "{nodir}/s.h5"], 2,
     r"--output .*no_such_folder.* does not exist"),
    ("unknown-sorting", ["export", "{corrupt}", "--format", "sonata", "--sorting", "random"], 2,
     r"--sorting: invalid choice"),
    ("unknown-format", ["export", "{corrupt}", "--format", "csv"], 2, r"--format: invalid choice"),
]


@pytest.mark.parametrize(("argv", "status", "message"), _cases(SONATA_CASES))
def test_export_sonata_bad_input(argv, status, message, world, tmp_path, capsys):
    pytest.importorskip("brian_dendrite.io.sonata")
    check_case(world, tmp_path, capsys, argv, status, message)


# ---------------------------------------------------------------------------------------------
# defects found while the list was written, and fixed
# ---------------------------------------------------------------------------------------------
def test_output_cut_short_by_its_reader_ends_quietly(tmp_path):
    """``brian-dendrite models | head``: formerly a BrokenPipeError traceback; now exit 141, nothing on stderr."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "brian_dendrite.cli", "models"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path)
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=300) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize(("first", "second"), [("0", None), (None, "0")])
def test_rate_resume_with_test_every_0_or_none(first, second, world, tmp_path, capsys):
    """``--test-every 0`` and no ``--test-every`` mean the same; formerly resuming across them was refused."""
    base = ["train", "--kind", "rate", "--model", str(world / "tiny.toml"), "--test-examples", "10", "--seed", "4",
            "--data-dir", str(mnist_dir()), "--no-progress"]

    def every(value):
        return [] if value is None else ["--test-every", value]

    assert main([*base, "--examples", "20", "--output", str(tmp_path / "whole")]) == 0
    assert main([*base, "--examples", "10", *every(first), "--output", str(tmp_path / "cut")]) == 0
    assert main([*base, "--examples", "20", *every(second), "--resume", "--output", str(tmp_path / "cut")]) == 0
    import numpy as np

    with np.load(tmp_path / "whole" / "weights.npz") as a, np.load(tmp_path / "cut" / "weights.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_sweep_without_test_images(world, tmp_path, capsys):
    """``sweep --test-examples 0`` (formerly refused): the tasks train untested; a rerun skips them."""
    pytest.importorskip("distributed")
    import json

    out = tmp_path / "sweep"
    argv = ["sweep", "--models", str(world / "tiny.toml"), "--kind", "rate", "--examples", "20",
            "--test-examples", "0", "--workers", "1", "--data-dir", str(mnist_dir()), "--output", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    (row,) = json.loads((out / "results.json").read_text())["results"]
    assert row["status"] == "done" and row["final_test_error"] is None and row["test_images"] is None
    summary = json.loads((out / "tiny" / "seed0" / "summary.json").read_text())
    assert summary["examples_trained"] == 20 and summary["test_history"] == []
    assert main(argv) == 0
    (row,) = json.loads((out / "results.json").read_text())["results"]
    assert row["status"] == "skipped"
