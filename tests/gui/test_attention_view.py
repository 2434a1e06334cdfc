"""The attention view of wb_snn_vit, checked through its view-model API, not pixels."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
PIL_Image = pytest.importorskip("PIL.Image")

from PySide6.QtCore import Qt  # noqa: E402


def _load_view_module():
    """``wb_snn_vit/_qt.py`` by its path.

    The module imports nothing from the rest of its plugin, so it is loaded on its own: the
    test neither depends on the plugin package being registered with the editable install nor
    on the state of the plugin's other modules.
    """
    name = "_wb_snn_vit_qt_under_test"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[2] / "plugins" / "wb_snn_vit" / "_qt.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_qt = _load_view_module()
AttentionView = _qt.AttentionView

pytestmark = pytest.mark.gui

T, H, N = 4, 2, 16


def sssa_maps() -> dict:
    """A mask that differs between every pair of steps and between heads."""
    token = torch.arange(N)
    mask = torch.zeros(T, 1, H, N)
    for t in range(T):
        for head in range(H):
            mask[t, 0, head] = ((token + head) % (t + 2) == 0).float()
    gen = torch.Generator().manual_seed(0)
    salience = torch.rand(T, 1, H, N, generator=gen) * 3.0
    return {"kind": "sssa", "mask": mask, "salience": salience}


def ssa_maps() -> dict:
    gen = torch.Generator().manual_seed(1)
    return {"kind": "ssa",
            "attention": torch.softmax(torch.randn(T, 1, H, N, N, generator=gen), dim=-1)}


def probe_item(**extra) -> dict:
    gen = torch.Generator().manual_seed(2)
    item = {"input": torch.rand(1, 8, 8, generator=gen),
            "maps": {"blocks.0.attn": sssa_maps(), "blocks.1.attn": ssa_maps()},
            "label": 3, "predicted": 5, "index": 12}
    item.update(extra)
    return item


@pytest.fixture
def view(qtbot):
    widget = AttentionView()
    qtbot.addWidget(widget)
    widget.set_probe(probe_item())
    return widget


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_sssa_shows_one_frame_per_step_and_one_column_per_head(view):
    assert view.layers() == ["blocks.0.attn", "blocks.1.attn"]
    assert view.kind() == "sssa"
    assert view.frame_count() == view.n_steps() == T
    assert view.n_heads() == H
    assert view.step_slider.maximum() == T - 1
    assert view.hint_text() == ""
    assert view.title_text() == "Sample #12 — label 3, predicted 5"
    assert view.query_spin.isHidden()
    mask = sssa_maps()["mask"]
    for t in range(T):
        view.set_step(t)
        assert view.step() == t
        for head in range(H):
            np.testing.assert_array_equal(view.current_mask(head),
                                          mask[t, 0, head].reshape(4, 4).numpy())
            picture = view.current_image(head)
            assert picture.dtype == np.uint8 and picture.shape[2] == 4
            # an 8x8 image under a 4x4 token grid: every token tints a 2x2 patch
            assert picture.shape[:2] == (8, 8)


def test_mask_tints_exactly_the_selected_patches(qtbot):
    view = AttentionView()
    qtbot.addWidget(view)
    view.set_probe(probe_item(input=torch.zeros(1, 8, 8)))
    picture = view.current_image(0)
    tinted = picture[..., 0] > 0  # black input: only the tint has any red
    expected = np.kron(view.current_mask(0), np.ones((2, 2))) > 0
    np.testing.assert_array_equal(tinted, expected)


def test_salience_levels_are_fixed_over_steps_and_heads(view):
    salience = sssa_maps()["salience"]
    low, high = view.levels()
    assert low == pytest.approx(float(salience.min()))
    assert high == pytest.approx(float(salience.max()))
    view.set_step(1)
    np.testing.assert_allclose(view.current_salience(1), salience[1, 0, 1].reshape(4, 4))
    assert view.levels() == (low, high)


def test_scrubbing_the_slider_changes_step_and_frame(view, qtbot):
    first = view.current_image(0)
    view.step_slider.setValue(2)
    assert view.step() == 2
    assert view.step_label.text() == "t = 2 / 4"
    assert not np.array_equal(view.current_image(0), first)
    view.step_slider.setFocus()
    qtbot.keyClick(view.step_slider, Qt.Key.Key_Right)
    assert view.step() == 3
    qtbot.keyClick(view.step_slider, Qt.Key.Key_Home)
    assert view.step() == 0
    np.testing.assert_array_equal(view.current_image(0), first)
    view.set_step(99)  # clamped
    assert view.step() == T - 1


def test_play_advances_and_loops(view, qtbot):
    view.set_step(T - 1)
    view.play()
    assert view.is_playing()
    assert view.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: view.step() == 0, timeout=3000)  # looped past the last step
    qtbot.waitUntil(lambda: view.step() == 1, timeout=3000)
    view.play_button.click()
    assert not view.is_playing()
    assert view.play_button.text() == "Play"


def test_ssa_query_spin_box_changes_the_row(view):
    attention = ssa_maps()["attention"]
    view.set_layer("blocks.1.attn")
    assert view.kind() == "ssa"
    assert not view.query_spin.isHidden()
    assert view.query_spin.maximum() == N - 1
    view.set_step(1)
    np.testing.assert_allclose(view.current_image(0), attention[1, 0, 0, 0].reshape(4, 4))
    before = view.current_image(1)
    view.query_spin.setValue(5)
    assert view.query() == 5
    np.testing.assert_allclose(view.current_image(1), attention[1, 0, 1, 5].reshape(4, 4))
    assert not np.array_equal(view.current_image(1), before)
    assert view.levels() == pytest.approx((float(attention.min()), float(attention.max())))
    assert view.current_mask(0).size == 0


def test_layer_combo_switches_between_sssa_and_ssa(view):
    view.set_step(2)
    view.layer_combo.setCurrentIndex(1)
    assert view.kind() == "ssa"
    assert view.step() == 2  # the step is kept where the new layer has it
    assert not view.query_spin.isHidden()
    assert view.current_image(0).ndim == 2
    view.layer_combo.setCurrentIndex(0)
    assert view.kind() == "sssa"
    assert view.query_spin.isHidden()
    assert view.current_image(0).ndim == 3


def test_new_probe_keeps_layer_step_and_query(view):
    view.set_layer("blocks.1.attn")
    view.set_step(3)
    view.set_query(7)
    view.set_probe(probe_item(index=13))
    assert (view.layer(), view.step(), view.query()) == ("blocks.1.attn", 3, 7)
    assert view.title_text().startswith("Sample #13")


def test_exports_png_csv_gif_and_svg(view, tmp_path):
    png = view.export_image(tmp_path / "view.png")
    with PIL_Image.open(png) as image:
        assert image.width > 100 and image.height > 100

    rows = read_csv(view.export_csv(tmp_path / "view.csv"))
    assert rows[0] == ["layer", "kind", "t", "head", "token", "value"]
    assert len(rows) == 1 + 2 * T * H * N
    masks = [r for r in rows[1:] if r[1] == "mask"]
    mask = sssa_maps()["mask"]
    assert all(int(r[5]) == int(mask[int(r[2]), 0, int(r[3]), int(r[4])]) for r in masks)

    view.set_step(1)
    gif = view.export_gif(tmp_path / "view.gif")
    with PIL_Image.open(gif) as image:
        assert image.n_frames == T
        assert image.info.get("loop") == 0
        assert image.info.get("duration") == pytest.approx(300, abs=10)
    assert view.step() == 1  # the export put the step back

    assert view.export(tmp_path / "grid.svg").stat().st_size > 0

    view.set_layer("blocks.1.attn")
    view.set_query(2)
    rows = read_csv(view.export(tmp_path / "ssa.csv"))
    assert len(rows) == 1 + T * H * N
    assert {r[1] for r in rows[1:]} == {"attention[q=2]"}


@pytest.mark.parametrize("maps", [{}, None])
def test_no_maps_shows_the_hint(qtbot, tmp_path, maps):
    view = AttentionView()
    qtbot.addWidget(view)
    assert view.hint_text() == _qt.EMPTY_HINT
    item = probe_item()
    if maps is None:
        del item["maps"]
    else:
        item["maps"] = maps
    view.set_probe(item)
    assert view.hint_text() == _qt.EMPTY_HINT
    assert view.frame_count() == 0 and view.layers() == []
    view.play()
    assert not view.is_playing()
    with pytest.raises(ValueError, match="no attention maps"):
        view.export_gif(tmp_path / "never.gif")
    assert not (tmp_path / "never.gif").exists()


@pytest.mark.parametrize(("maps", "named"), [
    ({"kind": "sssa", "mask": torch.zeros(4, 16)}, "[4, 16]"),
    ({"kind": "sssa", "mask": torch.zeros(4, 1, 2, 16),
      "salience": torch.zeros(4, 1, 2, 9)}, "[4, 1, 2, 9]"),
    ({"kind": "ssa", "attention": torch.zeros(4, 1, 2, 16, 9)}, "[4, 1, 2, 16, 9]"),
    ({"kind": "gated"}, "'gated'"),
    ("not a dict", "must be a dict"),
])
def test_odd_maps_show_a_hint_naming_the_problem(qtbot, maps, named):
    view = AttentionView()
    qtbot.addWidget(view)
    view.set_probe({"maps": {"bad": maps}})
    assert "bad" in view.hint_text() and named in view.hint_text()
    view.set_probe("not an item")
    assert "str" in view.hint_text()


def test_a_broken_layer_does_not_hide_the_good_one(qtbot):
    view = AttentionView()
    qtbot.addWidget(view)
    view.set_probe({"maps": {"bad": {"kind": "ssa"}, "good": sssa_maps()}})
    assert view.layer() == "good" and view.hint_text() == ""
    view.set_layer("bad")
    assert "attention" in view.hint_text()


def test_missing_input_and_non_square_tokens(qtbot):
    view = AttentionView()
    qtbot.addWidget(view)
    mask = torch.zeros(2, 1, 1, 6)
    mask[1, 0, 0, 4] = 1
    view.set_probe({"maps": {"a": {"kind": "sssa", "mask": mask, "salience": mask}}})
    assert view.grid_shape() == (1, 6)
    view.set_step(1)
    np.testing.assert_array_equal(view.current_mask(0), [[0, 0, 0, 0, 1, 0]])
    picture = view.current_image(0)
    assert picture.shape[:2] == (1, 6)
    assert picture[0, 4, 0] > 0 and picture[0, 3, :3].sum() == 0  # blank background
    view.set_probe({"input": torch.zeros(5), "maps": {"a": {"mask": mask}}})
    assert "input not shown" in view.title_text()
    assert view.frame_count() == 2
