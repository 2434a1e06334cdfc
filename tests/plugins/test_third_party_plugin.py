"""docs/plugins.md made real: the guide's example plugin, a package outside this repository's
plugins, installed with pip and found through its entry point."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.core.persistence.project_files import load_project, save_project
from workbench.testing.fixtures import make_tiny_project

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "fixtures" / "tiny_plugin"
GUIDE = ROOT / "docs" / "plugins.md"
BIN = Path(sys.executable).parent


def test_the_guide_shows_the_plugin_files_as_they_are():
    blocks = re.findall(r"```(?:python|toml)\n# (\S+)\n(.*?)```",
                        GUIDE.read_text(encoding="utf-8"), re.S)
    shown = {path: text for path, text in blocks if (SOURCE / path).is_file()}
    assert set(shown) == {"pyproject.toml", "wb_tiny/__init__.py", "wb_tiny/neurons.py",
                          "tests/test_wb_tiny.py"}
    for path, text in shown.items():
        assert text == (SOURCE / path).read_text(encoding="utf-8"), path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The plugin pip-installed into a folder of its own; the environment that sees it."""
    work = tmp_path_factory.mktemp("third_party")
    source = work / "tiny_plugin"  # a copy: building writes build/ and *.egg-info/ beside it
    shutil.copytree(SOURCE, source)
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                    "--no-index", "--disable-pip-version-check", "--quiet",
                    "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True, cwd=work)
    env = dict(os.environ, PYTHONPATH=str(target))
    # tests/conftest.py keeps third-party plugins out of our own tests; this one wants them
    env.pop("SNN_WORKBENCH_DISABLE_PLUGIN_AUTOLOAD", None)
    env.pop("SNN_WORKBENCH_PLUGINS", None)
    env["SNN_WORKBENCH_STRICT_PLUGINS"] = "1"
    return {"env": env, "source": str(source), "work": str(work)}


def _run(args: list[str], installed: dict, cwd: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=installed["env"], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_the_installed_plugin_is_listed_without_failures(installed):
    result = _run([str(BIN / "snn-workbench"), "plugins", "--json"], installed, installed["work"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failures"] == []
    (tiny,) = [p for p in report["plugins"] if p["name"] == "wb_tiny"]
    assert tiny["version"] == "0.1.0"
    assert tiny["contributions"] == {"neuron": ["wb_tiny.sigmoid_lif"]}


@pytest.mark.slow
def test_a_project_with_the_plugin_neuron_trains_from_the_cli(installed, tmp_path):
    folder = tmp_path / "project"
    project = make_tiny_project(folder, epochs=1)
    project.graph.node("hidden").params["neuron"] = {"id": "wb_tiny.sigmoid_lif",
                                                     "params": {"tau": 4.0}}
    save_project(project, folder)
    result = _run([str(BIN / "snn-workbench"), "train", str(folder), "--epochs", "1", "--json"],
                  installed, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary.get("status") == "ok" and summary.get("epochs") == 1, summary
    assert load_project(folder).weights_path.exists()


@pytest.mark.slow
def test_the_plugin_tests_pass_with_the_shipped_fixtures(installed):
    result = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                  installed, installed["source"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
