"""validation/studies/noise_cost/noise_cost.py end to end on a few examples."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from conftest import mnist_dir, validation_script


def test_noise_cost_trains_the_twin_and_reports(tmp_path):
    script = validation_script("noise_cost")
    model = "one_hidden_truncated_kernel_gain"
    twin = tmp_path / "twin"
    data = ["--data-dir", str(mnist_dir())]
    # 0.001 epochs = 60 examples, in chunks of 30
    assert script.main(["train", "--model", model, "--epochs", "0.001", "--chunk-size", "30", "--test-examples", "200",
                        "--out", str(twin), *data]) == 0
    twin_summary = json.loads((twin / "mean_field_summary.json").read_text())
    assert twin_summary["examples_trained"] == 60 and len(twin_summary["test_history"]) == 1
    # a stand-in spiking run directory: the twin's weights with a made-up own test error
    spiking = tmp_path / "spiking"
    spiking.mkdir()
    shutil.copy(twin / "mean_field_weights.npz", spiking / "weights.npz")
    (spiking / "summary.json").write_text(json.dumps(
        {"examples_trained": 60, "test_history": [{"examples": 60, "test_error": 91.5}]}))
    out = tmp_path / "report"
    out.mkdir()
    assert script.main(["report", "--twin", f"{model}={twin}", "--spiking", f"{model}={spiking}",
                        "--test-examples", "200", "--out", str(out), *data]) == 0
    report = json.loads((out / "noise_cost.json").read_text())
    entry = report["models"][model]
    twin_error = twin_summary["final_test_error"]
    # the same weights tested the same way: the twin's error, and no noise in training by construction
    assert entry["twin"] == {"60": twin_error}
    assert entry["spiking_weights_rate_test"] == {"60": twin_error}
    # the run directories were given as absolute paths; the report records them relative
    assert entry["sources"]["twin"] == [Path(os.path.relpath(twin)).as_posix()]
    assert not any(Path(p).is_absolute() for paths in entry["sources"].values() for p in paths)
    md = (out / "noise_cost.md").read_text()
    assert f"| 60 | - | {twin_error:.2f} | {twin_error:.2f} | 91.50 | - | 0.00 | {91.5 - twin_error:.2f} |" in md
