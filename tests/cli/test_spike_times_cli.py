"""``snn-workbench inspect`` on a time-to-first-spike network: each spike-time layer's firing
figures and the output race, in the table, in ``--json`` and in the ``--out`` arrays.

The network comes from a toy plugin (``tests/fixtures/ttfs_toy_plugin.py``, loaded with
``--plugin``) fed by the real ``wb_core.ttfs`` encoder, with saved weights that silence hidden
neuron 0 and output classes 2 and 7.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run

from workbench.core.persistence.project_files import load_project
from workbench.core.runs.probe import probe_sample
from workbench.core.runs.session import Session
from workbench.pluginhost.manager import PluginHost

SILENT_CLASSES = (2, 7)  # the toy project's silenced outputs (tests/conftest.py)


@pytest.fixture
def plugin(ttfs_toy):
    return ttfs_toy.name


@pytest.fixture
def folder(tmp_path, ttfs_toy):
    folder = tmp_path / "ttfs"
    ttfs_toy.session(folder)  # written, built with its silenced weights, saved
    return folder


def core_session(folder: Path, plugin: str) -> Session:
    host = PluginHost(strict=True)
    host.load(modules=[plugin])
    return Session(load_project(folder), host.registry)


def test_json_and_arrays_carry_the_firing_times_and_the_race(folder, plugin, tmp_path, capsys):
    npz = tmp_path / "probe.npz"
    code, lines, _text, err = run(["inspect", str(folder), "--plugin", plugin, "--sample", "4",
                                   "--json", "--out", str(npz)], capsys)
    assert code == 0, err
    summary = lines[-1]
    assert summary["status"] == "ok" and summary["weights_loaded"] is True
    core = probe_sample(core_session(folder, plugin), 4)
    for name, times in core.spike_times.items():
        fired = times[torch.isfinite(times)].double()
        assert summary["spike_times"][name]["neurons"] == times.numel()
        assert summary["spike_times"][name]["fired"] == fired.numel()
        assert summary["spike_times"][name]["first"] == pytest.approx(float(fired.min()))
        assert summary["spike_times"][name]["last"] == pytest.approx(float(fired.max()))
    race = summary["race"]
    assert [t is None for t in race["times"]] == [k in SILENT_CLASSES for k in range(10)]
    assert race["times"] == pytest.approx([None if not torch.isfinite(t) else float(t)
                                           for t in core.output_times])
    assert race["winner"] == summary["predicted"] == int(core.output_times.argmin())
    with np.load(npz) as arrays:
        assert np.array_equal(arrays["hidden/spike_times"], core.spike_times["hidden"].numpy())
        assert np.isinf(arrays["hidden/spike_times"][0])
        assert np.array_equal(arrays["output_times"], core.output_times.numpy())


def test_the_table_lists_each_layers_times_and_the_race_with_the_winner_marked(folder, plugin,
                                                                              capsys):
    code, _lines, text, err = run(["inspect", str(folder), "--plugin", plugin, "--sample", "4"],
                                  capsys)
    assert code == 0, err
    core = probe_sample(core_session(folder, plugin), 4)
    hidden = core.spike_times["hidden"]
    fired = hidden[torch.isfinite(hidden)]
    [row] = [line.split() for line in text.splitlines() if line.strip().startswith("hidden")]
    assert row[1] == f"{fired.numel()}/16"
    assert row[2] == f"{float(fired.min()):.4g}" and row[4] == f"{float(fired.max()):.4g}"
    winner = int(core.output_times.argmin())
    assert (f"class {winner} fired first at t = {float(core.output_times[winner]):.4g} "
            f"(label {core.label})") in text
    classes = [line.split() for line in text.splitlines() if line.startswith("  class ")]
    assert len(classes) == 10
    assert classes[winner][-1] in ("winner", "winner,") and "winner" in classes[winner]
    assert all(classes[k][2] == "silent" for k in SILENT_CLASSES)
    assert "label" in classes[core.label][-1]
