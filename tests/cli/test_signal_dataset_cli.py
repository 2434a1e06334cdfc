"""The CLI on a project reading ``.ts`` files (``wb_datasets.ts_file``): a broken file is one
``snn-workbench: error:`` line naming the file and the line, and a good pair trains.

The project is the toy sequence project (its delta encoder and rule loaded with ``--plugin``)
with its dataset swapped for two small ``.ts`` files written here.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.testing.toy_plugins import toy_project_dir

PLUGIN = ["--plugin", "workbench.testing.toy_plugins"]
#: 5 header lines: the first sample is on line 6
HEADER = ["@problemName waves", "@univariate false", "@equalLength false",
          "@classLabel true in_phase anti_phase one_channel", "@data"]


def waves(n: int, seed: int) -> list[str]:
    """Two-channel sines of 12..24 steps: in phase, in anti-phase, or on one channel only."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        kind = i % 3
        t = np.arange(rng.integers(12, 25))
        wave = np.sin(2 * np.pi * t / rng.uniform(14, 24) + rng.uniform(0, 2 * np.pi))
        other = (wave, -wave, np.zeros_like(wave))[kind]
        label = ("in_phase", "anti_phase", "one_channel")[kind]
        rows.append(":".join(",".join(f"{v:.4f}" for v in c) for c in (wave, other)) + f":{label}")
    return rows


def ts_project(tmp_path: Path, train_rows: list[str]) -> Path:
    folder = shutil.copytree(toy_project_dir(), tmp_path / "waves")
    files = {}
    for split, rows in (("train", train_rows), ("test", waves(15, seed=1))):
        files[split] = tmp_path / f"{split}.ts"
        files[split].write_text("\n".join([*HEADER, *rows]) + "\n")
    project = json.loads((folder / "project.json").read_text())
    project["dataset"] = {"id": "wb_datasets.ts_file",
                          "params": {"train_path": str(files["train"]),
                                     "test_path": str(files["test"])}}
    (folder / "project.json").write_text(json.dumps(project))
    return folder


@pytest.fixture(autouse=True)
def _own_user_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("SNN_WORKBENCH_DATA", str(tmp_path / "user-data"))
    monkeypatch.setenv("SNN_WORKBENCH_CONFIG", str(tmp_path / "user-config"))
    # main() configures logging once per process: this test's messages must reach its stderr
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()
    yield
    root.handlers[:] = saved


@pytest.mark.parametrize("command", ["info", "train"])
def test_a_broken_ts_file_is_one_error_line_naming_file_and_line(tmp_path, capsys, command):
    rows = waves(30, seed=0)
    rows[4] = rows[4].replace(",", ",?,", 1)  # a missing value in the fifth sample: line 10
    folder = ts_project(tmp_path, rows)
    capsys.readouterr()
    code = main([command, str(folder), *PLUGIN])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"snn-workbench: error: {tmp_path / 'train.ts'}, line 10: "), err
    assert "missing value ('?') in channel 1" in lines[0]


def test_a_good_ts_pair_trains(tmp_path):
    rows = waves(30, seed=0)
    folder = ts_project(tmp_path, rows)
    longest = max(len(row.split(":")[0].split(",")) for row in [*rows, *waves(15, seed=1)])
    out = io.StringIO()
    code = main(["train", str(folder), *PLUGIN, "--epochs", "1", "--fresh", "--no-save",
                 "--json"], out=out)
    events = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    assert code == 0, events[-1]
    started, summary = events[0], events[-1]
    assert started["event"] == "run_started"
    assert started["config"]["time_steps"] == longest  # the delta encoder's T = L
    assert summary["status"] == "ok" and summary["epochs"] == 1
    assert 0.0 <= summary["test_accuracy"] <= 1.0
