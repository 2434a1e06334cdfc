"""``compress`` then ``evaluate``: a 4-bit variant is priced at 4 bits and costs less energy than
its FP32 parent, and the compress output names the layers it quantised."""

from __future__ import annotations

import re
import shutil

import pytest
from cli_helpers import run


@pytest.fixture
def trained(tmp_path, trained_digits_mlp):
    folder = tmp_path / "mlp"
    shutil.copytree(trained_digits_mlp, folder, ignore=shutil.ignore_patterns("runs"))
    return folder


def test_a_4_bit_variant_evaluates_to_less_energy_than_its_parent(trained, tmp_path, capsys):
    variant = tmp_path / "v4"
    code, _, text, err = run(["compress", str(trained), "--method", "wb_qp_snn.uniform",
                              "--param", "bits=4", "--param", "finetune_epochs=0",
                              "--param", "keep_first_last=false", "--out", str(variant),
                              "--limit", "40"], capsys)
    assert code == 0, err
    assert "quantised 3 of 3 layers to 4 bits: hidden1.fc, hidden2.fc, fc" in text
    assert "kept full precision" not in text

    code, lines, _, err = run(["evaluate", str(trained), "--limit", "40", "--json"], capsys)
    assert code == 0, err
    parent = lines[-1]["energy"]
    assert {layer["priced_at"] for layer in parent["layers"]} == {"FP32"}

    code, _, text, err = run(["evaluate", str(variant), "--limit", "40"], capsys)
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in text.splitlines()
            if line.split()[:1] and line.split()[0] in ("hidden1.fc", "hidden2.fc", "fc")}
    assert len(rows) == 3 and {row[5] for row in rows.values()} == {"INT4"}  # priced width
    total = re.search(r"energy \(estimate, [^)]*\): ([-\d.e+]+) ([fpnµm]?)J/sample", text)
    assert total, text
    joules = float(total[1]) * PREFIX[total[2]]
    assert 0 < joules < parent["total_pj_per_sample"] * 1e-12 / 10


PREFIX = {"f": 1e-15, "p": 1e-12, "n": 1e-9, "µ": 1e-6, "m": 1e-3, "": 1.0}
