"""The example projects reach the accuracy the README promises (issue #2's bars).

These train for real on the embedded digits: ~15 s for digits_conv, ~1 min for the SNN-ViT
with saccadic attention, on 2 CPU cores.
"""

from __future__ import annotations

import shutil

import pytest

from workbench.core.examples import examples_dir
from workbench.core.project import load_project
from workbench.core.session import Session


@pytest.mark.slow
@pytest.mark.parametrize(("name", "bar"), [("digits_conv", 0.97), ("digits_mlp", 0.95),
                                           ("digits_snn_vit_sssa", 0.95)])
def test_example_reaches_its_accuracy_bar(name, bar, tmp_path, plugin_host):
    folder = tmp_path / name
    shutil.copytree(examples_dir() / name, folder, ignore=shutil.ignore_patterns("runs", "*.safetensors"))
    project = load_project(folder)
    assert project.time_steps == 4 and project.training.epochs <= 30
    events = list(Session(project, plugin_host.registry).train())
    finished = events[-1]
    assert finished.status == "ok", finished.error
    assert finished.summary["test_accuracy"] >= bar
