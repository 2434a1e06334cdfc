"""The example projects reach the accuracy the README promises (issue #2's bars).

These train for real on the embedded digits: ~15 s for digits_conv, ~1 min for the SNN-ViT
with saccadic attention, on 2 CPU cores.
"""

from __future__ import annotations

import io
import json
import shutil

import pytest

from workbench.cli import main
from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project
from workbench.core.runs.session import Session

#: issue #2's bars: the test accuracy each example reaches with its shipped settings (4 time
#: steps, at most 30 epochs). digits_conv and digits_mlp are trained by the ReScaW and the
#: spike-timing tests below, which check their bars too: each example is trained once.
BARS = {"digits_conv": 0.97, "digits_mlp": 0.95, "digits_snn_vit_sssa": 0.95,
        "digits_bestformer": 0.90}


def train_shipped(name, tmp_path, registry, **train) -> tuple[Session, dict]:
    """Copy example ``name`` (no runs, no weights) and train it with its shipped settings;
    returns the session and the finished run's summary."""
    folder = shutil.copytree(examples_dir() / name, tmp_path / name,
                             ignore=shutil.ignore_patterns("runs", "*.safetensors"))
    session = Session(load_project(folder), registry)
    finished = session.train(**train).result()
    assert finished.status == "ok", finished.error
    return session, finished.summary


def assert_bar(name, session, summary):
    assert session.project.time_steps == 4 and session.project.training.epochs <= 30, name
    assert summary["test_accuracy"] >= BARS[name], (name, summary["test_accuracy"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits_snn_vit_sssa", "digits_bestformer"])
def test_example_reaches_its_accuracy_bar(name, tmp_path, plugin_host):
    assert_bar(name, *train_shipped(name, tmp_path, plugin_host.registry))


@pytest.mark.slow
def test_rescaw_4bit_digits_conv_stays_within_1_5_points(tmp_path, plugin_host):
    """Issue #5's bar: a 4-bit ReScaW digits_conv loses at most 1.5 points of accuracy (the
    full-precision digits_conv it starts from meets issue #2's bar)."""
    from workbench.core.runs import catalog

    session, summary = train_shipped("digits_conv", tmp_path, plugin_host.registry)
    assert_bar("digits_conv", session, summary)
    finished = catalog.compress(session, method="wb_qp_snn.rescaw", params={"bits": 4},
                                out=tmp_path / "rescaw4").result()
    assert finished.status == "ok", finished.error
    before, after = finished.summary["before"], finished.summary["after"]
    assert after["accuracy"] >= before["accuracy"] - 0.015
    assert after["bits"]["conv2"] == 4
    assert after["model_size_bytes"] < before["model_size_bytes"] / 3


@pytest.mark.slow
def test_vowels_qt_snn_reaches_90_percent_within_3_points_of_its_twin(tmp_path, plugin_host):
    """Issue #13's bars on JapaneseVowels (seed 0 of the shipped settings): the QT-SNN (4-bit
    weights and membranes, ternary spikes) reaches 90 % and stays within 3 points of its
    full-precision binary-spike twin. ~15 s and ~7 s here."""
    accuracy = {}
    for name in ("vowels_qt_snn", "vowels_snn"):
        _, summary = train_shipped(name, tmp_path, plugin_host.registry, save_weights=True)
        accuracy[name] = summary["test_accuracy"]
    assert accuracy["vowels_qt_snn"] >= 0.90
    assert accuracy["vowels_qt_snn"] >= accuracy["vowels_snn"] - 0.03


@pytest.mark.slow
def test_the_spike_timing_rules_reach_90_percent_and_mpd_ed_stays_within_3_points_of_bptt(
        tmp_path, plugin_host):
    """Issue #14's floors on the shipped examples (the same 64-256-256-10 network): MPD-ED,
    STD-ED and STDBP each reach 90 % on the digits, and MPD-ED is within 3 points of BPTT
    (digits_mlp, which meets issue #2's bar)."""
    accuracy = {}
    for name in ("digits_mlp", "digits_mpd_ed", "digits_std_ed", "digits_stdbp"):
        session, summary = train_shipped(name, tmp_path, plugin_host.registry,
                                         save_weights=True)
        accuracy[name] = summary["test_accuracy"]
        # every rule reports what its backward pass touched
        assert 0 < summary["metrics"]["backward_events"] <= \
            summary["metrics"]["dense_backward_events"]
        if name in BARS:
            assert_bar(name, session, summary)
    assert min(accuracy[n] for n in ("digits_mpd_ed", "digits_std_ed", "digits_stdbp")) >= 0.90, \
        accuracy
    assert accuracy["digits_mpd_ed"] >= accuracy["digits_mlp"] - 0.03, accuracy
    # the trained time-to-first-spike project on the integer simulator, from the command line:
    # the priority queue agrees with the torch closed form on every sample it runs. Half the
    # test split here (the other half would add ~10 s); docs/sim.md gives a CLI run on all 360.
    out = io.StringIO()
    code = main(["deploy", str(tmp_path / "digits_stdbp"), "--backend", "wb_sim.simulator",
                 "--limit", "180", "--out", str(tmp_path / "deployed"), "--json"], out=out)
    assert code == 0
    report = json.loads(out.getvalue().splitlines()[-1])["report"]
    assert report["golden"]["samples"] == 180 and report["golden"]["bit_exact"]
    assert report["accuracy"]["integer"] >= 0.90
