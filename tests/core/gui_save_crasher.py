"""The app's Save As, killed at random instants: run by ``test_atomic_save.py`` as a fresh process.

``python gui_save_crasher.py TEMPLATE WORK KILLS SEED WEIGHTS_A WEIGHTS_B``

This process imports torch and the plugins once (no Qt, no torch threads) and then, ``KILLS``
times, forks a child that builds the real main window (``workbench.gui.app.create_window``,
offscreen) on the project ``TEMPLATE`` and saves it in a loop into ``WORK/gui<i>``, alternating
version A (description "A", the weights in ``WEIGHTS_A``) and version B, half of the saves as a
Save As from another folder into the occupied one (the user agrees to replace it). After the
child's first save this process waits a random time (seeded by ``SEED``) and sends SIGKILL.
Each child records the project dict of both versions in ``WORK/gui<i>.versions.json`` before
its first save, for the test to compare with what the folder then loads.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path


def saver(template: Path, target: Path, ready: int, weights: dict[str, Path]) -> None:
    """The child: the real window, saving A and B in turn until it is killed."""
    from PySide6.QtWidgets import QApplication

    from workbench.gui.app import create_window

    app = QApplication([])
    window = create_window(template, offer_recovery=False)
    window.ask_replace_folder = lambda folder, holds_project: True
    window.ask_save_changes = lambda: "discard"
    projects = window.projects
    versions = {}
    for name in "AB":
        projects.project.description = name
        versions[name] = {k: v for k, v in projects.project.to_dict().items() if k != "weights"}
    target.with_name(target.name + ".versions.json").write_text(json.dumps(versions))
    n = 0
    while True:
        name = "AB"[n % 2]
        projects.project.description = name
        if not projects.load_weights(weights[name]):
            os._exit(3)
        if n % 4 >= 2:  # a Save As from elsewhere into the folder holding the other version
            projects.project.folder = template
        if not projects.save_as(target):
            os._exit(4)
        if n == 0:
            os.write(ready, b"s")
        n += 1
        app.processEvents()


def main(argv: list[str]) -> int:
    template, work, kills, seed = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])
    weights = {"A": Path(argv[4]), "B": Path(argv[5])}
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ["SNN_WORKBENCH_CONFIG"] = str(work / "config")
    # The heavy imports and the dataset once, before the forks. No QApplication exists yet,
    # and torch, OpenMP and BLAS run on one thread (the test sets *_NUM_THREADS=1), so no
    # thread is forked half-way.
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.session import Session
    from workbench.gui import app  # noqa: F401 - Qt's modules, loaded, not started
    from workbench.pluginhost.manager import load_plugins

    Session(load_project(template), load_plugins().registry).validate()
    rng = random.Random(seed)
    delays = []
    for i in range(kills):
        target = work / f"gui{i}"
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child never returns
            os.close(read)
            try:
                saver(template, target, write, weights)
            finally:
                os._exit(1)
        os.close(write)
        started = os.read(read, 1)
        os.close(read)
        if not started:  # the child died before its first save
            _, status = os.waitpid(pid, 0)
            print(json.dumps({"error": f"child {i} exited with {status} before saving"}))
            return 1
        delay = rng.uniform(0.0, 0.25)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        delays.append(round(delay, 4))
    print(json.dumps({"seed": seed, "delays": delays}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
