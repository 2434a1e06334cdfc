"""What the CLI and the GUI used to do each in their own way now has one home in the core;
these tests call it there."""

from __future__ import annotations

import pytest

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.graph import Graph
from workbench.core.model.project import Project
from workbench.core.runs import catalog
from workbench.core.runs.deploy import with_steps
from workbench.core.runs.events import Progress, StepStarted
from workbench.core.runs.reports import (
    comparison_rows,
    flatten_report,
    format_energy,
    step_name,
)


def test_comparison_rows_read_before_and_after():
    before = {"accuracy": 0.98, "model_size_bytes": 80_000, "params": 20_000,
              "total_pj_per_sample": 2.5e6, "bits": {"fc1": 32, "fc2": 32}}
    after = {"accuracy": 0.97, "model_size_bytes": 20_000, "params": 20_000,
             "total_pj_per_sample": 2.0e6, "bits": {"fc1": 4, "fc2": 32}}
    rows = {row[0]: row[1:] for row in comparison_rows(before, after)}
    assert rows["Accuracy"] == ("98.00 %", "97.00 %", "-1.00 pp")
    assert rows["Model size"][2] == "×4.00 smaller"
    assert rows["Energy per sample (estimate)"] == ("2.5 µJ", "2 µJ", "-20.0 %")
    assert rows["Bits, fc1"] == ("32", "4", "changed") and rows["Bits, fc2"][2] == ""


def test_flatten_report_and_energy_units():
    rows = dict(flatten_report({"resources": {"lut": 2688, "fmax_mhz": 25.04321},
                                "trace": list(range(20))}))
    assert rows == {"resources.lut": "2688", "resources.fmax_mhz": "25.0432",
                    "trace": "[20 values]"}
    assert [format_energy(v) for v in (12.0, 4_200.0, 3.9e6)] == ["12 pJ", "4.2 nJ", "3.9 µJ"]


def test_steps_ignore_counters_and_timers():
    assert step_name("synthesising (15 s)") == step_name("synthesising (16.5 s)") == "synthesising"
    assert step_name("simulating: 12/50") == "simulating"
    events = [Progress("r", i, 9, message=m) for i, m in enumerate(
        ["convert", "simulating: 1/2", "simulating: 2/2", "place (3 s)", ""])]
    steps = [e.step for e in with_steps(events) if isinstance(e, StepStarted)]
    assert steps == ["convert", "simulating", "place"]


def test_deploy_choice_completes_from_the_last_target():
    project = Project("p", Graph())
    with pytest.raises(WorkbenchError, match="no backend given"):
        catalog.deploy_choice(project, None, None, None)
    project.deploy = {"backend": "wb_fpga.fpga", "target": "ice40-up5k",
                      "params": {"parallelism": 8}}
    assert catalog.deploy_choice(project, None, None, {"clock": 1}) == (
        "wb_fpga.fpga", "ice40-up5k", {"parallelism": 8, "clock": 1})
    # another backend starts from its own defaults
    assert catalog.deploy_choice(project, "wb_sim.simulator", None, None) == (
        "wb_sim.simulator", None, {})


def test_exchange_backend_by_format(plugin_host):
    backend = catalog.exchange_backend(plugin_host.registry, "nir")
    assert callable(backend.export_file) and callable(backend.read_file)
    with pytest.raises(WorkbenchError, match="ONNX"):
        catalog.exchange_backend(plugin_host.registry, "onnx")


def test_count_correct_follows_the_rule_readout():
    import torch

    from workbench.core.model.readout import count_correct

    out = torch.tensor([[[0.0, 2.0]], [[3.0, 0.0]], [[3.0, 0.0]]])  # [T=3, B=1, C=2]
    y = torch.tensor([1])
    assert count_correct(out, y) == 0  # the mean over time says class 0
    first_step = lambda o: o[0]  # noqa: E731 - a readout by the first step, like earliest spike
    assert count_correct(out, y, first_step) == 1
