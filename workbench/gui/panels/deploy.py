"""The Deploy panel: backend, target and parameters; fit check; the deployment's steps, its
report, and the live energy readout while the deployed model runs the test set.

Every energy figure on screen says what it is. The backend's live figure is
labelled with the ``kind`` ("measurement" or "estimate") and ``source`` its events carry; the
cost-table estimate of the torch model stands beside it, labelled with its table.

Runs (the fit check too: it may build the network) are :func:`catalog.check_fit
<workbench.core.runs.catalog.check_fit>` and :func:`catalog.deploy
<workbench.core.runs.catalog.deploy>`, started on the window's run controller. The core sends
the cost-table estimate right after the fit check, so it shows during the whole deployment,
and a :class:`~workbench.core.runs.events.StepStarted` whenever a backend step begins (the
worker forwards per-batch progress at most a few times a second, which could otherwise drop a
short step from the list).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.specs import BackendSpec
from workbench.core.runs import catalog
from workbench.core.runs.events import (
    EnergySample,
    Log,
    Progress,
    RunEvent,
    RunFinished,
    StepStarted,
)
from workbench.core.runs.reports import format_energy, step_name
from workbench.gui import startup
from workbench.gui.panels.deploy_card import ReportTree, SummaryCard
from workbench.gui.panels.param_form import ParamForm
from workbench.gui.panels.training import format_eta
from workbench.gui.run_owner import Launch, RunContext, RunOwner, one_line
from workbench.gui.views.export import ExportMixin

log = logging.getLogger(__name__)

DEFAULT_SAMPLES = 100
REDRAW_MS = 100  # the trace redraws at most 10 times a second, however fast samples come
_STEP_MARKS = {"running": "▶", "done": "✓", "failed": "✗", "cancelled": "■"}
_SPEC_ROLE = Qt.ItemDataRole.UserRole
#: the bar's units per backend step, so a step's own counter moves the bar within the step
_STEP_UNITS = 1000
#: a step's counter at the end of its message ("simulating the core (Amaranth): 12/50")
_COUNTER = re.compile(r":\s*(\d+)\s*/\s*(\d+)\s*$")
#: a step's share of the bar from its last duration stops short of full: the estimate may be low
_ESTIMATE_CAP = 0.95


def _now() -> float:
    """The steps' clock (a function, so a test can set the time)."""
    return time.perf_counter()


#: backend kinds in the chooser's order: the simulator (fast, always there) is the default
_KIND_ORDER = {"simulator": 0, "hardware": 1, "exchange": 2}


class DeployPanel(RunOwner, QWidget, ExportMixin):
    """Deploy the open project to a backend and watch it run.

    ``deployed(choice)`` after a successful deployment, with ``{"backend", "target",
    "params"}``: the window records it as the project's deploy target, and
    :meth:`use_choice` brings it back when the project is opened again.
    """

    deployed = Signal(dict)

    def __init__(self, registry: Any, controller: Any, launch: Launch,
                 context: Callable[[], RunContext], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.controller = controller
        self._launch = launch
        self._context = context
        self._values: dict[str, dict[str, Any]] = {}
        self._run_id = ""
        self._run_kind = ""
        self._energies: list[float] = []
        self._live: dict[str, Any] = {}
        self._estimate: dict[str, Any] | None = None
        self._summary: dict[str, Any] = {}
        self._dirty_plot = False
        self._targets: dict[str, str] = {}
        self._target_problem = ""
        self.form: ParamForm | None = None

        # -- choosers ------------------------------------------------------------------------
        self.backend_combo = QComboBox()
        self.backend_combo.setObjectName("deploy_backend")
        self.backend_combo.currentIndexChanged.connect(lambda _i: self._on_backend_changed())
        self.target_combo = QComboBox()
        self.target_combo.setObjectName("deploy_target")
        self.target_combo.currentIndexChanged.connect(lambda _i: self._on_target_changed())
        self.samples_spin = QSpinBox(minimum=1, maximum=1_000_000, value=DEFAULT_SAMPLES)
        self.samples_spin.setToolTip("How many test samples the deployed model runs")
        self.description = QLabel()
        self.description.setWordWrap(True)
        choose = QGridLayout()
        for row, (title, widget) in enumerate((("Backend", self.backend_combo),
                                               ("Target", self.target_combo),
                                               ("Test samples", self.samples_spin))):
            choose.addWidget(QLabel(title), row, 0)
            choose.addWidget(widget, row, 1)
        choose.setColumnStretch(1, 1)
        self.params_box = QGroupBox("Parameters")
        self.params_layout = QVBoxLayout(self.params_box)
        self.no_params = QLabel("This backend has no parameters.")
        self.params_layout.addWidget(self.no_params)

        # -- buttons, reason, fit ------------------------------------------------------------
        self.check_button = QPushButton("Check fit")
        self.check_button.setToolTip("Ask the backend what does not fit the target, and why")
        self.check_button.clicked.connect(self.check)
        self.deploy_button = QPushButton("Deploy")
        self.deploy_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the deployment")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        for widget in (self.check_button, self.deploy_button, self.cancel_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        self.reason_label = QLabel()
        self.reason_label.setWordWrap(True)
        self.reason_label.setStyleSheet("color: #c0392b;")
        self.status_label = QLabel("Ready")
        self.status_label.setWordWrap(True)
        self.fit_label = QLabel("Fit not checked yet")
        self.fit_label.setWordWrap(True)
        # every problem in full: a label that wraps and grows (a list box cut them off)
        self.fit_problems = QLabel()
        self.fit_problems.setObjectName("deploy_fit_problems")
        self.fit_problems.setWordWrap(True)
        self.fit_problems.setTextFormat(Qt.TextFormat.PlainText)
        self.fit_problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fit_problems.setVisible(False)  # shown when a check found something
        self._fit_rows: list[str] = []
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.eta_label = QLabel()  # the running step's elapsed time and estimate
        self.eta_label.setWordWrap(True)
        self._step_started = 0.0
        self._step_seconds: dict[str, float] = {}  # a step's last duration: the next estimate
        self._step_fraction: float | None = None
        self._progress_step = (0, 1)

        # -- steps, report, log --------------------------------------------------------------
        self.steps = QListWidget()
        self.summary_card = SummaryCard()  # the headline figures, then the grouped report
        self.report_tree = ReportTree()
        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setPlaceholderText("Log lines of the deployment")

        # -- live readout --------------------------------------------------------------------
        self.provenance_label = QLabel("No live figures yet")
        font = self.provenance_label.font()
        font.setBold(True)
        self.provenance_label.setFont(font)
        self.provenance_label.setWordWrap(True)
        self.total_label = QLabel("—")
        self.mean_label = QLabel("—")
        self.accuracy_label = QLabel("—")
        self.samples_label = QLabel("—")
        self.estimate_label = QLabel("—")
        self.estimate_label.setWordWrap(True)
        readout = QGridLayout()
        for row, (title, label) in enumerate((("Total energy", self.total_label),
                                              ("Mean per sample", self.mean_label),
                                              ("Accuracy so far", self.accuracy_label),
                                              ("Samples done", self.samples_label),
                                              ("Cost-table estimate", self.estimate_label))):
            readout.addWidget(QLabel(title), row, 0)
            readout.addWidget(label, row, 1)
        readout.setColumnStretch(1, 1)
        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setMinimumHeight(180)  # room for the vertical axis label
        plot = self.plot_widget.getPlotItem()
        plot.setLabel("left", "energy per sample", units="J")
        plot.setLabel("bottom", "test sample")
        plot.showGrid(y=True, alpha=0.2)
        plot.addLegend(offset=(-10, 10))
        self._trace = plot.plot([], [], pen=pg.mkPen((70, 150, 255), width=1), name="per sample")
        self._mean = plot.plot([], [], pen=pg.mkPen((255, 127, 14), width=2), name="running mean")
        header = QHBoxLayout()
        header.addWidget(self.provenance_label, 1)
        header.addWidget(self._make_export_button())
        self._add_export_to_plot_menu(self.plot_widget)
        live = QWidget()
        live_layout = QVBoxLayout(live)
        live_layout.setContentsMargins(0, 0, 0, 0)
        live_layout.addLayout(header)
        live_layout.addLayout(readout)
        live_layout.addWidget(self.plot_widget, 1)

        # left: what to deploy and how it went; right: the live readout, then the report
        settings = QWidget()
        settings_layout = QVBoxLayout(settings)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        settings_layout.addLayout(choose)
        settings_layout.addWidget(self.description)
        settings_layout.addWidget(self.params_box)
        settings_layout.addLayout(buttons)
        settings_layout.addWidget(self.reason_label)
        settings_layout.addWidget(self.fit_label)
        settings_layout.addWidget(self.fit_problems)
        settings_layout.addWidget(self.progress)
        settings_layout.addWidget(self.eta_label)
        settings_layout.addWidget(self.status_label)
        settings_layout.addWidget(QLabel("Steps"))
        self.steps.setMinimumHeight(120)
        settings_layout.addWidget(self.steps, 1)
        # a short dock must not squash the parameter form: the column scrolls instead
        settings_scroll = QScrollArea()
        settings_scroll.setWidgetResizable(True)
        # long texts wrap to the column's width instead of scrolling sideways
        settings_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        settings_scroll.setFrameShape(QFrame.Shape.NoFrame)
        settings_scroll.setWidget(settings)
        # the report and the log share the lower half as tabs, so each gets its full height
        self.details = QTabWidget()
        self.details.addTab(self.report_tree, "Report")
        self.details.addTab(self.log_view, "Log")
        results = QSplitter(Qt.Orientation.Vertical)
        results.addWidget(self.summary_card)
        results.addWidget(live)
        results.addWidget(self.details)
        results.setStretchFactor(0, 0)
        results.setStretchFactor(1, 1)
        results.setStretchFactor(2, 1)
        results.setCollapsible(0, False)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(settings_scroll)
        body.addWidget(results)
        body.setStretchFactor(0, 2)
        body.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(body, 1)

        self._redraw_timer = QTimer(self, interval=REDRAW_MS)
        self._redraw_timer.timeout.connect(self._redraw)
        # the running step's clock ticks every second, whatever the backend's heartbeat
        self._clock = QTimer(self, interval=1000)
        self._clock.timeout.connect(self._show_eta)
        controller.run_event.connect(self._on_run_event)
        controller.run_finished.connect(self._on_run_finished)
        controller.state_changed.connect(lambda _state: self.refresh())
        # listing a backend's targets imports its module (torch): after the window's first paint
        startup.after_first_paint(self._fill_backends)
        self.refresh()

    # -- backend, target, parameters -------------------------------------------------------------
    def _fill_backends(self) -> None:
        specs = sorted((s for s in self.registry.of_kind("backend") if isinstance(s, BackendSpec)),
                       key=lambda s: (_KIND_ORDER.get(s.kind, 3), s.kind, s.display_name.lower()))
        blocked = self.backend_combo.blockSignals(True)
        try:
            for spec in specs:
                self.backend_combo.addItem(f"{spec.display_name} ({spec.kind})", spec.id)
        finally:
            self.backend_combo.blockSignals(blocked)
        if not specs:
            self.description.setText("No deployment backend is installed (see Help ▸ Plugins).")
        self._on_backend_changed()

    def backend_ids(self) -> list[str]:
        return [self.backend_combo.itemData(i) for i in range(self.backend_combo.count())]

    def select_backend(self, spec_id: str) -> bool:
        index = self.backend_combo.findData(spec_id)
        if index < 0:
            return False
        self.backend_combo.setCurrentIndex(index)
        return True

    def current_spec(self) -> BackendSpec | None:
        spec = self.registry.get(self.backend_combo.currentData() or "")
        return spec if isinstance(spec, BackendSpec) else None

    def target_names(self) -> list[str]:
        return [self.target_combo.itemData(i) for i in range(self.target_combo.count())]

    def select_target(self, name: str) -> bool:
        index = self.target_combo.findData(name)
        if index < 0:
            return False
        self.target_combo.setCurrentIndex(index)
        return True

    def current_target(self) -> str:
        return self.target_combo.currentData() or ""

    def choice(self) -> dict[str, Any]:
        """The backend, target and parameters chosen now (as a project's ``deploy`` field)."""
        spec = self.current_spec()
        return {"backend": spec.id if spec else "", "target": self.current_target(),
                "params": dict(self._values.get(spec.id, {})) if spec else {}}

    def use_choice(self, choice: dict[str, Any] | None) -> bool:
        """Select a recorded ``{"backend", "target", "params"}`` where it is still installed."""
        if not choice or not self.select_backend(str(choice.get("backend", ""))):
            return False
        spec = self.current_spec()
        for name, value in (choice.get("params") or {}).items():
            if spec is not None and spec.param(name) is not None:
                self._on_param_changed(name, value)
        if self.form is not None and spec is not None:
            self.form.set_values(self.params())
        if choice.get("target"):
            self.select_target(str(choice["target"]))
        return True

    def params(self) -> dict[str, Any]:
        spec = self.current_spec()
        if spec is None:
            return {}
        return {**spec.defaults(), **self._values.get(spec.id, {})}

    def set_param(self, name: str, value: Any) -> None:
        """Set a backend parameter through its editor."""
        spec = self.current_spec()
        if spec is None or self.form is None or name not in self.form.editors:
            raise KeyError(f"the chosen backend has no parameter {name!r}")
        self._on_param_changed(name, value)
        self.form.set_values(self.params())

    def _on_backend_changed(self) -> None:
        spec = self.current_spec()
        if self.form is not None:
            self.params_layout.removeWidget(self.form)
            self.form.deleteLater()
            self.form = None
        self.no_params.setVisible(spec is not None and not spec.params)
        if spec is not None and spec.params:
            self.form = ParamForm(spec.params, self.params(), self._on_param_changed)
            self.params_layout.addWidget(self.form)
        self.params_box.setVisible(spec is not None)
        self._fill_targets()

    def _on_param_changed(self, name: str, value: Any) -> None:
        spec = self.current_spec()
        if spec is None:
            return
        self._values.setdefault(spec.id, {})[name] = value
        self._fill_targets()  # a parameter may change what the backend offers

    def _fill_targets(self) -> None:
        spec = self.current_spec()
        chosen = self.current_target()
        targets: dict[str, str] = {}
        problem = ""
        if spec is not None:
            from workbench.core.runs.deploy import backend_targets  # torch: after first paint

            try:
                targets = backend_targets(spec, spec.check_params(self.params(), where=spec.id))
            except WorkbenchError as exc:
                problem = str(exc)
            except Exception as exc:  # plugin code: say so, keep the panel usable
                log.error("the backend %s cannot list its targets: %s", spec.id, exc)
                problem = f"{spec.id} cannot list its targets: {type(exc).__name__}: {exc}"
        blocked = self.target_combo.blockSignals(True)
        try:
            self.target_combo.clear()
            for name, text in targets.items():
                self.target_combo.addItem(name, name)
                self.target_combo.setItemData(self.target_combo.count() - 1, text,
                                              Qt.ItemDataRole.ToolTipRole)
            if chosen in targets:
                self.target_combo.setCurrentIndex(list(targets).index(chosen))
        finally:
            self.target_combo.blockSignals(blocked)
        self._targets = targets
        self._target_problem = problem
        self._on_target_changed()

    def _on_target_changed(self) -> None:
        spec = self.current_spec()
        parts = []
        if spec is not None:
            parts.append(f"<b>{spec.display_name}</b> ({spec.kind}): {spec.doc or ''}")
            target = self.current_target()
            if target:
                parts.append(f"Target <b>{target}</b>: {self._targets.get(target, '')}")
        if self._target_problem:
            parts.append(f"<span style='color:#c0392b'>{self._target_problem}</span>")
        self.description.setText("<br>".join(parts))
        self.fit_label.setText("Fit not checked yet")
        self._set_fit_rows([])
        self.refresh()

    # -- state -----------------------------------------------------------------------------------
    def _show_status(self, text: str) -> None:
        self.status_label.setText(text)

    def blocking_reason(self) -> str:
        """Why Deploy (and Check fit) are disabled; "" when they are enabled."""
        if self.running:
            return ""
        reason = self._context().reason
        if reason:
            return reason
        if self.current_spec() is None:
            return "Choose a backend."
        if not self.current_target():
            return self._target_problem or "The backend offers no target."
        if self.controller.busy:
            return "Another run is in progress: wait for it to finish or stop it."
        return ""

    def refresh(self) -> None:
        reason = self.blocking_reason()
        can_start = not reason and not self.running
        for button in (self.deploy_button, self.check_button):
            button.setEnabled(can_start)
        self.deploy_button.setToolTip(reason or "Deploy to the chosen target and run the test set")
        self.reason_label.setText(reason)
        self.reason_label.setVisible(bool(reason))
        self.cancel_button.setEnabled(self.running)
        self.backend_combo.setEnabled(not self.running)
        self.target_combo.setEnabled(not self.running)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self.refresh()

    # -- running ---------------------------------------------------------------------------------
    def check(self) -> str:
        """Start a fit check of the chosen target; returns the run id ("" when refused)."""
        spec, reason = self.current_spec(), self.blocking_reason()
        if spec is None or reason or self.running:
            self.refresh()
            return ""
        session, target, params = self._context().session, self.current_target(), self.params()
        limit = self.samples_spin.value()
        self.fit_label.setText(f"Checking whether the network fits {target}…")
        self._set_fit_rows([])
        return self._begin("check", lambda: catalog.check_fit(
            session, backend=spec.id, target=target, params=params, limit=limit))

    def start(self) -> str:
        """Start the deployment; returns the run id ("" when it cannot start)."""
        spec, reason = self.current_spec(), self.blocking_reason()
        if spec is None or reason or self.running:
            self.refresh()
            return ""
        session, target, params = self._context().session, self.current_target(), self.params()
        limit = self.samples_spin.value()
        self._clear_results()
        self.samples_label.setText(f"0 / {limit}")
        self.status_label.setText(f"Deploying to {target}…")
        return self._begin("deploy", lambda: catalog.deploy(
            session, backend=spec.id, target=target, params=params, limit=limit))

    def _begin(self, kind: str, make_run) -> str:
        self._run_kind = kind  # set first: events may come at once
        if not self._launch_run(make_run, "deploying" if kind == "deploy" else "checking"):
            self._run_kind = ""
            if kind == "check":
                self.fit_label.setText("Fit not checked yet")
        return self._run_id

    def reset_for_project(self) -> None:
        """Another project is open: nothing of the last one's fit check or deployment stays
        on screen (its results, files and numbers belong to that project)."""
        self._clear_results()
        self.provenance_label.setText("No live figures yet")
        self.samples_label.setText("—")
        self.status_label.setText("Ready")
        self.fit_label.setText("Fit not checked yet")
        self._set_fit_rows([])
        self._step_seconds.clear()  # "it took … last time" was another project's network
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.refresh()

    def _clear_results(self) -> None:
        self.steps.clear()
        self.summary_card.clear()
        self.report_tree.clear()
        self._end_step_clock()
        self.log_view.clear()
        self._energies = []
        self._live = {}
        self._estimate = None
        self._summary = {}
        self.provenance_label.setText("Waiting for the first samples…")
        for label in (self.total_label, self.mean_label, self.accuracy_label,
                      self.estimate_label):
            label.setText("—")
        self._dirty_plot = True
        self._redraw()

    # -- events ----------------------------------------------------------------------------------
    def _on_run_event(self, event: RunEvent) -> None:
        if not self._run_id or event.run_id != self._run_id:
            return
        if isinstance(event, StepStarted):
            self._step(event.step)
        elif isinstance(event, Progress):
            self._progress_step = (event.done, max(event.total, 1))
            counter = _COUNTER.search(event.message or "")
            if counter and int(counter[2]) > 0:
                self._step_fraction = min(int(counter[1]) / int(counter[2]), 1.0)
            self._draw_progress()
            if event.message:
                self._step_detail(event.message)
        elif isinstance(event, Log):
            self.log_view.appendPlainText(f"[{event.level}] {event.message}")
        elif isinstance(event, EnergySample) and event.report.get("estimate"):
            self._show_estimate(event.report)
        elif isinstance(event, EnergySample) and event.report.get("live"):
            self._on_live(event.report)
        elif isinstance(event, RunFinished):
            if self._run_kind == "check":
                self._on_check_finished(event)
            else:
                self._on_deploy_finished(event)

    def _step(self, message: str, status: str = "running") -> None:
        self._end_step_clock(finished=True)
        self._mark_last("done")
        item = QListWidgetItem(f"{_STEP_MARKS[status]} {message}")
        item.setData(_SPEC_ROLE, (message, status))
        self.steps.addItem(item)
        self.status_label.setText(message)
        if status == "running":
            self._step_started = _now()
            self._clock.start()
            self._show_eta()

    # -- progress within a step, and its estimate -----------------------------------------------
    def _running_step(self) -> str:
        if not self.steps.count():
            return ""
        name, status = self.steps.item(self.steps.count() - 1).data(_SPEC_ROLE)
        return name if status == "running" else ""

    def _duration_key(self, step: str) -> str:
        spec = self.current_spec()
        return f"{spec.id if spec else ''}|{self.current_target()}|{step}"

    def _end_step_clock(self, finished: bool = False) -> None:
        """Stop timing the running step; a step that ``finished`` keeps its duration as the
        estimate for the same step of the next deployment to this target."""
        step = self._running_step()
        if finished and step and self._step_started:
            self._step_seconds[self._duration_key(step)] = \
                _now() - self._step_started
        self._step_started = 0.0
        self._step_fraction = None
        self._clock.stop()
        self.eta_label.setText("")

    def _estimated_fraction(self) -> float | None:
        """How far the running step is: its counter, else its time against its last duration."""
        if self._step_fraction is not None:
            return self._step_fraction
        last = self._step_seconds.get(self._duration_key(self._running_step()))
        if last and self._step_started:
            return min((_now() - self._step_started) / last, _ESTIMATE_CAP)
        return None

    def _draw_progress(self) -> None:
        done, total = self._progress_step
        fraction = self._estimated_fraction() if done < total else 0.0
        self.progress.setRange(0, total * _STEP_UNITS)
        self.progress.setValue(min(round((done + (fraction or 0.0)) * _STEP_UNITS),
                                   total * _STEP_UNITS))

    def _show_eta(self) -> None:
        """The running step's elapsed time and what is left: from its counter's pace, else
        from its last duration, else only the elapsed time (said so)."""
        step = self._running_step()
        if not step or not self._step_started:
            self.eta_label.setText("")
            return
        elapsed = _now() - self._step_started
        last = self._step_seconds.get(self._duration_key(step))
        text = f"{step}: {format_eta(elapsed)} elapsed"
        if self._step_fraction:
            left = elapsed / self._step_fraction * (1 - self._step_fraction)
            text += f", about {format_eta(left)} left ({100 * self._step_fraction:.0f} %)"
        elif last:
            text += (f", about {format_eta(max(last - elapsed, 0))} left (it took "
                     f"{format_eta(last)} last time)")
        else:
            text += " (no estimate: the first time this step runs here)"
        self.eta_label.setText(text)
        self._draw_progress()

    def _step_detail(self, message: str) -> None:
        """Show a running step's counter or timer next to it (one row per step)."""
        if not self.steps.count():
            return
        item = self.steps.item(self.steps.count() - 1)
        name, status = item.data(_SPEC_ROLE)
        if status == "running" and step_name(message) == name:
            detail = message[len(name):].strip(" :")
            item.setText(f"{_STEP_MARKS[status]} {name}" + (f" — {detail}" if detail else ""))
            self.status_label.setText(message)

    def _mark_last(self, status: str) -> None:
        if not self.steps.count():
            return
        item = self.steps.item(self.steps.count() - 1)
        message, current = item.data(_SPEC_ROLE)
        if current == "running":
            item.setText(f"{_STEP_MARKS[status]} {message}")
            item.setData(_SPEC_ROLE, (message, status))

    def _on_live(self, report: dict[str, Any]) -> None:
        if not self._energies:
            self._step("running the test set")
        self._live = report
        self._energies.extend(float(e) for e in report.get("new_pj", []))
        kind = str(report.get("kind", "measurement"))
        self.provenance_label.setText(f"{kind.capitalize()} — {report.get('source') or '?'}")
        self.total_label.setText(format_energy(float(report.get("total_pj", 0.0))))
        self.mean_label.setText(f"{format_energy(float(report.get('mean_pj', 0.0)))} "
                                f"({kind})")
        self.accuracy_label.setText(f"{100 * float(report.get('accuracy', 0.0)):.1f} %")
        self.samples_label.setText(f"{int(report.get('samples', 0))} / {self.samples_spin.value()}")
        self._dirty_plot = True
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def _show_estimate(self, estimate: dict[str, Any]) -> None:
        self._estimate = estimate
        table = str(estimate.get("table", ""))
        spec = self.registry.get(table) if table else None
        name = spec.display_name if spec is not None else (table or "cost table")
        pj = float(estimate.get("pj_per_sample", 0.0))
        accuracy = estimate.get("accuracy")
        self.estimate_label.setText(
            f"{format_energy(pj)} per sample (estimate — {name}, torch model"
            + (f", accuracy {100 * float(accuracy):.1f} %" if accuracy is not None else "") + ")")

    def _on_check_finished(self, event: RunFinished) -> None:
        self.progress.setRange(0, 1)
        if event.status != "ok":
            self.fit_label.setText(f"Fit check failed: {one_line(event.error)}")
            self.status_label.setText(f"Failed: {one_line(event.error)}")
            return
        self.progress.setValue(1)
        self._show_fit(event.summary.get("fit", []))
        self.status_label.setText("Fit checked")

    def _show_fit(self, issues: list[dict[str, Any]]) -> None:
        target = self.current_target()
        errors = [i for i in issues if i.get("severity", "error") == "error"]
        if not issues:
            self.fit_label.setText(f"✓ The network fits {target}.")
        elif not errors:
            self.fit_label.setText(f"✓ The network fits {target}, with {len(issues)} warning(s):")
        else:
            self.fit_label.setText(f"✗ The network does not fit {target}: {len(errors)} "
                                   f"problem(s)")
        rows = []
        for issue in issues:
            node = f"node {issue['node']!r}: " if issue.get("node") else ""
            rows.append(f"{issue.get('severity', 'error')}: {node}{issue['message']}")
        self._set_fit_rows(rows)

    def _set_fit_rows(self, rows: list[str]) -> None:
        self._fit_rows = list(rows)
        self.fit_problems.setText("\n".join(f"• {row}" for row in rows))
        self.fit_problems.setVisible(bool(rows))

    def _on_deploy_finished(self, event: RunFinished) -> None:
        self._end_step_clock(finished=event.status == "ok")
        self.progress.setRange(0, 1)
        summary = event.summary or {}
        self._summary = summary
        if "fit" in summary:
            self._show_fit(summary["fit"])
        if summary.get("estimate"):
            self._show_estimate(summary["estimate"])
        if summary.get("report") is not None:
            self._show_report(summary)
        self._dirty_plot = True
        self._redraw()
        self._redraw_timer.stop()
        # the report after a success, the log (with the tool's last lines) after a failure
        self.details.setCurrentWidget(self.report_tree if event.status == "ok"
                                      else self.log_view)
        if event.status == "ok":
            self._mark_last("done")
            self.progress.setValue(1)
            self.deployed.emit(self.choice())
            live = summary.get("live") or {}
            self.status_label.setText(
                f"Deployed to {summary.get('target', '')} in {summary.get('seconds', 0):.1f} s"
                + (f"; accuracy {100 * float(live['accuracy']):.1f} % on {live.get('samples')} "
                   "samples" if isinstance(live.get("accuracy"), (int, float)) else "")
                + f"; files in {summary.get('out', '')}")
        elif event.status == "cancelled":
            self._mark_last("cancelled")
            self.status_label.setText("Cancelled")
        else:
            self._mark_last("failed")
            self.status_label.setText(f"Failed: {one_line(event.error)}")
            self.log_view.appendPlainText(f"[error] {one_line(event.error)}")

    def _show_report(self, summary: dict[str, Any]) -> None:
        self.summary_card.show_summary(summary)
        self.report_tree.show_summary(summary)

    def _on_run_finished(self, run_id: str, _status: str) -> None:
        if run_id != self._run_id:
            return
        self._run_id = self._run_kind = ""
        self.refresh()

    # -- drawing ---------------------------------------------------------------------------------
    def _redraw(self) -> None:
        if not self._dirty_plot:
            return
        self._dirty_plot = False
        energies = np.asarray(self._energies, dtype=np.float64) * 1e-12  # pJ -> J: SI prefixes
        x = np.arange(1, len(energies) + 1)
        self._trace.setData(x, energies)
        mean = np.cumsum(energies) / np.maximum(x, 1) if len(energies) else energies
        self._mean.setData(x, mean)

    # -- what the user sees ------------------------------------------------------------------------
    def samples_done(self) -> int:
        return int(self._live.get("samples", 0))

    def trace_points(self) -> int:
        """Points drawn in the per-sample energy trace."""
        data = self._trace.getData()[0]
        return 0 if data is None else len(data)

    def readout(self) -> dict[str, str]:
        """The live readout's labels, by name."""
        return {"provenance": self.provenance_label.text(), "total": self.total_label.text(),
                "mean": self.mean_label.text(), "accuracy": self.accuracy_label.text(),
                "samples": self.samples_label.text(), "estimate": self.estimate_label.text()}

    def step_rows(self) -> list[tuple[str, str]]:
        """``(step, status)`` of each step shown."""
        return [tuple(self.steps.item(i).data(_SPEC_ROLE)) for i in range(self.steps.count())]

    def report_rows(self) -> dict[str, str]:
        """Every value of the report (grouped on screen) by its dotted key."""
        return self.report_tree.rows()

    def summary_rows(self) -> dict[str, str]:
        """The summary card's figures by name (empty before a deployment)."""
        return self.summary_card.rows()

    def fit_rows(self) -> list[str]:
        return list(self._fit_rows)

    # -- export ----------------------------------------------------------------------------------
    def _export_target(self) -> Any:
        return self.plot_widget

    def _csv_table(self) -> tuple[list[str], Iterable[Sequence[Any]]]:
        energies = np.asarray(self._energies, dtype=np.float64)
        mean = np.cumsum(energies) / np.arange(1, len(energies) + 1) if len(energies) else energies
        kind = str(self._live.get("kind", ""))
        source = str(self._live.get("source", ""))
        rows = ([i + 1, float(e), float(m), kind, source]
                for i, (e, m) in enumerate(zip(energies, mean, strict=True)))
        return ["sample", "pj", "running_mean_pj", "kind", "source"], rows
