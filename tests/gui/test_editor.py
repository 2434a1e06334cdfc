"""The network editor, driven the way a user drives it: mouse, keys, drops, context menus."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from workbench.core.build.compile import validate
from workbench.core.model.graph import Node
from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project
from workbench.gui.document import ProjectDocument
from workbench.gui.editor import MIME_SPEC, NetworkEditor
from workbench.testing.fixtures import make_tiny_project

pytestmark = pytest.mark.gui


def _document(project, registry):
    yield ProjectDocument(project, registry)


@pytest.fixture
def tiny_doc(plugin_host, tmp_path):
    yield from _document(make_tiny_project(tmp_path / "p"), plugin_host.registry)


@pytest.fixture
def conv_doc(plugin_host):
    yield from _document(load_project(examples_dir() / "digits_conv"), plugin_host.registry)


def _editor(qtbot, doc) -> NetworkEditor:
    editor = NetworkEditor(doc)
    qtbot.addWidget(editor)
    editor.resize(700, 800)
    editor.show()
    qtbot.waitExposed(editor)
    return editor


@pytest.fixture
def editor(qtbot, tiny_doc):
    return _editor(qtbot, tiny_doc)


def _view_pos(editor: NetworkEditor, scene_point: QPointF) -> QPoint:
    return editor.mapFromScene(scene_point)


def _drag(qtbot, editor: NetworkEditor, start: QPointF, end: QPointF, steps: int = 4) -> None:
    """Press at ``start``, move in steps, release at ``end`` (scene coordinates)."""
    viewport = editor.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=_view_pos(editor, start))
    for i in range(1, steps + 1):
        point = start + (end - start) * (i / steps)
        qtbot.mouseMove(viewport, pos=_view_pos(editor, point))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=_view_pos(editor, end))


def _click_node(qtbot, editor: NetworkEditor, node_id: str) -> None:
    centre = editor.node_item(node_id).scenePos() + QPointF(-40, 0)  # clear of the text centre
    qtbot.mouseClick(editor.viewport(), Qt.MouseButton.LeftButton,
                     pos=_view_pos(editor, centre))


# -- drawing ------------------------------------------------------------------------------------
def test_draws_every_node_and_edge_without_an_undo_step(editor, tiny_doc):
    assert editor.node_count() == 3
    assert editor.edge_count() == 2
    assert editor.edge_item("flat", "hidden") is not None
    hidden = editor.node_item("hidden")
    assert (hidden.node_id, hidden.display_name) == ("hidden", "Spiking linear")
    assert not hidden.badge_visible()
    # the tiny project has no positions: they come from the layered layout, for display only
    ys = [editor.node_item(i).scenePos().y() for i in ("flat", "hidden", "fc")]
    assert ys == sorted(ys)
    assert len(set(ys)) == 3
    assert all(n.position is None for n in tiny_doc.project.graph.nodes)
    assert tiny_doc.undo_stack.count() == 0
    # ports: input on top, output at the bottom
    assert editor.port_scene_pos("hidden", "in").y() < editor.port_scene_pos("hidden", "out").y()


def test_placeholder_node_shows_plugin_missing(qtbot, plugin_host, tmp_path):
    project = make_tiny_project(tmp_path / "p")
    project.graph.nodes.append(Node("mystery", "nope_plugin.thing"))
    project.graph.edges.append(("fc", "mystery"))
    editor = _editor(qtbot, ProjectDocument(project, plugin_host.registry))
    item = editor.node_item("mystery")
    assert item.placeholder
    assert item.badge_visible()
    assert item.badge_text().startswith("plugin missing")
    assert "nope_plugin.thing" in item.badge_text()
    assert not editor.node_item("fc").badge_visible()


def test_report_shows_shapes_and_badges_for_an_invalid_edge(editor, tiny_doc, plugin_host):
    # a linear output ([10]) into a convolution, which expects [C, H, W]
    conv = tiny_doc.add_node("wb_core.spiking_conv", after="fc")
    report = validate(tiny_doc.project.graph, plugin_host.registry, (1, 8, 8))
    editor.set_report(report)
    assert editor.node_item("hidden").shape_text() == "[32]"
    assert editor.node_item("fc").shape_text() == "[10]"
    assert not editor.node_item("fc").badge_visible()
    item = editor.node_item(conv)
    assert item.badge_visible()
    assert item.badge_text() == report.nodes[conv].error
    assert "[C, H, W]" in item.badge_text()
    assert item.badge.toolTip() == report.nodes[conv].error
    # fixing it (undo) and revalidating clears the badge
    tiny_doc.undo_stack.undo()
    editor.set_report(validate(tiny_doc.project.graph, plugin_host.registry, (1, 8, 8)))
    assert editor.node_count() == 3
    editor.set_report(None)
    assert editor.node_item("fc").shape_text() == ""


def test_graph_level_error_is_shown(editor, tiny_doc, plugin_host):
    tiny_doc.disconnect("hidden", "fc")  # two outputs now
    editor.set_report(validate(tiny_doc.project.graph, plugin_host.registry, (1, 8, 8)))
    assert "one output node" in editor.graph_error()
    editor.grab()  # the banner paints without error


# -- keys ---------------------------------------------------------------------------------------
def test_delete_key_removes_the_selected_node_and_undo_restores_it(qtbot, editor, tiny_doc):
    _click_node(qtbot, editor, "hidden")
    assert editor.selected_node_ids() == ["hidden"]
    qtbot.keyClick(editor.viewport(), Qt.Key.Key_Delete)
    assert tiny_doc.project.graph.ids() == ["flat", "fc"]
    assert editor.node_count() == 2
    assert editor.edge_item("flat", "fc") is not None  # the chain is bridged
    assert tiny_doc.undo_stack.count() == 1
    tiny_doc.undo_stack.undo()
    assert editor.node_count() == 3
    assert editor.edge_count() == 2


def test_backspace_removes_a_selected_edge(qtbot, editor, tiny_doc):
    editor.edge_item("hidden", "fc").setSelected(True)
    qtbot.keyClick(editor, Qt.Key.Key_Backspace)
    assert tiny_doc.project.graph.edges == [("flat", "hidden")]
    assert editor.edge_count() == 1
    tiny_doc.undo_stack.undo()
    assert editor.edge_count() == 2


def test_delete_nodes_and_edges_together_is_one_undo_step(qtbot, editor, tiny_doc):
    editor.select_node("fc")
    editor.edge_item("flat", "hidden").setSelected(True)
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    assert tiny_doc.project.graph.ids() == ["flat", "hidden"]
    assert tiny_doc.project.graph.edges == []
    assert tiny_doc.undo_stack.count() == 1
    tiny_doc.undo_stack.undo()
    assert editor.edge_count() == 2
    assert editor.node_count() == 3


def test_ctrl_d_duplicates_the_selection(qtbot, editor, tiny_doc):
    editor.select_node("hidden")
    qtbot.keyClick(editor.viewport(), Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    graph = tiny_doc.project.graph
    assert len(graph.nodes) == 4
    copy = next(i for i in graph.ids() if i not in ("flat", "hidden", "fc"))
    assert graph.node(copy).params == graph.node("hidden").params
    assert editor.selected_node_ids() == [copy]
    assert tiny_doc.undo_stack.count() == 1


def test_keys_without_a_selection_do_nothing(qtbot, editor, tiny_doc):
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    qtbot.keyClick(editor, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert tiny_doc.undo_stack.count() == 0


# -- mouse --------------------------------------------------------------------------------------
def test_dragging_from_an_output_to_an_input_connects(qtbot, editor, tiny_doc):
    tiny_doc.disconnect("hidden", "fc")
    assert editor.edge_count() == 1
    start, end = editor.port_scene_pos("hidden", "out"), editor.port_scene_pos("fc", "in")
    viewport = editor.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=_view_pos(editor, start))
    qtbot.mouseMove(viewport, pos=_view_pos(editor, (start + end) / 2))
    assert editor.network_scene.connecting  # the rubber-band line is up
    qtbot.mouseMove(viewport, pos=_view_pos(editor, end))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=_view_pos(editor, end))
    assert not editor.network_scene.connecting
    assert ("hidden", "fc") in tiny_doc.project.graph.edges
    assert editor.edge_item("hidden", "fc") is not None
    # nothing moved: connecting is the only undo step
    assert tiny_doc.undo_stack.count() == 2
    assert all(n.position is None for n in tiny_doc.project.graph.nodes)


def test_dragging_from_an_input_back_to_an_output_connects(qtbot, editor, tiny_doc):
    tiny_doc.disconnect("flat", "hidden")
    _drag(qtbot, editor, editor.port_scene_pos("hidden", "in"),
          editor.port_scene_pos("flat", "out"))
    assert ("flat", "hidden") in tiny_doc.project.graph.edges


def test_a_connection_dropped_on_empty_space_does_nothing(qtbot, editor, tiny_doc):
    start = editor.port_scene_pos("fc", "out")
    _drag(qtbot, editor, start, start + QPointF(300, 60))
    assert tiny_doc.undo_stack.count() == 0
    assert editor.edge_count() == 2


def test_dragging_a_node_moves_it_in_one_undo_step(qtbot, editor, tiny_doc):
    item = editor.node_item("fc")
    before = item.scenePos()
    grab = before + QPointF(-50, 5)
    _drag(qtbot, editor, grab, grab + QPointF(120, 40), steps=6)
    assert tiny_doc.undo_stack.count() == 1
    x, y = tiny_doc.project.graph.node("fc").position
    assert (x, y) == pytest.approx((before.x() + 120, before.y() + 40), abs=2)
    assert item.scenePos() == QPointF(x, y)
    # the edge follows the node
    edge = editor.edge_item("hidden", "fc")
    assert edge.shape().boundingRect().bottom() >= editor.port_scene_pos("fc", "in").y() - 8
    tiny_doc.undo_stack.undo()
    assert tiny_doc.project.graph.node("fc").position is None
    assert editor.node_item("fc").scenePos() == before


def test_dragging_several_selected_nodes_is_one_undo_step(qtbot, editor, tiny_doc):
    editor.node_item("flat").setSelected(True)
    editor.node_item("hidden").setSelected(True)
    grab = editor.node_item("flat").scenePos() + QPointF(-50, 5)
    _drag(qtbot, editor, grab, grab + QPointF(-100, 0))
    graph = tiny_doc.project.graph
    assert graph.node("flat").position is not None
    assert graph.node("hidden").position is not None
    assert graph.node("fc").position is None
    assert tiny_doc.undo_stack.count() == 1
    tiny_doc.undo_stack.undo()
    assert all(n.position is None for n in tiny_doc.project.graph.nodes)


def test_clicking_selects_and_emits_node_selected(qtbot, editor):
    with qtbot.waitSignal(editor.node_selected) as blocker:
        _click_node(qtbot, editor, "fc")
    assert blocker.args == ["fc"]
    assert editor.selected_node_ids() == ["fc"]
    empty = editor.node_item("fc").scenePos() + QPointF(400, 0)
    with qtbot.waitSignal(editor.node_selected) as blocker:
        qtbot.mouseClick(editor.viewport(), Qt.MouseButton.LeftButton,
                         pos=_view_pos(editor, empty))
    assert blocker.args == [""]
    with qtbot.waitSignal(editor.node_selected) as blocker:
        editor.select_node("flat")
    assert blocker.args == ["flat"]


def test_rebuild_keeps_selection_and_view_transform(qtbot, editor, tiny_doc):
    editor.select_node("hidden")
    editor.zoom(1.5)
    transform = editor.transform()
    tiny_doc.set_node_param("hidden", "out_features", 48)
    tiny_doc.move_node("flat", (10.0, -200.0))
    assert editor.selected_node_ids() == ["hidden"]
    assert editor.transform() == transform


def test_wheel_zooms(qtbot, editor):
    scale = editor.transform().m11()
    centre = QPointF(editor.viewport().rect().center())
    event = QWheelEvent(centre, QPointF(editor.viewport().mapToGlobal(centre.toPoint())),
                        QPoint(0, 0), QPoint(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(editor.viewport(), event)
    assert editor.transform().m11() == pytest.approx(scale * 1.15 ** 2)


# -- drops from the palette ---------------------------------------------------------------------
def _spec_mime(spec_id: str) -> QMimeData:
    mime = QMimeData()
    mime.setData(MIME_SPEC, spec_id.encode("utf-8"))
    return mime


def test_dropping_a_spec_adds_a_node_where_it_lands(qtbot, editor, tiny_doc):
    target = editor.node_item("fc").scenePos() + QPointF(0, 200)
    view_pos = QPointF(_view_pos(editor, target))
    mime = _spec_mime("wb_core.mean_readout")
    # as a real drag does: enter (which makes the viewport the drop target), then drop
    enter = QDragEnterEvent(view_pos.toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(editor.viewport(), enter)
    assert enter.isAccepted()
    event = QDropEvent(view_pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(editor.viewport(), event)
    assert event.isAccepted()
    graph = tiny_doc.project.graph
    assert len(graph.nodes) == 4
    new = graph.nodes[-1]
    assert new.spec == "wb_core.mean_readout"
    assert new.position == pytest.approx((target.x(), target.y()), abs=2)
    assert ("fc", new.id) in graph.edges  # wired after the output node
    assert editor.selected_node_ids() == [new.id]
    tiny_doc.undo_stack.undo()
    assert editor.node_count() == 3


def test_drops_of_unknown_or_non_layer_specs_are_refused(editor, tiny_doc):
    unknown = _spec_mime("nope.thing")  # kept alive: the event holds a plain pointer to it
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, unknown,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(editor.viewport(), enter)
    assert not enter.isAccepted()
    assert editor.drop_mime(_spec_mime("nope.thing"), QPointF()) == ""
    assert editor.drop_mime(_spec_mime("wb_core.bptt"), QPointF()) == ""  # a learning rule
    other = QMimeData()
    other.setText("wb_core.linear")
    assert editor.drop_mime(other, QPointF()) == ""
    assert tiny_doc.undo_stack.count() == 0
    assert editor.drop_mime(_spec_mime("wb_core.lif"), QPointF(5, 5))  # a neuron is a node


# -- context menus ------------------------------------------------------------------------------
def _actions(menu) -> dict:
    return {a.text(): a for a in menu.actions() if a.text()}


def test_node_menu_actions(qtbot, conv_doc):
    editor = _editor(qtbot, conv_doc)
    menu = _actions(editor.node_menu("conv2"))
    assert set(menu) == {"Delete", "Duplicate", "Move up", "Move down"}
    assert editor.selected_node_ids() == ["conv2"]
    menu["Move up"].trigger()
    assert conv_doc.project.graph.ids()[:3] == ["conv1", "conv2", "pool1"]
    assert ("conv1", "conv2") in conv_doc.project.graph.edges
    menu = _actions(editor.node_menu("conv1"))
    assert not menu["Move up"].isEnabled()
    menu["Move down"].trigger()
    assert conv_doc.project.graph.ids()[:2] == ["conv2", "conv1"]
    _actions(editor.node_menu("fc"))["Duplicate"].trigger()
    assert len(conv_doc.project.graph.nodes) == 7
    _actions(editor.node_menu("pool2"))["Delete"].trigger()
    assert "pool2" not in conv_doc.project.graph.ids()
    assert editor.edge_count() == len(conv_doc.project.graph.edges)
    assert conv_doc.undo_stack.count() == 4


def test_background_menu_auto_layout_and_fit(editor, tiny_doc):
    menu = _actions(editor.background_menu())
    assert set(menu) == {"Auto-layout", "Fit view"}
    menu["Auto-layout"].trigger()
    assert all(n.position is not None for n in tiny_doc.project.graph.nodes)
    assert tiny_doc.undo_stack.count() == 1
    menu["Fit view"].trigger()
    for node_id in ("flat", "fc"):
        point = editor.mapFromScene(editor.node_item(node_id).scenePos())
        assert editor.viewport().rect().contains(point)


def test_menu_at_picks_node_edge_or_background(editor):
    node_pos = _view_pos(editor, editor.node_item("hidden").scenePos() + QPointF(-50, 0))
    assert "Move up" in _actions(editor.menu_at(node_pos))
    middle = (editor.port_scene_pos("hidden", "out") + editor.port_scene_pos("fc", "in")) / 2
    edge_pos = _view_pos(editor, middle)
    edge_menu = _actions(editor.menu_at(edge_pos))
    assert set(edge_menu) == {"Delete connection"}
    edge_menu["Delete connection"].trigger()
    assert editor.edge_item("hidden", "fc") is None
    empty = _view_pos(editor, editor.node_item("hidden").scenePos() + QPointF(400, 0))
    assert "Auto-layout" in _actions(editor.menu_at(empty))
