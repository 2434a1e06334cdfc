"""GUI responsiveness while training, and raster redraw speed (offscreen Qt).

Measures, on the digits_conv example:

1. **headless** training throughput (samples/s) of ``Session.train`` for ``--epochs`` epochs;
2. the same training started from the **main window** (live curves, progress, the 5 Hz live
   probe of the raster/membrane/rate views all running), its throughput, and the longest
   stall of the GUI event loop meanwhile — a 20 ms heartbeat timer records the largest gap
   between its ticks (a gap is time the GUI could not react);
3. the **raster** redrawing 500 000 spikes: frames per second of ``set_spikes`` + repaint.

Targets (issue #3): longest stall < 100 ms, GUI throughput ≥ 90 % of headless, raster ≥ 30 fps.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_responsiveness.py [--epochs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]


def headless(project_dir: Path, epochs: int) -> float:
    """The CLI's training throughput, in a process of its own (as a user runs it)."""
    command = [sys.executable, "-m", "workbench", "train", str(project_dir), "--epochs",
               str(epochs), "--fresh", "--no-save", "--json"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "ok", summary
    return summary["samples_per_s"]


def in_window(project_dir: Path, epochs: int) -> tuple[float, float]:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    from workbench.gui.app import create_window
    from workbench.gui.settings import AppSettings

    window = create_window(project_dir, settings=AppSettings(), offer_recovery=False)
    window.show()
    window.doc.set_setting("training.epochs", epochs)
    loop = QEventLoop()
    gaps: list[float] = []
    clock = QElapsedTimer()
    heartbeat = QTimer(interval=20)

    def beat() -> None:
        gaps.append(clock.restart())
        if os.environ.get("WB_DEBUG_STALLS") and gaps[-1] > 50:
            print(f"stall {gaps[-1]} ms at beat {len(gaps)}, state {window.controller.state}",
                  file=sys.stderr)

    heartbeat.timeout.connect(beat)
    window.controller.run_finished.connect(lambda *_: loop.quit())
    QTimer.singleShot(200, lambda: (clock.start(), heartbeat.start(),
                                    window.start_training(fresh=True)))
    loop.exec()
    heartbeat.stop()
    finished = window.controller.last_finished
    assert finished is not None and finished.status == "ok", finished
    window.doc.mark_saved()
    window.weights_dirty = False
    window.close()
    return finished.summary["samples_per_s"], max(gaps[1:]) if len(gaps) > 1 else 0.0


def raster_fps(spikes: int = 500_000, seconds: float = 3.0) -> tuple[float, str]:
    import numpy as np

    from workbench.gui.views import SpikeRasterView

    view = SpikeRasterView()
    view.resize(1000, 600)
    view.show()
    rng = np.random.default_rng(0)
    steps, neurons = 500, 4000
    frames = []
    for _ in range(4):  # a few different frames, as a live view would get
        frames.append((rng.integers(0, steps, spikes), rng.integers(0, neurons, spikes)))
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t, n = frames[count % len(frames)]
        view.set_spikes(t, n, steps, neurons)
        view.repaint()
        app.processEvents()
        count += 1
    return count / (time.perf_counter() - start), view.mode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SNN_WORKBENCH_CONFIG"] = str(Path(tmp) / "config")
        project = Path(tmp) / "digits_conv"
        shutil.copytree(ROOT / "projects" / "digits_conv", project,
                        ignore=shutil.ignore_patterns("runs", "*.safetensors"))
        base = headless(project, args.epochs)
        # No torch op may run on this (the GUI) thread before the window exists: see
        # workbench.core.build.compute.keep_calling_thread_light.
        runs = [in_window(project, args.epochs) for _ in range(2)]  # best of 2, like headless
        gui, stall = max(runs)[0], max(r[1] for r in runs)
        base_after = headless(project, args.epochs)
    fps, mode = raster_fps()
    headless_sps = max(base, base_after)
    result = {"headless_samples_per_s": headless_sps, "gui_samples_per_s": gui,
              "gui_over_headless": gui / headless_sps, "longest_stall_ms": stall,
              "raster_500k_fps": fps, "raster_mode": mode, "epochs": args.epochs}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"training, headless        {headless_sps:10.0f} samples/s")
        print(f"training, in the window   {gui:10.0f} samples/s  "
              f"({100 * gui / headless_sps:.0f} % of headless; target >= 90 %)")
        print(f"longest GUI stall         {stall:10.1f} ms          (target < 100 ms)")
        print(f"raster, 500k spikes       {fps:10.1f} frames/s   ({mode}; target >= 30)")
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
