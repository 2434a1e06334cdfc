import atexit
import os
import shutil
import subprocess
import tempfile
from typing import ClassVar

import pytest

# Before anything imports Qt or loads plugins: offscreen Qt (CI has no display), strict plugin
# loading (a broken first-party plugin fails the suite) and no third-party plugins.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["SNN_WORKBENCH_STRICT_PLUGINS"] = "1"
os.environ["SNN_WORKBENCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"
os.environ.pop("SNN_WORKBENCH_PLUGINS", None)
# Fixtures wider than a test (module- or session-scoped trainings) open examples before the
# per-test folder below exists: they copy into this session-wide temporary folder instead.
os.environ["SNN_WORKBENCH_PROJECTS"] = tempfile.mkdtemp(prefix="wb-test-projects-")
atexit.register(shutil.rmtree, os.environ["SNN_WORKBENCH_PROJECTS"], ignore_errors=True)


@pytest.fixture(autouse=True)
def _own_projects_folder(tmp_path, monkeypatch):
    # Opening an example copies it into the user's projects folder: in a test, a temporary one
    # (never the developer's documents folder; each test starts with no copies).
    monkeypatch.setenv("SNN_WORKBENCH_PROJECTS", str(tmp_path / "my_projects"))


# Run in parallel (pytest-xdist, ``-n auto --dist loadgroup`` in pyproject.toml), the suite fits
# its 10-minute budget on two cores. Three rules keep that honest and safe:
# - one torch thread per core: two workers each running two threads on two cores would spin;
# - the longest tests (marked ``slow``) are handed out first, so no worker is left with one at
#   the end;
# - a test that runs yosys, nextpnr or icepack asks for ``yowasp_tools`` (below): the first run of
#   a YoWASP tool on a machine writes its compile cache without a lock.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_THREADS = max(1, (os.cpu_count() or 1) // _WORKERS)
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))  # for the CLI subprocesses too


def pytest_sessionstart(session):
    if _WORKERS > 1:  # torch may be imported already (by the shipped fixtures): tell it too
        import torch

        torch.set_num_threads(_THREADS)


@pytest.hookimpl(trylast=True)  # after xdist's own hook, which the fix below completes
def pytest_collection_modifyitems(config, items):
    # stable: among equals, collection order stays
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1)
    if getattr(config.option, "loadgroup", False):  # an xdist worker under --dist loadgroup
        _mark_xdist_groups(items)


def _mark_xdist_groups(items):
    # pytest-xdist tells the scheduler a test's ``xdist_group`` by appending "@group" to
    # ``item._nodeid``, which pytest 9.2 no longer reads (pytest-xdist issue #1386): every group
    # would be ignored without a word. Where xdist's suffix is missing, put it into the id pytest
    # reads (its structured id, parsed from the same string).
    for item in items:
        names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                        for mark in item.iter_markers("xdist_group")})
        nodeid = item.nodeid
        if names and nodeid.rfind("@") <= nodeid.rfind("]") and hasattr(item, "_id"):
            item._id = type(item._id).parse(f"{nodeid}@{'_'.join(names)}")


@pytest.fixture(scope="session")
def yowasp_tools(tmp_path_factory):
    """Run yosys, nextpnr-ice40 and icepack once each, one process at a time, before the test.

    The first run of a YoWASP tool on a machine compiles its WebAssembly (minutes for yosys)
    and writes the result into the YoWASP cache without a lock: two first runs at once, on two
    xdist workers, could leave the other one a half-written file. Once the cache holds a tool,
    runs only read it, so the tests that use it may run side by side."""
    from filelock import FileLock
    from wb_fpga.toolchain import tool_command

    # the same folder for every worker of this run (a warm cache makes each run ~1 s)
    with FileLock(tmp_path_factory.getbasetemp().parent / "yowasp.lock"):
        for tool, args in (("yosys", ["-V"]), ("nextpnr-ice40", ["--version"]),
                           ("icepack", ["-h"])):  # the exit code does not matter here
            subprocess.run(tool_command(tool, args), capture_output=True, check=False,
                           timeout=600)


# -- the toy time-to-first-spike plugin (tests/fixtures/ttfs_toy_plugin.py) -----------------------
class TTFSToy:
    """The toy TTFS plugin loaded as module ``ttfs_toy``, and its project: ``wb_core.ttfs``
    (t_max 2) -> flatten -> 16 time neurons (``hidden``) -> 10 output time neurons (``out``),
    with every neuron firing except those in :attr:`SILENT` (silenced by their weights)."""

    SILENT: ClassVar[dict[str, list[int]]] = {"hidden": [0], "out": [2, 7]}

    def __init__(self, name: str) -> None:
        self.name = name

    def host(self):
        from workbench.pluginhost.manager import PluginHost

        host = PluginHost(strict=True)
        host.load(modules=[self.name])
        assert not host.report.failures
        return host

    def session(self, folder, host=None):
        """Write the project into ``folder``, build it with the silenced weights and save
        them; returns the :class:`Session`."""
        import torch

        from workbench.core.model.graph import Graph, Node
        from workbench.core.model.project import Component
        from workbench.core.persistence.project_files import load_project, save_project
        from workbench.core.runs.session import Session
        from workbench.testing.fixtures import make_tiny_project

        project = make_tiny_project(folder)
        project.encoder = Component("wb_core.ttfs", {"t_max": 2.0})
        project.training.rule = Component(f"{self.name}.rule", {})
        project.graph = Graph.chain([Node("flat", "wb_core.flatten"),
                                     Node("hidden", f"{self.name}.first", {"out_features": 16}),
                                     Node("out", f"{self.name}.first", {"out_features": 10})])
        save_project(project, folder)
        session = Session(load_project(folder), (host or self.host()).registry)
        model = session.build()
        with torch.no_grad():  # positive weights fire; a neuron whose weights sum <= 0 never
            for layer, silent in self.SILENT.items():
                weight = model.layers[layer].weight
                weight.abs_()
                weight[silent] *= -1
        session.save_weights()
        return session


@pytest.fixture
def ttfs_toy(plugin_module) -> TTFSToy:
    source = os.path.join(os.path.dirname(__file__), "fixtures", "ttfs_toy_plugin.py")
    with open(source, encoding="utf-8") as handle:
        return TTFSToy(plugin_module("ttfs_toy", handle.read()))
