"""Compress dialog, Variants view and Deploy panel, driven through the real window (offscreen).

The trained example comes from the session fixture ``trained_digits_conv`` and is copied into
``tmp_path`` first. The real plugins do the work (``wb_qp_snn.rescaw``, ``wb_sim.simulator``);
a throw-away plugin adds a backend whose target is too small, to see a fit problem reported.
"""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project
from workbench.core.runs.events import EnergySample
from workbench.core.runs.session import Session
from workbench.testing.fixtures import make_tiny_project

pytestmark = pytest.mark.gui
RUN_TIMEOUT = 120_000
LEFT = Qt.MouseButton.LeftButton

TOY_BACKEND = """
    import time

    import torch

    from workbench.core.runs.deploy import FitIssue
    from workbench.core.model.readout import class_scores


    class ToyBackend:
        def __init__(self, chunk=10, delay=0.0):
            self.chunk, self.delay = chunk, delay

        def targets(self):
            return {"roomy": "fits anything", "tiny": "one neuron core"}

        def check(self, ctx):
            if ctx.target == "tiny":
                return [FitIssue("conv1", "needs 32 channels, the core has 4")]
            return [FitIssue("", "spikes are counted, not measured", "warning")]

        def deploy(self, ctx):
            for i, step in enumerate(("convert", "build")):
                yield ctx.progress(i, 2, message=step)
            return {"energy": {"pj_per_inference": 1.5, "source": "toy counter"}}

        def run(self, ctx):
            x, y = ctx.test_arrays()
            correct = 0
            for start in range(0, len(y), self.chunk):
                ctx.check_cancel()
                time.sleep(self.delay)
                xs = torch.from_numpy(x[start:start + self.chunk])
                with torch.no_grad():
                    pred = class_scores(ctx.model(ctx.encode(xs))).argmax(-1).numpy()
                hits = (pred == y[start:start + self.chunk]).tolist()
                correct += sum(hits)
                yield ctx.live_energy([100.0 + i for i in range(len(hits))], hits,
                                      kind="measurement", source="toy counter")
            return {"accuracy": correct / len(y), "samples": len(y)}
    """

TOY_PLUGIN = """
    from workbench.pluginhost import BackendSpec, ParamSpec, hookimpl

    @hookimpl
    def wb_backends():
        return [BackendSpec(id="gui_toy.board", display_name="Toy board", kind="hardware",
                            factory="gui_toy_impl:ToyBackend",
                            params=(ParamSpec("chunk", 10, "int", low=1),
                                    ParamSpec("delay", 0.0, low=0.0)))]
    """


def _copy(folder, tmp_path, name="project"):
    target = tmp_path / name
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("runs", "variants", "deploy"))
    return target


def _toy_host(plugin_module):
    from workbench.pluginhost.manager import PluginHost

    plugin_module("gui_toy_impl", TOY_BACKEND)
    name = plugin_module("gui_toy", TOY_PLUGIN)
    host = PluginHost(strict=True)
    host.load(modules=[name])
    return host


def _click_and_wait(qtbot, window, button):
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        qtbot.mouseClick(button, LEFT)
    return finished.args[1]


def _visible_boxes(window):
    return [b for b in window.findChildren(QMessageBox) if b.isVisible()]


def test_compress_from_the_menu_then_compare_and_open_the_variant(
        make_main_window, qtbot, tmp_path, trained_digits_conv):
    folder = _copy(trained_digits_conv, tmp_path)
    window = make_main_window()
    assert window.open_project(folder)
    window.act_compress.trigger()  # Network ▸ Compress…
    dialog = window.compress_dialog
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    assert "wb_qp_snn.rescaw" in dialog.method_ids()
    assert dialog.select_method("wb_qp_snn.rescaw")
    assert "ReScaW" in dialog.method_doc.text()
    dialog.form.editors["bits"].setValue(4)
    dialog.form.editors["finetune_epochs"].setValue(1)
    assert dialog.params()["bits"] == 4 and dialog.params()["finetune_epochs"] == 1
    assert dialog.name_edit.text() == "digits_conv-rescaw"
    assert dialog.folder_edit.text() == str(folder / "variants" / "digits_conv-rescaw")
    assert dialog.start_button.isEnabled() and dialog.reason_text() == ""

    assert _click_and_wait(qtbot, window, dialog.start_button) == "ok"
    variant = folder / "variants" / "digits_conv-rescaw"
    assert dialog.result_folder() == str(variant)
    assert load_project(variant).weights_path.exists()
    table = {row[0]: row for row in dialog.result_rows()}
    assert table["Model size"][3].startswith("×") and "smaller" in table["Model size"][3]
    assert {"Accuracy", "Parameters", "Energy per sample (estimate)"} <= set(table)
    assert any(name.startswith("Bits, ") and row[2] == "4" for name, row in table.items())
    assert dialog.step_label.text().startswith("Done")
    # which layers were quantised is on screen, not only in the log (issue #12)
    assert dialog.precision_text() == ("Quantised 1 of 3 layers to 4 bits: conv2.conv; kept full "
                                       "precision: conv1.conv, fc (keep_first_last)")
    assert dialog.precision_label.isVisible()
    assert dialog.open_button.isEnabled()
    # the run was the dialog's: the training panel and the error boxes stayed out of it
    assert window.training.status.text() == "Ready"
    assert _visible_boxes(window) == []
    # the next default name does not overwrite the variant
    assert dialog.name_edit.text() == "digits_conv-rescaw-2"

    view = window.show_variants()
    rows = {row.folder: row for row in view.rows()}
    parent = view.rows()[0]
    assert parent.current and parent.name == "digits_conv"
    made = rows[str(variant)]
    assert made.method == "wb_qp_snn.rescaw" and "bits=4" in made.params
    assert made.size_bytes is not None and parent.size_bytes is not None
    assert made.size_bytes < parent.size_bytes
    assert made.accuracy is not None and made.energy_pj is not None
    assert made.precision.startswith("quantised 1 of 3 layers to 4 bits: conv2.conv")
    labels = view.point_labels()
    assert set(labels["size"]) == {"digits_conv", "digits_conv-rescaw"} == set(labels["energy"])
    assert view.hint_text() == ""
    csv = view.export(tmp_path / "variants.csv").read_text(encoding="utf-8").splitlines()
    assert csv[0].startswith("name,folder,method") and len(csv) == 3
    assert view.export(tmp_path / "variants.png").stat().st_size > 0

    qtbot.mouseClick(dialog.open_button, LEFT)
    assert window.doc.project.name == "digits_conv-rescaw"
    assert window.doc.project.compression[-1]["method"] == "wb_qp_snn.rescaw"
    # the variant's own row now shows its recorded figures, beside its parent's
    rows = window.variants.rows()
    assert rows[0].size_bytes == made.size_bytes
    origin = [row for row in rows if row.name == "digits_conv"]
    assert len(origin) == 1 and origin[0].size_bytes == parent.size_bytes
    assert origin[0].folder == str(folder.resolve())


def test_deploy_to_the_simulator_with_a_live_energy_readout(
        make_main_window, qtbot, tmp_path, trained_digits_conv):
    window = make_main_window(load_project(_copy(trained_digits_conv, tmp_path)))
    panel = window.show_deploy_panel()
    assert panel.isVisible()
    assert panel.backend_ids()[0] == "wb_sim.simulator"  # the default
    assert panel.select_backend("wb_sim.simulator")
    assert panel.target_names() and panel.current_target()
    panel.samples_spin.setValue(300)

    assert _click_and_wait(qtbot, window, panel.check_button) == "ok"
    assert "fits" in panel.fit_label.text() and "does not" not in panel.fit_label.text()

    readouts = []

    def on_event(event):  # connected after the panel: it has drawn the event already
        if isinstance(event, EnergySample):
            readout = panel.readout()
            readouts.append((readout["samples"], readout["estimate"], window.controller.busy))

    window.controller.run_event.connect(on_event)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        qtbot.mouseClick(panel.deploy_button, LEFT)
        assert panel.cancel_button.isEnabled() and not panel.deploy_button.isEnabled()
        qtbot.waitUntil(lambda: panel.samples_done() > 0, timeout=RUN_TIMEOUT)
        qtbot.waitUntil(lambda: panel.trace_points() > 0, timeout=5_000)
    window.controller.run_event.disconnect(on_event)
    assert finished.args[1] == "ok", panel.status_label.text()
    # several live updates, each while the run was still going, each with more samples
    assert len({samples for samples, _, _ in readouts}) >= 3
    assert all(busy for _, _, busy in readouts)
    # the cost-table estimate stands beside the backend's figure during the run, labelled
    assert all("estimate" in estimate and "J per sample" in estimate
               for _, estimate, _ in readouts)
    assert readouts[0][0] != readouts[-1][0] and readouts[-1][0] == "300 / 300"
    readout = panel.readout()
    assert readout["provenance"].startswith(("Measurement — ", "Estimate — "))
    assert "pJ" in readout["total"] or "J" in readout["total"]
    assert readout["accuracy"].endswith("%")
    assert "estimate" in readout["estimate"]
    assert panel.samples_done() == 300 and panel.trace_points() == 300
    assert panel.report_rows()  # the backend's report, grouped
    card = panel.summary_rows()  # led by a summary card: energy with its kind, accuracy
    assert card["Energy"].endswith(" per sample (estimate)") and "e+" not in card["Energy"]
    assert card["Accuracy"].endswith("on 300 test samples") and card["Throughput"]
    assert panel.step_rows() and all(status == "done" for _, status in panel.step_rows())
    assert (window.doc.project.folder / "deploy").is_dir()
    csv = panel.export(tmp_path / "trace.csv").read_text(encoding="utf-8").splitlines()
    assert len(csv) == 301
    assert window.training.status.text() == "Ready" and _visible_boxes(window) == []
    # the deployment is remembered in the project (undoably) and comes back when it reopens
    choice = {"backend": "wb_sim.simulator", "target": "cpu", "params": {}}
    assert window.doc.project.deploy == choice
    window.doc.undo_stack.undo()
    assert window.doc.project.deploy is None
    window.doc.undo_stack.redo()
    assert window.save()
    panel.select_backend("wb_nir.nir")
    window.training.status.setText("Done: 3 epoch(s), test accuracy 97.0%")  # the last run's
    assert window.open_project(window.doc.project.folder)
    assert window.training.status.text() == "Ready"
    assert panel.current_spec().id == "wb_sim.simulator" and panel.current_target() == "cpu"
    # an opened project starts with a clean panel: no results of the last deployment stay
    assert panel.samples_done() == 0 and panel.trace_points() == 0
    assert not panel.report_rows() and not panel.step_rows() and not panel.fit_rows()
    assert panel.fit_label.text() == "Fit not checked yet"
    assert panel.readout()["total"] == "—" and panel.status_label.text() == "Ready"


def test_cancel_stops_a_compression_and_a_deployment(
        make_main_window, qtbot, tmp_path, trained_digits_conv, plugin_module):
    folder = _copy(trained_digits_conv, tmp_path)
    window = make_main_window(load_project(folder), host=_toy_host(plugin_module))
    dialog = window.show_compress_dialog()
    dialog.select_method("wb_qp_snn.rescaw")
    dialog.set_param("finetune_epochs", 200)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        qtbot.mouseClick(dialog.start_button, LEFT)
        qtbot.waitUntil(lambda: dialog.progress.maximum() > 1 and dialog.progress.value() > 0,
                        timeout=RUN_TIMEOUT)
        assert not dialog.start_button.isEnabled()
        qtbot.mouseClick(dialog.cancel_button, LEFT)
    assert finished.args[1] == "cancelled"
    assert dialog.step_label.text().startswith("Cancelled")
    assert not (folder / "variants" / "digits_conv-rescaw").exists()
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()

    panel = window.show_deploy_panel()
    assert panel.select_backend("gui_toy.board") and panel.select_target("roomy")
    panel.set_param("chunk", 1)
    panel.set_param("delay", 0.02)
    panel.samples_spin.setValue(1000)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        qtbot.mouseClick(panel.deploy_button, LEFT)
        qtbot.waitUntil(lambda: panel.samples_done() >= 3, timeout=RUN_TIMEOUT)
        qtbot.mouseClick(panel.cancel_button, LEFT)
    assert finished.args[1] == "cancelled"
    assert panel.status_label.text() == "Cancelled"
    assert panel.samples_done() < 1000
    assert panel.step_rows()[-1][1] == "cancelled"
    assert panel.deploy_button.isEnabled()


def test_a_target_that_does_not_fit_is_named_and_the_deployment_refused(
        make_main_window, qtbot, tmp_path, trained_digits_conv, plugin_module):
    window = make_main_window(load_project(_copy(trained_digits_conv, tmp_path)),
                              host=_toy_host(plugin_module))
    panel = window.show_deploy_panel()
    assert "Toy board (hardware)" in [panel.backend_combo.itemText(i)
                                      for i in range(panel.backend_combo.count())]
    panel.select_backend("gui_toy.board")
    assert panel.target_names() == ["roomy", "tiny"]
    panel.select_target("tiny")
    assert _click_and_wait(qtbot, window, panel.check_button) == "ok"
    assert "does not fit tiny" in panel.fit_label.text()
    assert panel.fit_rows() == ["error: node 'conv1': needs 32 channels, the core has 4"]
    assert _click_and_wait(qtbot, window, panel.deploy_button) == "failed"
    assert panel.status_label.text() == ("Failed: node 'conv1': does not fit tiny: needs 32 "
                                         "channels, the core has 4")
    assert _visible_boxes(window) == []
    panel.select_target("roomy")
    assert _click_and_wait(qtbot, window, panel.check_button) == "ok"
    assert "fits roomy, with 1 warning" in panel.fit_label.text()


def test_compress_and_deploy_say_why_they_cannot_start(make_main_window, qtbot, tmp_path):
    folder = tmp_path / "digits_conv"
    shutil.copytree(examples_dir() / "digits_conv", folder,
                    ignore=shutil.ignore_patterns("runs", "*.safetensors"))
    window = make_main_window(load_project(folder))
    dialog = window.show_compress_dialog()
    assert "not trained yet" in dialog.reason_text()
    assert not dialog.start_button.isEnabled()
    assert "not trained yet" in dialog.start_button.toolTip()
    qtbot.mouseClick(dialog.start_button, LEFT)
    assert not window.controller.busy and dialog.start() == ""
    panel = window.show_deploy_panel()
    assert "not trained yet" in panel.reason_text()
    assert not panel.deploy_button.isEnabled() and not panel.check_button.isEnabled()

    window.new_project()  # no folder: nowhere to write a variant
    assert "no folder yet" in dialog.reason_text() and not dialog.start_button.isEnabled()
    assert "no folder yet" in panel.reason_text()


def test_a_failing_compression_shows_one_clear_line(make_main_window, qtbot, tmp_path):
    project = make_tiny_project(tmp_path / "tiny")  # two synaptic layers only
    window = make_main_window(load_project(tmp_path / "tiny"))
    session = Session(project, window.host.registry)
    session.build()
    session.save_weights()
    window.open_project(tmp_path / "tiny", ask=False)
    dialog = window.show_compress_dialog()
    dialog.select_method("wb_qp_snn.rescaw")
    dialog.set_param("finetune_epochs", 0)
    assert _click_and_wait(qtbot, window, dialog.start_button) == "failed"
    text = dialog.step_label.text()
    assert text.startswith("Failed: wb_qp_snn.rescaw parameter 'keep_first_last'")
    assert "\n" not in text and "Traceback" not in dialog.log_view.toPlainText()
    assert _visible_boxes(window) == []
    assert dialog.start_button.isEnabled()


def test_trained_weights_must_be_saved_before_compressing(make_main_window, qtbot, tmp_path):
    window = make_main_window(make_tiny_project(tmp_path / "tiny"))
    dialog = window.show_compress_dialog()
    assert "not trained yet" in dialog.reason_text()
    window.doc.set_setting("training.epochs", 1)
    assert _click_and_wait(qtbot, window, window.training.train_button) == "ok"
    assert "not saved yet" in dialog.reason_text() and not dialog.start_button.isEnabled()
    assert "not saved yet" in window.deploy_panel.reason_text()
    assert window.save()
    assert dialog.reason_text() == "" and dialog.start_button.isEnabled()
    assert window.deploy_panel.deploy_button.isEnabled()
    window.doc.set_node_param("hidden", "out_features", 8)  # the weights no longer fit
    assert "network changed" in dialog.reason_text()


def test_the_variants_view_reports_an_unreadable_variant(qtbot, tmp_path):
    from workbench.gui.views.compare import VariantsView

    project = make_tiny_project(tmp_path / "tiny")
    broken = tmp_path / "tiny" / "variants" / "broken"
    broken.mkdir(parents=True)
    (broken / "project.json").write_text("{ not json", encoding="utf-8")
    view = VariantsView()
    qtbot.addWidget(view)
    view.set_project(project)
    assert [row.name for row in view.rows()] == ["tiny"]
    assert "broken" in view.note_label.text() and "cannot read project.json" in \
        view.note_label.text()
    assert view.table_texts()[0][3] == "—"  # nothing measured yet: no made-up figure
    assert view.hint_text().startswith("No variants yet")


class NoBackends:
    """A registry without backends: the panel only shows the events it is given."""

    def of_kind(self, _kind):
        return []

    def get(self, _spec_id):
        return None


def test_progress_counters_and_timers_stay_on_their_step(qtbot):
    """The core marks each backend step; the panel lists one row per step and shows a running
    step's counter or timer beside it."""
    from workbench.core.runs.deploy import with_steps
    from workbench.core.runs.events import Progress, RunFinished
    from workbench.gui.panels.deploy import DeployPanel
    from workbench.gui.run_controller import RunController
    from workbench.gui.run_owner import RunContext

    controller = RunController()
    panel = DeployPanel(NoBackends(), controller, lambda run, state: run.id,
                        lambda: RunContext(None, None, "not needed"))
    qtbot.addWidget(panel)
    panel._run_id, panel._run_kind = "r", "deploy"  # as if its deployment "r" had started
    messages = ["fit check", "simulating the core (Amaranth): 1/50",
                "simulating the core (Amaranth): 2/50", "yosys: synthesising (0 s)",
                "yosys: synthesising (5 s)", "exporting Verilog (~1 min) (0 s)"]
    for event in with_steps(Progress("r", i, 6, message=m) for i, m in enumerate(messages)):
        controller.run_event.emit(event)
    assert panel.step_rows() == [("fit check", "done"),
                                 ("simulating the core (Amaranth)", "done"),
                                 ("yosys: synthesising", "done"),
                                 ("exporting Verilog (~1 min)", "running")]
    assert panel.steps.item(2).text() == "✓ yosys: synthesising"
    assert panel.steps.item(3).text() == "▶ exporting Verilog (~1 min) — (0 s)"
    controller.run_event.emit(RunFinished("r", "ok", summary={}))
    assert [status for _, status in panel.step_rows()] == ["done"] * 4


def _exchange(qtbot, window, start):
    """Start a NIR import or export and wait for it: ``(what, ok)``."""
    with qtbot.waitSignal(window.exchange.finished, timeout=RUN_TIMEOUT) as done:
        run_id = start()
        assert run_id and window.controller.busy  # a run on the worker, not on the GUI thread
    return tuple(done.args)


def test_nir_export_then_import_from_the_file_menu(make_main_window, qtbot, tmp_path,
                                                   trained_digits_mlp):
    folder = _copy(trained_digits_mlp, tmp_path, "digits_mlp")
    window = make_main_window(load_project(folder))
    assert window.act_export_nir.text() == "&Export NIR…"
    target = tmp_path / "mlp.nir"
    assert _exchange(qtbot, window, lambda: window.export_nir(target)) == ("export", True)
    assert target.stat().st_size > 0
    assert _exchange(qtbot, window, lambda: window.import_nir(target)) == ("import", True)
    opened = window.doc.project
    assert opened.folder == tmp_path / "mlp"
    assert [n.spec for n in opened.graph.nodes] == \
        [n.spec for n in load_project(folder).graph.nodes]
    assert opened.weights_path.exists()
    assert list((opened.folder / "runs").glob("import-*.jsonl"))  # the run's record
    assert window.training.status.text() == "Ready" and _visible_boxes(window) == []
    # a second import does not overwrite the first project
    assert _exchange(qtbot, window, lambda: window.import_nir(target)) == ("import", True)
    assert window.doc.project.folder == tmp_path / "mlp-2"
    # a network NIR cannot express is refused in one line, naming the node
    conv = _copy(examples_dir() / "digits_conv", tmp_path, "conv")
    window.open_project(conv)
    assert window.export_nir(tmp_path / "conv.nir") == ""  # untrained: the reason is shown
    assert "not trained" in window.last_message and not window.controller.busy
    bad = tmp_path / "junk.nir"
    bad.write_text("not a NIR file")
    assert _exchange(qtbot, window, lambda: window.import_nir(bad)) == ("import", False)
    assert "NIR" in window.last_message and "Traceback" not in window.last_message
    assert window.doc.project.name == "digits_conv"  # the open project stays open


def test_nir_export_names_the_node_nir_cannot_express(make_main_window, qtbot, tmp_path,
                                                      trained_digits_conv):
    window = make_main_window(load_project(_copy(trained_digits_conv, tmp_path)))
    assert _exchange(qtbot, window, lambda: window.export_nir(tmp_path / "conv.nir")) == \
        ("export", False)
    assert "pool1" in window.last_message and "max-pool" in window.last_message
    assert not (tmp_path / "conv.nir").exists()
