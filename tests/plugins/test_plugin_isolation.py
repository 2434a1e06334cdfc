"""A plugin cannot take the application down: ``sys.exit()`` at import or in a hook, an import
or a hook that never returns. Each is a reported failure naming the plugin and the stage, the
other plugins load, every command still works, and the CLI says so in one line."""

from __future__ import annotations

import io
import json
import logging
import sys
import time

import pytest

from workbench.cli import main
from workbench.core.build.compile import validate
from workbench.core.model.graph import Graph, Node
from workbench.core.persistence.examples import examples_dir
from workbench.pluginhost.manager import TIMEOUT_ENV, PluginHost, StrictPluginError

GATE = "import threading\nOPEN = threading.Event()\n"
#: each waits on the gate module's event, which the test opens at its end: no thread is left
#: blocked once the test is over
HANGS_ON_IMPORT = "from {gate} import OPEN\nOPEN.wait()\n"
HOOK_HANGS = """
from workbench.pluginhost import hookimpl
from {gate} import OPEN

@hookimpl
def wb_neurons():
    OPEN.wait()
    return []
"""
EXITS_ON_IMPORT = "import sys\nsys.exit(3)\n"
HOOK_EXITS_MIDWAY = """
import sys
from workbench.pluginhost import hookimpl, NeuronSpec

@hookimpl
def wb_neurons():
    yield NeuronSpec(id="{name}.cell", display_name="Cell", factory="wb_core.neurons:lif")
    sys.exit("bye")
"""
GOOD = """
from workbench.pluginhost import hookimpl, NeuronSpec

@hookimpl
def wb_neurons():
    return [NeuronSpec(id="{name}.cell", display_name="Cell", factory="wb_core.neurons:lif")]
"""


@pytest.fixture
def gate(plugin_module):
    """The name of a module whose ``OPEN`` event releases every hanging plugin."""
    name = plugin_module("plugin_gate", GATE)
    __import__(name)
    yield name
    sys.modules[name].OPEN.set()


@pytest.fixture
def lenient(monkeypatch):
    """Plugins load as for a user (our suite runs strict) with a short timeout."""
    monkeypatch.delenv("SNN_WORKBENCH_STRICT_PLUGINS", raising=False)
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")


def run(argv, capsys):
    """``(exit code, JSON lines, stdout, stderr)`` of the CLI run in this process."""
    out = io.StringIO()
    code = main(argv, out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return code, lines, out.getvalue(), capsys.readouterr().err


def _failures(host):
    return {f.plugin: f for f in host.report.failures}


def test_sys_exit_on_import_and_in_a_hook_are_failures_not_exits(plugin_module, lenient):
    names = [plugin_module("exits_on_import", EXITS_ON_IMPORT),
             plugin_module("hook_exits", HOOK_EXITS_MIDWAY.format(name="hook_exits")),
             plugin_module("good_one", GOOD.format(name="good_one"))]
    host = PluginHost()
    host.load(modules=names)
    failures = _failures(host)
    assert failures["exits_on_import"].stage == "import"
    assert "sys.exit(3)" in failures["exits_on_import"].message
    assert failures["hook_exits"].stage == "hook wb_neurons"
    assert "sys.exit('bye')" in failures["hook_exits"].message
    assert host.registry.get("hook_exits.cell") is None  # nothing of a hook that failed
    assert host.registry.get("good_one.cell") is not None
    assert host.registry.get("wb_core.lif") is not None
    assert host.failure_summary() == ("2 plugins failed to load (exits_on_import, hook_exits); "
                                      "see 'snn-workbench plugins'")


def test_a_hung_import_and_a_hung_hook_time_out_and_loading_goes_on(plugin_module, lenient,
                                                                    gate):
    names = [plugin_module("hangs_on_import", HANGS_ON_IMPORT.format(gate=gate)),
             plugin_module("hook_hangs", HOOK_HANGS.format(gate=gate)),
             plugin_module("good_two", GOOD.format(name="good_two"))]
    started = time.perf_counter()
    host = PluginHost()
    host.load(modules=names)
    assert time.perf_counter() - started < 10
    failures = _failures(host)
    assert failures["hangs_on_import"].stage == "import"
    assert failures["hook_hangs"].stage == "hook wb_neurons"
    for failure in failures.values():
        assert "did not return within 0.5 s" in failure.message
        assert TIMEOUT_ENV in failure.message
    assert host.registry.get("good_two.cell") is not None
    assert host.registry.get("wb_datasets.digits") is not None


def test_strict_mode_still_raises_on_the_first_failure(plugin_module, monkeypatch):
    name = plugin_module("exits_strictly", EXITS_ON_IMPORT)
    with pytest.raises(StrictPluginError, match="exits_strictly.*import.*sys.exit"):
        PluginHost(strict=True).load(modules=[name])


def test_keyboard_interrupt_in_a_plugin_still_interrupts(plugin_module, lenient):
    name = plugin_module("interrupts", "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        PluginHost().load(modules=[name])


def test_a_bad_timeout_setting_is_an_input_error(monkeypatch):
    from workbench.core.model.errors import PluginError

    for bad in ("soon", "0", "-1", "nan"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(PluginError, match=f"environment variable {TIMEOUT_ENV}"):
            PluginHost()


def test_a_factory_module_that_calls_sys_exit_is_blamed_on_the_node(plugin_module, lenient):
    plugin_module("exit_factory_impl", "import sys\nsys.exit(4)\n")
    name = plugin_module("exit_factory", """
        from workbench.pluginhost import hookimpl, BlockSpec

        @hookimpl
        def wb_blocks():
            return [BlockSpec(id="exit_factory.layer", display_name="Layer",
                              factory="exit_factory_impl:make")]
        """)
    host = PluginHost()
    host.load(modules=[name])
    report = validate(Graph.chain([Node("x", "exit_factory.layer")]), host.registry, (4,))
    assert "SystemExit" in report.nodes["x"].error
    assert "exit_factory_impl:make" in report.nodes["x"].error


def test_every_command_works_and_says_so_in_one_line(plugin_module, lenient, gate, capsys,
                                                     caplog):
    broken = [plugin_module("exits_on_import", EXITS_ON_IMPORT),
              plugin_module("hangs_on_import", HANGS_ON_IMPORT.format(gate=gate)),
              plugin_module("hook_hangs", HOOK_HANGS.format(gate=gate))]
    plugins = [arg for name in broken for arg in ("--plugin", name)]
    project = str(examples_dir() / "digits_mlp")
    with caplog.at_level(logging.WARNING):
        code, lines, text, err = run(["info", project, *plugins], capsys)
    assert code == 0 and "85002 parameters" in text, err
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [("warning: 3 plugins failed to load (exits_on_import, hangs_on_import, "
                         "hook_hangs); see 'snn-workbench plugins'")]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        code, lines, _, _ = run(["plugins", "--json", *plugins], capsys)
    assert code == 0
    stages = {(f["plugin"], f["stage"]) for f in lines[0]["failures"]}
    assert stages == {("exits_on_import", "import"), ("hangs_on_import", "import"),
                      ("hook_hangs", "hook wb_neurons")}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # the list says it
