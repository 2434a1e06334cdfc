"""The CLI on the toy sequence project, its plugins loaded with ``--plugin``: a rule's extra
metric in the JSON lines, and a probe's sequence length, reconstruction and ternary input."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np

from workbench.cli import main
from workbench.core.persistence.project_files import load_project
from workbench.testing.toy_plugins import toy_project_dir

PLUGIN = ["--plugin", "workbench.testing.toy_plugins"]


def run(argv):
    out = io.StringIO()
    code = main(argv, out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()
                  if line.startswith("{")]


def test_train_evaluate_inspect_a_sequence_project(tmp_path):
    folder = shutil.copytree(toy_project_dir(), tmp_path / "toy_sequences")

    code, lines = run(["train", str(folder), *PLUGIN, "--epochs", "2", "--fresh", "--json"])
    assert code == 0, lines[-1]
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["status"] == "ok"
    epoch_ends = [line for line in lines if line["event"] == "metric" and line["epoch_end"]]
    counts = [line["values"]["backward_events"] for line in epoch_ends]
    assert len(counts) == 2 and all(c > 0 for c in counts)
    assert summary["metrics"]["backward_events"] == counts[-1]
    assert lines[0]["event"] == "run_started" and lines[0]["config"]["time_steps"] == 24
    assert load_project(folder).weights_path.exists()

    code, lines = run(["evaluate", str(folder), *PLUGIN, "--json"])
    assert code == 0, lines[-1]
    summary = lines[-1]
    assert summary["weights_loaded"] is True and summary["samples"] == 60
    first = next(layer for layer in summary["energy"]["layers"] if layer["name"] == "hidden.fc")
    assert first["input"] == "spikes" and first["macs"] == 0 and first["sops"] > 0

    out = tmp_path / "probe.npz"
    code, lines = run(["inspect", str(folder), *PLUGIN, "--sample", "4", "--json",
                       "--out", str(out)])
    assert code == 0, lines[-1]
    summary = lines[-1]
    assert 12 <= summary["length"] <= 24
    assert summary["reconstruction_mse"] < 0.1
    assert summary["input_spikes"]["negative"] > 0
    assert summary["layers"]["hidden.neuron"]["shape"] == [32]
    arrays = np.load(out)
    assert arrays["input_spikes"].shape == (24, 2) and arrays["input_spikes"].min() == -1


def test_without_the_plugin_the_project_names_what_is_missing(tmp_path, capsys):
    folder = shutil.copytree(toy_project_dir(), tmp_path / "toy_sequences")
    code, _ = run(["train", str(folder), "--epochs", "1", "--json"])
    err = capsys.readouterr().err
    assert code == 2
    assert "toy_plugins." in err and "Traceback" not in err


def test_info_gives_the_steps_the_encoder_sets_from_the_data(tmp_path, capsys):
    from workbench.core.persistence.project_files import save_project

    folder = shutil.copytree(toy_project_dir(), tmp_path / "toy_sequences")
    project = load_project(folder)
    project.time_steps = 4  # the project's own T is not what the runs use
    save_project(project)
    code, lines = run(["info", str(folder), *PLUGIN, "--json"])
    assert code == 0 and lines[-1]["time_steps"] == 24  # T = L of the padded sequences
    out = io.StringIO()
    assert main(["info", str(folder), *PLUGIN], out=out) == 0
    assert "T = 24 (set by the encoder)" in out.getvalue()
