"""The SNN-ViT example in the app: the attention view follows a probed sample."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project

pytestmark = pytest.mark.gui
VIEW = "wb_snn_vit.attention_view"


def test_attention_view_shows_every_step_and_head_and_scrubs(make_main_window, qtbot, tmp_path):
    folder = tmp_path / "sssa"
    shutil.copytree(examples_dir() / "digits_snn_vit_sssa", folder,
                    ignore=shutil.ignore_patterns("runs", "*.safetensors"))
    window = make_main_window(load_project(folder))
    view = window.plugin_views[VIEW]
    window.docks[VIEW].raise_()
    window.probe_now(5)
    qtbot.waitUntil(lambda: view.layers() == ["block1"], timeout=5_000)
    heads = window.doc.project.graph.node("block1").params["heads"]
    assert view.kind() == "sssa"
    assert view.frame_count() == window.doc.project.time_steps == 4
    assert view.n_heads() == heads
    masks = [[view.set_step(t) or view.current_mask(h) for h in range(heads)] for t in range(4)]
    assert all(m.shape == (4, 4) and set(np.unique(m)) <= {0.0, 1.0} for row in masks for m in row)
    # scrubbing with the slider changes the frame shown
    frames = []
    for t in range(4):
        view.step_slider.setValue(t)
        assert view.step() == t
        frames.append(view.current_image(0).copy())
    changed = any(not np.array_equal(frames[0], f) for f in frames[1:])
    masks_differ = any(not np.array_equal(masks[0][0], masks[t][0]) for t in range(1, 4))
    assert changed or not masks_differ
    assert "label" in view.title_text() or str(5) in view.title_text()
