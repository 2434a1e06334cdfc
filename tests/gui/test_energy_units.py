"""Energy on screen: joules with the prefix pyqtgraph picks (never "kpJ"), one formatter for the
Variants table, and a quantised layer's bar labelled with the width it was priced at."""

from __future__ import annotations

import pytest
import torch

from workbench.core.build.energy import CostTable, EnergyMeter
from workbench.core.build.quantized import QuantizedTensor, attach
from workbench.gui.views.compare import VariantRow
from workbench.gui.views.energy import EnergyView


def quantised_report(plugin_host) -> dict:
    """Two linear layers fed spikes, the second with 4-bit weights, priced with wb_core's FP32."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(400, 300), torch.nn.Linear(300, 200))
    fc = model[1]
    q = torch.randint(-7, 8, tuple(fc.weight.shape)).float()
    attach(fc, QuantizedTensor.from_ints(q, torch.full((200,), 0.01), 4))
    spikes = torch.bernoulli(torch.full((4, 8, 400), 0.5))
    with torch.no_grad(), EnergyMeter(model) as meter:
        model(spikes)
    table = CostTable.from_spec(plugin_host.registry.get("wb_core.fp32_45nm"))
    return meter.report(table).to_dict()


def test_the_ledger_axis_is_in_joules_and_names_the_priced_width(qtbot, plugin_host):
    view = EnergyView()
    qtbot.addWidget(view)
    view.resize(800, 500)
    report = quantised_report(plugin_host)
    view.set_report(report)
    axis = view.plot_widget.getPlotItem().getAxis("left")
    assert axis.labelUnits == "J"
    # bars of ~40 nJ (FP32 layer): pyqtgraph writes the prefix it picks from the range
    assert "nJ" in axis.labelString() and "kpJ" not in axis.labelString()
    assert view.bar_values() == pytest.approx([layer["pj"] for layer in report["layers"]])
    assert view.tick_labels() == ["0", "1 · INT4"]
    assert "FP32: E_MAC 4.6 pJ, E_AC 900 fJ" in view.source_text()
    assert "int add 30 fJ at 8 bits, 100 fJ at 32" in view.source_text()
    assert "nJ per sample" in view.totals_text()


def test_the_variants_table_writes_energy_with_the_si_formatter():
    row = VariantRow("v4", "/tmp/v4", energy_pj=251_000.0,
                     precision="quantised 1 of 3 layers to 4 bits: fc2")
    cells = row.cells()
    assert cells[7] == "251 nJ"
    assert cells[-1] == "quantised 1 of 3 layers to 4 bits: fc2"
    assert VariantRow("x", "/tmp/x").cells()[7] == "—"  # nothing measured: no made-up figure
