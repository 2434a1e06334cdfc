"""``snn-workbench inspect --signal``: the signal encoders compared on one sample of a sequence
project (the toy plugins' sequences and delta encoder), as a table, JSON and CSV."""

from __future__ import annotations

import csv
import shutil

import pytest
from cli_helpers import assert_input_error, run

from workbench.core.persistence.project_files import load_project
from workbench.core.runs.session import Session
from workbench.core.runs.signal import compare_encoders
from workbench.pluginhost.manager import load_plugins
from workbench.testing.toy_plugins import toy_project_dir

PLUGIN = ["--plugin", "workbench.testing.toy_plugins"]


@pytest.fixture
def folder(tmp_path):
    return shutil.copytree(toy_project_dir(), tmp_path / "toy_sequences")


def test_json_and_csv_carry_the_cores_figures(folder, tmp_path, capsys):
    out = tmp_path / "signal.csv"
    code, lines, _text, err = run(["inspect", str(folder), *PLUGIN, "--signal", "--sample", "4",
                                   "--json", "--csv", str(out)], capsys)
    assert code == 0, err
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["status"] == "ok"
    session = Session(load_project(folder), load_plugins(modules=[PLUGIN[1]]).registry)
    expected = compare_encoders(session, 4)
    assert [row["encoder"] for row in summary["encoders"]] == [e.encoder for e in expected]
    delta = summary["encoders"][0]
    core = expected[0]
    assert delta["encoder"] == "toy_plugins.delta" and delta["project"] is True
    assert delta["spikes"] == core.spike_count and delta["negative"] > 0
    assert delta["mse"] == pytest.approx(core.mse)
    assert delta["snr_db"] == pytest.approx(core.snr_db)
    assert summary["length"] == core.signal.shape[1] and summary["channels"] == 2
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["step", "channel", "encoder", "raw", "spike", "reconstruction",
                       "threshold"]
    assert len(rows) - 1 == sum(2 * e.spikes.shape[0] for e in expected)
    first = rows[1]
    assert first[:3] == ["0", "0", "toy_plugins.delta"]
    assert float(first[3]) == pytest.approx(float(core.signal[0, 0]))
    assert int(first[4]) == int(core.spikes[0, 0])
    assert not (folder / "runs").exists()  # not a run: nothing recorded


def test_the_table_names_each_encoder_and_its_figures(folder, capsys):
    code, _lines, text, err = run(["inspect", str(folder), *PLUGIN, "--signal",
                                   "--encoders", "toy_plugins.delta"], capsys)
    assert code == 0, err
    session = Session(load_project(folder), load_plugins(modules=[PLUGIN[1]]).registry)
    [core] = compare_encoders(session, 0, encoders=["toy_plugins.delta"])
    row = next(line for line in text.splitlines() if "toy_plugins.delta (project)" in line)
    assert row.split()[2:] == [str(core.spike_count), f"{core.spikes_per_channel_per_1000:.1f}",
                               f"{core.mse:.4g}", f"{core.snr_db:.1f}"]


def test_wrong_uses_are_one_line_each(folder, capsys):
    code, _lines, _text, err = run(["inspect", str(folder), *PLUGIN, "--signal",
                                    "--encoders", "toy_plugins.delta,toy_plugins.nope"], capsys)
    assert_input_error(code, err, "--encoders", "toy_plugins.nope", "not an installed encoder")
    code, _lines, _text, err = run(["inspect", str(folder), *PLUGIN, "--csv", "x.csv"], capsys)
    assert_input_error(code, err, "--csv goes with --signal")
    code, _lines, _text, err = run(["inspect", "digits_mlp", "--signal"], capsys)
    assert_input_error(code, err, "needs a sequence dataset (layout 'sequence')",
                       "wb_datasets.digits")
