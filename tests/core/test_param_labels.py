"""What forms call a parameter: words a user reads, the unit once (issue #12's "Bits (bits)")."""

from __future__ import annotations

import pytest

from workbench.core.model.specs import ParamSpec


@pytest.mark.parametrize(("name", "unit", "shown"), [
    ("tool_timeout_s", "s", "Tool timeout (s)"),        # the unit symbol is not repeated
    ("bits", "bits", "Bits"),                           # was "Bits (bits)"
    ("weight_bits", "bits", "Weight bits"),
    ("finetune_epochs", "epochs", "Fine-tune epochs"),  # was "Finetune epochs (epochs)"
    ("kernel_size", "px", "Kernel size (px)"),
    ("lr", "", "Learning rate"),                        # was "Lr"
    ("ste", "", "STE"),                                 # was "Ste"
    ("ws_dr", "", "WS-DR"),
    ("out_features", "", "Out features"),
])
def test_a_parameter_reads_as_words_with_its_unit_once(name, unit, shown):
    assert ParamSpec(name, 1, unit=unit).label_with_unit == shown


def test_a_plugins_own_label_wins():
    spec = ParamSpec("spike_reg", 0.1, label="Spike regulation λ_f", unit="steps")
    assert spec.title == "Spike regulation λ_f"
    assert spec.label_with_unit == "Spike regulation λ_f (steps)"


def test_no_installed_parameter_repeats_its_unit(plugin_host):
    registry = plugin_host.registry
    shown = [(spec.id, param) for kind in registry.kinds() for spec in registry.of_kind(kind)
             for param in getattr(spec, "params", ())]
    assert shown
    for spec_id, param in shown:
        label = param.label_with_unit
        words = param.title.lower().split()
        assert not (param.unit and param.unit.lower() in words and f"({param.unit})" in label), \
            (spec_id, label)
        first = label[:1]
        assert not (first.isascii() and first.islower()), (spec_id, label)  # "λ" may stay
