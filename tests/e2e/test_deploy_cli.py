"""Issue #6's headline: the 4-bit digits_mlp deploys to an iCE40 UP5K from the command line,
and the report gives resources, Fmax and latency. Synthesis and place-and-route run for real
(YoWASP yosys and nextpnr, about a minute on 2 cores once their cache is warm)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from workbench.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("yowasp_tools")]


def test_4bit_digits_mlp_deploys_to_ice40_up5k_from_the_cli(tmp_path, trained_digits_mlp,
                                                             capsys):
    project = tmp_path / "digits_mlp"
    shutil.copytree(trained_digits_mlp, project)
    out = io.StringIO()
    code = main(["deploy", str(project), "--backend", "wb_fpga.fpga", "--target", "ice40-up5k",
                 "--param", "weight_bits=4",
                 # bit-exactness on 50 samples is tests/plugins/test_fpga.py's (the same 4-bit
                 # digits_mlp); here the flow only has to run it, which 5 samples do in a
                 # tenth of the time
                 "--param", "sim_samples=5", "--out", str(tmp_path / "build"), "--limit", "60",
                 "--json"], out=out)
    assert code == 0, capsys.readouterr().err
    summary = json.loads(out.getvalue().splitlines()[-1])
    assert summary["status"] == "ok" and summary["target"] == "ice40-up5k"
    assert not [issue for issue in summary["fit"] if issue["severity"] == "error"]
    report = summary["report"]
    for resource in ("LUT", "FF", "BRAM", "DSP"):
        used, available = report["resources"][resource]["used"], \
            report["resources"][resource]["available"]
        assert 0 <= used <= available
    assert report["resources"]["LUT"]["used"] > 0
    assert report["fmax_mhz"] > 0 and report["latency_us"] > 0
    assert report["energy"]["kind"] == "estimate" and report["energy"]["source"]
    assert report["energy_pj_per_inference"] > 0
    # the Amaranth core matched wb_sim and the torch integer reference on every sample run
    assert report["golden"]["bit_exact"] and report["golden"]["samples"] == 5
    assert Path(report["bitstream"]).stat().st_size > 0
    assert Path(report["verilog"]).read_text().count("module snn_core") == 1
    assert summary["live"]["samples"] == 60
    saved = json.loads((tmp_path / "build" / "deploy_report.json").read_text())
    assert saved["report"]["fmax_mhz"] == report["fmax_mhz"]


def test_vowels_qt_snn_trains_and_deploys_bit_exact_to_wb_sim_and_the_ice40_up5k(tmp_path,
                                                                                capsys):
    """Issue #13's system end to end on the command line: JapaneseVowels encoded by TAE into
    ternary spikes on the host, a QT-SNN (4-bit weights and membranes, ternary spikes)
    trained, then run by the integer simulator and by the FPGA core, each bit-exact with the
    torch integer reference (the FPGA on 50 test samples)."""
    from workbench.core.persistence.examples import examples_dir

    project = shutil.copytree(examples_dir() / "vowels_qt_snn", tmp_path / "vowels_qt_snn")

    def cli(*argv: str) -> dict:
        out = io.StringIO()
        code = main([*argv, "--json"], out=out)
        assert code == 0, capsys.readouterr().err
        return json.loads(out.getvalue().splitlines()[-1])

    trained = cli("train", str(project), "--epochs", "4")
    assert trained["status"] == "ok" and trained["test_accuracy"] > 0.5  # 9 classes: chance 11 %

    sim = cli("deploy", str(project), "--backend", "wb_sim.simulator", "--limit", "80",
              "--out", str(tmp_path / "sim"))["report"]
    assert sim["input_kind"] == "spikes" and sim["time_steps"] == 29
    assert sim["golden"]["bit_exact"] and sim["golden"]["samples"] == 80
    assert sim["ops_per_sample"]["dense_macs"] == 0  # spikes all the way: accumulates only
    # power-of-two steps: the integer network computes what the trained network computes
    assert sim["accuracy"]["integer_vs_float_agreement"] >= 0.95

    fpga = cli("deploy", str(project), "--backend", "wb_fpga.fpga", "--target", "ice40-up5k",
               "--param", "sim_samples=50", "--limit", "50", "--out", str(tmp_path / "fpga"))
    report = fpga["report"]
    assert fpga["status"] == "ok" and report["input_kind"] == "spikes"
    assert report["golden"]["bit_exact"] and report["golden"]["samples"] == 50
    assert 0 < report["resources"]["LUT"]["used"] <= report["resources"]["LUT"]["available"]
    assert report["fmax_mhz"] > 0 and report["latency_us"] > 0
    assert report["energy"]["kind"] == "estimate" and report["energy_pj_per_inference"] > 0
    assert report["membranes"]  # the membrane memory at its 4-bit width is reported
