"""The CI step for a non-editable install: build the wheel, install it into a fresh venv, and
run ``info``, ``train --epochs 1`` and the app (offscreen) from outside the checkout, on the
examples and icons the wheel ships.

The wheel is built from a copy of the sources: an in-tree build reuses ``build/lib``, where a
file deleted from the source tree lives on into the wheel (and two test runs would share it).
Nothing is downloaded: the new venv sees the test venv's packages (torch, PySide6, ...) through
a ``.pth`` line placed after its own site-packages. That line adds a folder to ``sys.path``
without running the ``.pth`` files in it, so the checkout's editable-install finder stays off
and only the installed wheel can be imported; the test checks it from the module paths.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "workbench", "plugins")
EXAMPLES = ["digits_bestformer", "digits_conv", "digits_mlp", "digits_mpd_ed", "digits_q_snn",
            "digits_snn_vit_ssa", "digits_snn_vit_sssa", "digits_std_ed", "digits_stdbp",
            "eeg_qt_snn", "eeg_snn", "vowels_qt_snn", "vowels_snn"]

# Runs in the new venv: the command line's info and train, then the app built offscreen.
SCRIPT = textwrap.dedent("""
    import io, json, sys
    from pathlib import Path

    import workbench, wb_core
    from workbench.cli import main
    from workbench.core.persistence.examples import examples_dir

    shipped = {str(p): p.read_bytes() for p in sorted(examples_dir().rglob("*")) if p.is_file()}
    info, train = io.StringIO(), io.StringIO()
    codes = [main(["info", "digits_mlp"], out=info),
             main(["train", "digits_mlp", "--epochs", "1"], out=train)]

    from PySide6.QtWidgets import QApplication, QToolBar

    app = QApplication(sys.argv[:1])
    from workbench.gui.app import create_window
    from workbench.gui.settings import AppSettings

    window = create_window(settings=AppSettings(), offer_recovery=False)
    toolbar = window.findChild(QToolBar, "main_toolbar")
    after = {str(p): p.read_bytes() for p in sorted(examples_dir().rglob("*")) if p.is_file()}
    print(json.dumps({
        "modules": [workbench.__file__, wb_core.__file__], "examples_dir": str(examples_dir()),
        "codes": codes, "info": info.getvalue(), "train": train.getvalue(),
        "menu": [a.text() for a in window.examples_menu.actions()],
        "icons": {a.text(): not a.icon().isNull() for a in toolbar.actions()
                  if not a.isSeparator()},
        "window_icon": not window.windowIcon().isNull(),
        "opened": str(window.doc.project.folder), "status": window.statusBar().currentMessage(),
        "shipped_unchanged": shipped == after, "shipped_files": sorted(shipped),
    }))
    window.close()
""")


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_the_wheel_works_in_a_fresh_venv(tmp_path):
    source, wheels, venv, work = (tmp_path / name for name in ("src", "wheels", "venv", "work"))
    source.mkdir()
    work.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, source / name)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "SNN_WORKBENCH_EXAMPLES", "PYTHONHOME")}
    env.update(PYTHONNOUSERSITE="1", QT_QPA_PLATFORM="offscreen",
               SNN_WORKBENCH_PROJECTS=str(tmp_path / "my_projects"),
               SNN_WORKBENCH_CONFIG=str(tmp_path / "config"),
               SNN_WORKBENCH_DATA=str(tmp_path / "data"))

    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(wheels), str(source)], work, env)
    (wheel,) = wheels.glob("snn_workbench-*.whl")
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], work, env)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(run([str(python), "-c", purelib], work, env).stdout.strip())
    (site / "zz_test_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        work, env)

    # the console script the wheel installed
    version = run([str(venv / "bin" / "snn-workbench"), "--version"], work, env)
    assert version.stdout.startswith("snn-workbench ")
    done = run([str(python), "-c", SCRIPT], work, env)
    result = json.loads(done.stdout.splitlines()[-1])

    # the wheel was imported, not the checkout, and its examples are the ones shipped
    for module in result["modules"]:
        assert Path(module).is_relative_to(site), module
    assert Path(result["examples_dir"]) == site / "workbench" / "resources" / "projects"
    assert result["codes"] == [0, 0], done.stderr
    assert "digits_mlp: " in result["info"] and "layer" in result["info"]
    copy = tmp_path / "my_projects" / "digits_mlp"
    assert f"weights saved to {copy}" in result["train"]
    assert list(copy.glob("*.safetensors")) and result["shipped_unchanged"]
    assert not any("/runs/" in name for name in result["shipped_files"])
    # the app: the default example (the user's copy), the Examples menu, the icons
    assert result["menu"] == EXAMPLES
    assert result["opened"] == str(tmp_path / "my_projects" / "digits_conv")
    assert result["status"].startswith("Copied the example digits_conv to ")
    assert result["icons"] and all(result["icons"].values()), result["icons"]
    assert result["window_icon"]
