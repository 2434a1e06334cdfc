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


@pytest.mark.slow
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
