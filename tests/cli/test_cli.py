"""The headless CLI: JSON output, exit statuses, and the bad-input corpus."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import assert_input_error, run

from workbench.cli import main
from workbench.core.persistence.project_files import load_project, save_project
from workbench.core.persistence.project_store import commit_weights
from workbench.core.persistence.weights import weights_bytes
from workbench.testing.fixtures import make_tiny_project


def test_train_then_evaluate_json(tmp_path, capsys):
    folder = tmp_path / "tiny"
    make_tiny_project(folder)
    code, lines, _, _ = run(["train", str(folder), "--epochs", "2", "--json"], capsys)
    assert code == 0
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["status"] == "ok"
    assert summary["epochs"] == 2 and 0.5 < summary["test_accuracy"] <= 1
    assert load_project(folder).weights_path.exists()
    assert lines[0]["event"] == "run_started"

    code, lines, _, _ = run(["evaluate", str(folder), "--json"], capsys)
    assert code == 0
    summary = lines[-1]
    assert summary["weights_loaded"] is True
    assert summary["accuracy"] == pytest.approx(lines[-1]["accuracy"])
    energy = summary["energy"]
    for key in ("table", "total_pj_per_sample", "sops_per_sample", "macs_per_sample", "layers"):
        assert key in energy
    for layer in energy["layers"]:
        assert {"name", "sops", "macs", "pj", "firing_rate"} <= set(layer)
    assert len(list((folder / "runs").glob("*.jsonl"))) == 2


def test_human_output_and_info(tmp_path, capsys):
    folder = tmp_path / "tiny"
    make_tiny_project(folder)
    code, _, text, _ = run(["train", str(folder), "--epochs", "1"], capsys)
    assert code == 0 and "epoch   1/1" in text and "weights saved to" in text
    code, _, text, _ = run(["evaluate", str(folder), "--table", "wb_core.int8_45nm"], capsys)
    assert code == 0 and "45 nm, INT8" in text and "hidden.fc" in text
    code, lines, _, _ = run(["info", str(folder), "--json"], capsys)
    assert code == 0
    info = lines[-1]
    assert [layer["name"] for layer in info["layers"]] == ["flat", "hidden", "fc"]
    assert info["layers"][1]["out_shape"] == [32] and info["layers"][1]["bits"] == [32]
    assert info["params"] == 64 * 32 + 32 + 32 * 10 + 10
    assert info["size_mb"] == pytest.approx(info["params"] * 4 / 1e6)


def test_inspect_writes_spikes_and_membranes(tmp_path, capsys):
    import numpy as np

    folder = tmp_path / "tiny"
    make_tiny_project(folder)
    code, lines, _, _ = run(["inspect", str(folder), "--sample", "2", "--json",
                             "--out", str(tmp_path / "probe.npz")], capsys)
    assert code == 0
    assert lines[-1]["layers"]["hidden.neuron"]["shape"] == [32]
    arrays = np.load(tmp_path / "probe.npz")
    assert arrays["hidden.neuron/spikes"].shape == (2, 32)
    assert arrays["hidden.neuron/membrane"].shape == (2, 32)
    code, _, _, err = run(["inspect", str(folder), "--sample", "99999"], capsys)
    assert_input_error(code, err, "--sample")


def test_plugins_json_lists_contributions_and_failures(plugin_module, capsys):
    broken = plugin_module("broken_on_import", "raise ImportError('missing SDK')\n")
    hook = plugin_module("broken_hook", """
        from workbench.pluginhost import hookimpl
        @hookimpl
        def wb_neurons():
            raise RuntimeError('hook exploded')
        """)
    invalid = plugin_module("broken_spec", """
        from workbench.pluginhost import hookimpl, NeuronSpec
        @hookimpl
        def wb_neurons():
            return [NeuronSpec(id="Broken Spec!", display_name="", factory="x:y")]
        """)
    import os

    os.environ["SNN_WORKBENCH_STRICT_PLUGINS"] = "0"
    try:
        code, lines, _, _ = run(["plugins", "--json", "--plugin", broken, "--plugin", hook,
                                 "--plugin", invalid], capsys)
    finally:
        os.environ["SNN_WORKBENCH_STRICT_PLUGINS"] = "1"
    assert code == 0
    report = lines[-1]
    failures = {(f["plugin"], f["stage"]) for f in report["failures"]}
    assert ("broken_on_import", "import") in failures
    assert ("broken_hook", "hook wb_neurons") in failures
    assert any(p == "broken_spec" and s.startswith("spec") for p, s in failures)
    plugins = {p["name"]: p for p in report["plugins"]}
    assert "wb_core.lif" in plugins["wb_core"]["contributions"]["neuron"]
    assert "wb_datasets.digits" in plugins["wb_datasets"]["contributions"]["dataset"]


# -- the bad-input corpus: each a clear one-line error and exit status 2 --------------------
def test_truncated_project_file(tmp_path, capsys):
    folder = tmp_path / "p"
    make_tiny_project(folder)
    text = (folder / "project.json").read_bytes()
    (folder / "project.json").write_bytes(text[:100])
    code, _, _, err = run(["train", str(folder)], capsys)
    assert_input_error(code, err, "project.json", "not valid JSON", "truncated")


def test_non_utf8_project_file(tmp_path, capsys):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "project.json").write_bytes(b"\xff\xfe{\x00}\x00")
    code, _, _, err = run(["info", str(folder)], capsys)
    assert_input_error(code, err, "project.json", "not UTF-8")


def test_newer_format_version(tmp_path, capsys):
    folder = tmp_path / "p"
    data = make_tiny_project(folder).to_dict()
    data["format_version"] = 99
    (folder / "project.json").write_text(json.dumps(data))
    code, _, _, err = run(["evaluate", str(folder)], capsys)
    assert_input_error(code, err, "project.json", "newer SNN Workbench", "update")


def test_unknown_plugin_loads_as_placeholder_but_training_refuses(tmp_path, capsys, caplog):
    folder = tmp_path / "p"
    project = make_tiny_project(folder)
    project.graph.nodes[1].spec = "wb_future.quantum_lif"
    save_project(project)
    assert load_project(folder).graph.nodes[1].spec == "wb_future.quantum_lif"
    code, _, _, err = run(["train", str(folder)], capsys)
    assert_input_error(code, err, "node 'hidden'", "wb_future.quantum_lif")
    assert "kept as a placeholder" in caplog.text  # the warning printed before the error


def test_weights_with_wrong_shapes(tmp_path, capsys):
    folder = tmp_path / "p"
    make_tiny_project(folder)
    wrong = torch.nn.Module()
    wrong.layers = torch.nn.ModuleDict({"hidden": torch.nn.Module(), "fc": torch.nn.Linear(16, 10)})
    wrong.layers["hidden"].fc = torch.nn.Linear(64, 16)
    weights = commit_weights(load_project(folder), weights_bytes(wrong))  # the project's own
    code, _, _, err = run(["evaluate", str(folder)], capsys)
    assert_input_error(code, err, weights.name, "layers.hidden.fc.weight", "shape")


def test_nan_weights(tmp_path, capsys):
    folder = tmp_path / "p"
    make_tiny_project(folder)
    code, _, _, _ = run(["train", str(folder), "--epochs", "1", "--json"], capsys)
    assert code == 0
    from safetensors.torch import load_file, save_file

    weights = str(load_project(folder).weights_path)
    tensors = load_file(weights)
    tensors["layers.fc.weight"][0, 0] = float("nan")
    save_file(tensors, weights)
    code, _, _, err = run(["evaluate", str(folder)], capsys)
    assert_input_error(code, err, "layers.fc.weight", "NaN")


def test_dataset_path_that_does_not_exist(tmp_path, capsys):
    folder = tmp_path / "p"
    project = make_tiny_project(folder)
    project.dataset.id = "wb_datasets.mnist"
    project.dataset.params = {"path": str(tmp_path / "no_such_mnist")}
    save_project(project)
    code, _, _, err = run(["train", str(folder)], capsys)
    assert_input_error(code, err, "no_such_mnist")


def test_missing_project_and_usage_errors(tmp_path, capsys):
    code, _, _, err = run(["info", str(tmp_path / "nothing")], capsys)
    assert_input_error(code, err, "no such project")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--epochs", "many"])
    assert exit_.value.code == 2


def test_internal_errors_exit_1_without_a_traceback(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "p"
    make_tiny_project(folder)
    # outside a run (info compiles in the command itself) ...
    monkeypatch.setattr("workbench.core.runs.session.Session.declared_shape",
                        lambda self: (_ for _ in ()).throw(RuntimeError("kaput")))
    code, _, _, err = run(["info", str(folder)], capsys)
    assert code == 1 and "internal error" in err and "kaput" in err and "Traceback" not in err
    # ... and inside one (the run reports it; --debug prints the run's own traceback)
    monkeypatch.setattr("workbench.core.runs.session.Session.data",
                        lambda self: (_ for _ in ()).throw(RuntimeError("boom")))
    code, _, _, err = run(["evaluate", str(folder)], capsys)
    assert code == 1 and "internal error" in err and "boom" in err and "Traceback" not in err
    code, _, _, err = run(["evaluate", str(folder), "--debug"], capsys)
    assert code == 1 and "Traceback" in err and "boom" in err
