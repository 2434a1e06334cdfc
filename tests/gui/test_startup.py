"""The window paints before torch, scikit-learn and scipy are imported (issue #12: 3.6–4.1 s to
first paint, 2.9 s of it those imports); they load on a thread after the first paint, and the
work that needs them (validation, probe, deploy backends) runs then."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from workbench.gui import startup

pytestmark = pytest.mark.gui

HEAVY = ("torch", "sklearn", "scipy")


def test_the_window_is_built_and_painted_without_torch_sklearn_or_scipy(tmp_path):
    body = (
        "import json, sys\n"
        f"heavy = lambda: sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "import workbench.gui.main_window\n"
        "after_import = heavy()\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from workbench.gui import startup\n"
        "from workbench.gui.app import create_window\n"
        "startup.begin()\n"
        "window = create_window(None, offer_recovery=False)\n"
        "window.show()\n"
        "app.processEvents()\n"
        "print(json.dumps({'import': after_import, 'shown': heavy(),\n"
        "                  'waiting': startup.deferring()}))\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "SNN_WORKBENCH_CONFIG": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen == {"import": [], "shown": [], "waiting": True}


@pytest.fixture
def deferred_start(qtbot):
    """A window built as ``run_app`` builds it: torch's work queued for after the first paint."""
    from workbench.gui.app import create_window
    from workbench.testing.fixtures import close_window

    windows = []

    def start():
        startup.begin()
        window = create_window(None, offer_recovery=False)
        windows.append(window)
        return window

    yield start
    startup._queue = None  # a failed test must not leave later windows waiting
    for window in windows:
        close_window(window)


def test_after_the_first_paint_the_window_validates_probes_and_lists_backends(
        deferred_start, qtbot):
    window = deferred_start()
    # built, not yet loaded: no validation, no backends, Deploy cannot start
    assert window.report is None
    assert window.deploy_panel.backend_ids() == []
    assert window.network.run_context().session is None
    assert window.deploy_panel.blocking_reason()

    startup.load_after_first_paint(window)
    window.show()
    qtbot.waitUntil(lambda: not startup.deferring(), timeout=60_000)

    assert window.report is not None and window.report.ok
    assert window.sample_spin.maximum() > 0  # the test split is known: the data loaded
    assert window.deploy_panel.backend_ids()
    assert "Loading torch" not in window.deploy_panel.blocking_reason()
    assert window.network.run_context().session is window.session
    # the session the loader thread built (data in memory) is the window's now
    assert window.session.project is window.doc.project
