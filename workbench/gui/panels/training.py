"""The training panel: start / pause / stop, epochs and learning rate, progress with ETA, and
live loss and accuracy curves; an opened project shows its last training run's curves, read
from its run records."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.runs.events import (
    MetricSample,
    Progress,
    RunEvent,
    RunFinished,
    RunStarted,
    StepStarted,
)
from workbench.core.runs.records import TrainingHistory, last_training
from workbench.core.runs.sweep import values_text
from workbench.gui import startup
from workbench.gui.document import ProjectDocument
from workbench.gui.views.metrics import MetricsView

#: how a recorded run that did not end "ok" is marked
_ENDINGS = {"cancelled": " (stopped)", "failed": " (failed)", "": " (interrupted)"}
#: the status line while a run of each kind starts
_STARTED = {"train": "Training…", "sweep": "Sweeping…"}


def history_note(history: TrainingHistory) -> str:
    """``"From the last run, 2026-12-02 14:43"`` heading the restored curves."""
    return (f"From the last run, {history.started:%Y-%m-%d %H:%M}"
            f"{_ENDINGS.get(history.status, '')}")


def history_text(history: TrainingHistory) -> str:
    """``"last run: 2 epoch(s), test accuracy 57.2%"`` from a run's record."""
    ends = [sample.values for sample in history.samples if sample.epoch_end]
    text = f"last run: {history.epochs} epoch(s)"
    if ends and "test_accuracy" in ends[-1]:
        text += f", test accuracy {100 * ends[-1]['test_accuracy']:.1f}%"
    return text


def format_eta(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class TrainingPanel(QWidget):
    train_requested = Signal(bool)  # fresh weights?
    evaluate_requested = Signal()
    stop_requested = Signal()
    pause_requested = Signal(bool)  # True: pause, False: resume
    load_weights_requested = Signal()

    def __init__(self, doc: ProjectDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train the network (F5)")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the run within one batch (Esc)")
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Test accuracy and the energy ledger")
        self.load_button = QPushButton("Load weights…")
        self.load_button.setToolTip("Load a .safetensors weights file into the network")
        self.fresh = QCheckBox("From new weights")
        self.fresh.setToolTip("Start from freshly initialised weights instead of the current ones")
        self.epochs = QSpinBox(minimum=1, maximum=100_000, keyboardTracking=False)
        self.epochs.setObjectName("epochs")
        self.lr = QDoubleSpinBox(decimals=6, minimum=1e-7, maximum=10.0, singleStep=1e-4,
                                 keyboardTracking=False)
        self.lr.setObjectName("learning_rate")
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.status = QLabel("Ready")
        self.eta = QLabel("")
        # Fixed sizes: a label that changes width re-lays out the whole panel and repaints the
        # curves below it, CPU that a training run on a small machine misses.
        self.eta.setFixedWidth(120)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.metrics = MetricsView()
        self.metrics.setMinimumHeight(220)  # the curves are the point of this panel

        controls = QHBoxLayout()
        for w in (self.train_button, self.pause_button, self.stop_button, self.evaluate_button,
                  self.load_button):
            controls.addWidget(w)
        controls.addStretch(1)
        settings = QHBoxLayout()
        settings.addWidget(QLabel("Epochs"))
        settings.addWidget(self.epochs)
        settings.addWidget(QLabel("Learning rate"))
        settings.addWidget(self.lr)
        settings.addWidget(self.fresh)
        settings.addStretch(1)
        status = QHBoxLayout()
        status.addWidget(self.progress, 1)
        status.addWidget(self.eta)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addLayout(settings)
        layout.addLayout(status)
        layout.addWidget(self.status)
        layout.addWidget(self.metrics, 1)

        self.train_button.clicked.connect(lambda: self.train_requested.emit(self.fresh.isChecked()))
        self.stop_button.clicked.connect(self.stop_requested.emit)
        self.pause_button.toggled.connect(self.pause_requested.emit)
        self.evaluate_button.clicked.connect(self.evaluate_requested.emit)
        self.load_button.clicked.connect(self.load_weights_requested.emit)
        self.epochs.valueChanged.connect(lambda v: self.doc.set_setting("training.epochs", int(v)))
        self.lr.valueChanged.connect(
            lambda v: self.doc.set_setting("training.rule.params.lr", float(v), "Set learning rate"))
        self._started = 0.0
        self._kind = ""
        self._step = ""  # a sweep's current trial
        doc.changed.connect(self.refresh)
        self.refresh()
        # reads the run records from disk: after the first paint, not before it
        startup.after_first_paint(self.restore_curves)
        self.set_state("idle")

    def set_document(self, doc: ProjectDocument) -> None:
        """Another project is open: its settings, and nothing said about the last one's runs."""
        self.doc.changed.disconnect(self.refresh)
        self.doc = doc
        doc.changed.connect(self.refresh)
        self.status.setText("Ready")
        self.progress.reset()  # empty, as at start (not a "0%" that suggests a run)
        self.eta.setText("")
        self.refresh()
        self.restore_curves()

    def restore_curves(self) -> None:
        """Show the curves of the open project's last training run, read from its run records
        (none for a project never trained here): curves and status belong to this project only."""
        folder = self.doc.project.folder
        history = last_training(Path(folder)) if folder is not None else None
        if history is None:
            self.metrics.clear()
            return
        self.metrics.show_history(history.samples, history_note(history))
        self.status.setText(f"Ready — {history_text(history)}")

    def refresh(self) -> None:
        training = self.doc.project.training
        spec = self.doc.registry.get(training.rule.id)
        lr_param = spec.param("lr") if spec is not None else None
        for widget, value in ((self.epochs, max(1, training.epochs)),
                              (self.lr, training.rule.params.get("lr", lr_param.default
                                                                 if lr_param else 0.0))):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self.lr.setEnabled(lr_param is not None)

    def set_state(self, state: str) -> None:
        """``idle``, ``training``, ``evaluating`` or ``paused``."""
        running = state != "idle"
        self.train_button.setEnabled(not running)
        self.evaluate_button.setEnabled(not running)
        self.load_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.pause_button.setEnabled(state in ("training", "paused"))
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(state == "paused")
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.pause_button.blockSignals(False)

    def on_event(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            self._started, self._kind, self._step = time.perf_counter(), event.kind, ""
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(0)
            self.eta.setText("")
            if event.kind == "train":
                self.metrics.expect_steps(event.total)
            self.status.setText(_STARTED.get(event.kind, "Evaluating…"))
        elif isinstance(event, StepStarted):  # a sweep's next trial: its own curves
            self.metrics.clear()
            self._step = event.step[:1].upper() + event.step[1:]
            self.status.setText(self._step)
        elif isinstance(event, Progress):
            self.progress.setMaximum(max(event.total, 1))
            self.progress.setValue(event.done)
            elapsed = time.perf_counter() - self._started
            if event.done and event.total:
                remaining = elapsed / event.done * (event.total - event.done)
                self.eta.setText(f"ETA {format_eta(remaining)}")
            if event.epoch and self._kind != "sweep":
                self.status.setText(f"Training… epoch {event.epoch}")
        elif isinstance(event, MetricSample):
            self.metrics.add_sample(event)
            if event.epoch_end:
                v = event.values
                text = (f"Epoch {event.epoch}: loss {v['train_loss']:.4f}, test accuracy "
                        f"{100 * v['test_accuracy']:.1f}%")
                extras = [f"{key.replace('_', ' ')} {v[key]:.4g}"
                          for key in self.metrics.extra_keys() if key in v]
                if self._kind == "sweep" and self._step:
                    text = f"{self._step} — {text[:1].lower()}{text[1:]}"
                self.status.setText(", ".join([text, *extras]))
        elif isinstance(event, RunFinished):
            self.eta.setText("")
            self.status.setText(self._finished_text(event))

    def _finished_text(self, event: RunFinished) -> str:
        if event.status == "failed":
            return f"Failed: {event.error}"
        s = event.summary
        verb = "Stopped" if event.status == "cancelled" else "Done"
        if "trials" in s:
            kept = [t for t in s["trials"] if t["status"] == "ok"]
            text = f"{verb}: {len(kept)} of {len(s['trials'])} trial(s) trained"
            if s.get("best_values"):
                best = max(kept, key=lambda t: t["accuracy"])
                text += (f"; best {values_text(s['best_values'])} at "
                         f"{100 * best['accuracy']:.1f}% (see the Variants view)")
            return text
        if "test_accuracy" in s:
            return (f"{verb}: {s['epochs']} epoch(s) in {s['seconds']:.1f} s, test accuracy "
                    f"{100 * s['test_accuracy']:.1f}%")
        if "accuracy" in s:
            return f"{verb}: accuracy {100 * s['accuracy']:.1f}% on {s['samples']} samples"
        return verb
