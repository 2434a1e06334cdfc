"""The CLI as thin drivers over the run catalog: a light start-up, `info` without the data,
run records of compress and deploy, and the --device/--precision overrides."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_input_error, run

from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project

ROOT = Path(__file__).resolve().parents[2]


def in_fresh_process(body: str) -> str:
    """Run ``body`` in a new interpreter (so ``sys.modules`` starts empty); its stdout."""
    done = subprocess.run([sys.executable, "-c", body], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def records(folder: Path, kind: str) -> list[list[dict]]:
    """The run records of ``kind`` in a project's ``runs/`` folder, each as its events."""
    found = []
    for path in sorted((folder / "runs").glob("*.jsonl")):
        events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if events and events[0]["event"] == "run_started" and events[0]["kind"] == kind:
            found.append(events)
    return found


def test_help_and_usage_errors_import_neither_torch_nor_qt():
    out = in_fresh_process(
        "import contextlib, io, json, sys\n"
        "from workbench.cli import main\n"
        "codes = []\n"
        "for argv in (['--help'], ['train', '--help'], ['train', '--epochs', 'many']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), "
        "contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit as exc:\n"
        "            codes.append(exc.code)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'PySide6', 'pyqtgraph', 'numpy'))\n"
        "heavy += [m for m in sys.modules if m.startswith('workbench.core.runs')]\n"
        "print(json.dumps({'codes': codes, 'heavy': heavy}))\n")
    result = json.loads(out.splitlines()[-1])
    assert result == {"codes": [0, 0, 2], "heavy": []}


def test_info_describes_the_network_without_loading_the_dataset():
    out = in_fresh_process(
        "import io, json, sys\n"
        "from workbench.cli import main\n"
        "buffer = io.StringIO()\n"
        "code = main(['info', 'digits_conv', '--json'], out=buffer)\n"
        "info = json.loads(buffer.getvalue().splitlines()[-1])\n"
        "print(json.dumps({'code': code, 'info': info,\n"
        "                  'sklearn_datasets': 'sklearn.datasets' in sys.modules}))\n")
    result = json.loads(out.splitlines()[-1])
    assert result["code"] == 0
    assert result["sklearn_datasets"] is False
    info = result["info"]
    assert info["input_shape"] == [1, 8, 8] and info["classes"] == 10
    assert info["layers"][-1]["out_shape"] == [10] and info["params"] > 0


def test_declared_digits_shape_is_the_loaded_one(plugin_host):
    from workbench.core.runs.session import Session

    session = Session(load_project(examples_dir() / "digits_conv"), plugin_host.registry)
    data = session.data()
    assert session.declared_shape() == (tuple(data.input_shape), data.n_classes)


def test_info_loads_the_data_when_the_dataset_declares_no_shape(tmp_path, capsys):
    import numpy as np

    from workbench.core.persistence.project_files import save_project
    from workbench.testing.fixtures import make_tiny_project

    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.random((20, 4, 4), dtype=np.float32),
              "y_train": np.arange(20) % 10, "x_test": rng.random((10, 4, 4), dtype=np.float32),
              "y_test": np.arange(10) % 10}
    np.savez(tmp_path / "data.npz", **arrays)
    project = make_tiny_project(tmp_path / "p")
    project.dataset.id = "wb_datasets.npz"
    project.dataset.params = {"path": str(tmp_path / "data.npz")}
    save_project(project)
    code, lines, _, err = run(["info", str(tmp_path / "p"), "--json"], capsys)
    assert code == 0, err
    assert lines[-1]["input_shape"] == [4, 4] and lines[-1]["classes"] == 10
    assert lines[-1]["params"] == 16 * 32 + 32 + 32 * 10 + 10


def test_plugins_needs_no_project_and_no_data():
    out = in_fresh_process(
        "import io, json, sys\n"
        "from workbench.cli import main\n"
        "buffer = io.StringIO()\n"
        "code = main(['plugins', '--json'], out=buffer)\n"
        "report = json.loads(buffer.getvalue().splitlines()[-1])\n"
        "print(json.dumps({'code': code, 'plugins': [p['name'] for p in report['plugins']],\n"
        "                  'sklearn': 'sklearn' in sys.modules}))\n")
    result = json.loads(out.splitlines()[-1])
    assert result["code"] == 0 and result["sklearn"] is False
    assert "wb_datasets" in result["plugins"]


@pytest.fixture
def trained(tmp_path, trained_digits_mlp):
    folder = tmp_path / "mlp"
    shutil.copytree(trained_digits_mlp, folder)
    shutil.rmtree(folder / "runs", ignore_errors=True)
    return folder


def test_compress_and_deploy_leave_run_records(trained, tmp_path, capsys):
    code, lines, _, err = run(["compress", str(trained), "--method", "wb_qp_snn.uniform",
                               "--param", "bits=4", "--param", "finetune_epochs=0",
                               "--out", str(tmp_path / "v4"), "--limit", "60", "--json",
                               "--precision", "bf16"], capsys)
    assert code == 0, err
    # --precision is for this command: the variant keeps its parent's saved settings
    assert load_project(tmp_path / "v4").compute == load_project(trained).compute
    assert lines[0]["event"] == "run_started" and lines[-1]["event"] == "summary"
    assert lines[-1]["after"]["bits"]["hidden2"] == 4  # first and last stay whole
    assert load_project(tmp_path / "v4").compression[-1]["method"] == "wb_qp_snn.uniform"
    [record] = records(trained, "compress")
    assert record[-1]["event"] == "run_finished" and record[-1]["status"] == "ok"

    code, _, text, err = run(["deploy", str(trained), "--backend", "wb_sim.simulator",
                              "--out", str(tmp_path / "sim"), "--limit", "20"], capsys)
    assert code == 0, err
    assert "[1] " in text and "report:" in text and "files in" in text
    [record] = records(trained, "deploy")
    assert record[-1]["event"] == "run_finished" and record[-1]["status"] == "ok"
    assert any(event["event"] == "step" for event in record)


def test_option_errors_name_the_option(trained, tmp_path, capsys):
    code, _, _, err = run(["train", str(trained), "--epochs", "-1"], capsys)
    assert_input_error(code, err, "--epochs", "1 or more")
    code, _, _, err = run(["evaluate", str(trained), "--limit", "0"], capsys)
    assert_input_error(code, err, "--limit", "1 or more")
    code, _, _, err = run(["deploy", str(trained), "--backend", "wb_sim.simulator",
                           "--limit", "0"], capsys)
    assert_input_error(code, err, "--limit")
    code, _, _, err = run(["compress", str(trained), "--out", str(tmp_path / "x")], capsys)
    assert_input_error(code, err, "--method is required")
    assert not (trained / "runs").exists()  # each refused before a run started
    # found inside the run (the backend knows its targets): still the option, exit status 2
    code, _, _, err = run(["deploy", str(trained), "--backend", "wb_sim.simulator",
                           "--target", "nowhere"], capsys)
    assert_input_error(code, err, "--target", "nowhere")
    code, _, _, err = run(["inspect", str(trained), "--sample", "-1"], capsys)
    assert_input_error(code, err, "--sample")


def test_device_and_precision_override_the_project_for_one_command(tmp_path, capsys):
    folder = tmp_path / "digits_mlp"
    shutil.copytree(examples_dir() / "digits_mlp", folder)
    saved = (folder / "project.json").read_text()
    code, lines, _, err = run(["train", str(folder), "--epochs", "1", "--device", "cpu",
                               "--precision", "bf16", "--json"], capsys)
    assert code == 0, err
    started, summary = lines[0], lines[-1]
    assert started["event"] == "run_started"
    assert started["config"]["precision"] == "bf16" and started["config"]["device"] == "cpu"
    assert summary["event"] == "summary" and summary["status"] == "ok"
    assert summary["epochs"] == 1 and Path(summary["weights"]).is_file()
    assert (folder / "project.json").read_text() == saved  # the override was not saved


def test_unavailable_device_or_precision_exits_2(tmp_path, capsys, monkeypatch):
    import torch

    from workbench.testing.fixtures import make_tiny_project

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # CPU-only everywhere
    make_tiny_project(tmp_path / "p")
    code, _, _, err = run(["train", str(tmp_path / "p"), "--device", "cuda"], capsys)
    assert_input_error(code, err, "--device cuda", "compute.device", "not available")
    code, _, _, err = run(["evaluate", str(tmp_path / "p"), "--device", "cpu",
                           "--precision", "fp16"], capsys)
    assert_input_error(code, err, "--precision fp16", "compute.precision")
    assert not (tmp_path / "p" / "runs").exists()  # refused before any run started


def test_info_says_whether_the_project_is_trained(trained_digits_mlp, capsys):
    code, _, text, _ = run(["info", "digits_mlp"], capsys)  # an example: the user's copy
    assert code == 0 and "trained: no (run `snn-workbench train` first)" in text
    code, _, text, _ = run(["info", str(trained_digits_mlp)], capsys)
    weights = load_project(trained_digits_mlp).weights_path.name
    assert code == 0 and f"trained: yes ({weights})" in text
