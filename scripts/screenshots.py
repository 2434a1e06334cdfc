"""Make the README's screenshots from the real app, offscreen, on a really trained network.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [--epochs 20] [--out docs/images]

Copies the digits_conv example to a temporary folder, trains it in the main window, evaluates
it (the energy ledger), and saves: ``main_window.png`` (editor, training curves, ledger),
``raster.png`` (the spike raster of a test sample), ``membrane.png``, ``energy.png``,
``neuron_explorer.png`` (conv2's neuron: step, ramp, f–I curve); then
compresses it with 4-bit ReScaW from the Compress dialog (``compress.png``, ``variants.png``)
and deploys it to the integer simulator from the Deploy panel (``deploy.png``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SNN_WORKBENCH_CONFIG"] = str(Path(tmp) / "config")
        project = Path(tmp) / "digits_conv"
        from workbench.core.persistence.examples import examples_dir

        shutil.copytree(examples_dir() / "digits_conv", project,
                        ignore=shutil.ignore_patterns("runs", "*.safetensors"))
        from workbench.gui.app import create_window
        from workbench.gui.settings import AppSettings

        window = create_window(project, settings=AppSettings(), offer_recovery=False)
        window.resize(1500, 950)
        window.show()

        def run(start) -> str:
            loop = QEventLoop()
            window.controller.run_finished.connect(loop.quit)
            QTimer.singleShot(100, start)
            loop.exec()
            window.controller.run_finished.disconnect(loop.quit)
            return window.controller.last_finished.status

        window.doc.set_setting("training.epochs", args.epochs)
        assert run(lambda: window.start_training(fresh=True)) == "ok"
        assert run(window.start_evaluation) == "ok"
        window.editor.select_node("conv2")
        settle(app)

        def shot(name: str, widget) -> None:
            settle(app)
            path = args.out / name
            widget.grab().save(str(path))
            print(f"wrote {path}")

        shot("main_window.png", window)
        window.sample_spin.setValue(3)
        window.probe_now(3)
        window.docks["raster"].raise_()
        window.raster.layer_combo.setCurrentText("conv2.neuron")
        shot("raster.png", window)
        window.docks["membrane"].raise_()
        window.membrane.set_neurons(list(range(6)))
        shot("membrane.png", window.docks["membrane"])
        window.docks["energy"].raise_()
        shot("energy.png", window)
        window.docks["neuron_explorer"].raise_()
        window.editor.select_node("conv2")  # its neuron: step, ramp and f–I curve
        settle(app, 60)
        shot("neuron_explorer.png", window.docks["neuron_explorer"])
        summary = window.controller.last_finished.summary
        from workbench.core.model.quantity import format_energy_pj

        print(f"test accuracy {summary['accuracy']:.4f}, "
              f"{format_energy_pj(summary['energy']['total_pj_per_sample'])}/sample (estimate)")

        assert window.save()  # compression and deployment start from the saved weights
        dialog = window.show_compress_dialog()
        dialog.select_method("wb_qp_snn.rescaw")
        dialog.set_param("bits", 4)
        assert run(dialog.start) == "ok"
        shot("compress.png", dialog)
        window.show_variants()
        shot("variants.png", window)
        panel = window.show_deploy_panel()
        panel.select_backend("wb_sim.simulator")
        panel.samples_spin.setValue(360)
        assert run(panel.start) == "ok"
        shot("deploy.png", window)
        print("deploy:", panel.readout())
        window.doc.mark_saved()
        window.weights_dirty = False
        window.close()
    return 0


def settle(app, rounds: int = 30) -> None:
    import time

    for _ in range(rounds):
        app.processEvents()
        time.sleep(0.01)


if __name__ == "__main__":
    raise SystemExit(main())
