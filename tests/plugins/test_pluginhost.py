"""The plugin host isolates broken plugins and reports each failure."""

from __future__ import annotations

import pytest

from workbench.pluginhost.manager import PluginHost, StrictPluginError

GOOD = """
from workbench.pluginhost import hookimpl, NeuronSpec, ParamSpec

@hookimpl
def wb_neurons():
    return [NeuronSpec(id="{name}.cell", display_name="Cell", factory="wb_core.neurons:lif",
                       params=(ParamSpec("tau", 2.0),))]
"""

BROKEN = {
    "raises_on_import": ("import", "raise ImportError('no board SDK')\n"),
    "hook_raises": ("hook wb_blocks", """
        from workbench.pluginhost import hookimpl
        @hookimpl
        def wb_blocks():
            raise RuntimeError('boom')
        """),
    "invalid_spec": ("spec invalid_spec.bad", """
        from workbench.pluginhost import hookimpl, BlockSpec, ParamSpec
        @hookimpl
        def wb_blocks():
            return [BlockSpec(id="invalid_spec.bad", display_name="Bad", factory="no colon",
                              params=(ParamSpec("n", 0, "int", low=1),))]
        """),
    "wrong_prefix": ("spec someone_else.x", """
        from workbench.pluginhost import hookimpl, EncoderSpec
        @hookimpl
        def wb_encoders():
            return [EncoderSpec(id="someone_else.x", display_name="X", factory="a:b")]
        """),
    "wrong_type": ("spec 'not a spec'", """
        from workbench.pluginhost import hookimpl
        @hookimpl
        def wb_neurons():
            return ["not a spec"]
        """),
    "typo_hook": ("register", """
        from workbench.pluginhost import hookimpl
        @hookimpl
        def wb_nurons():
            return []
        """),
    "bad_args": ("register", """
        from workbench.pluginhost import hookimpl
        @hookimpl
        def wb_neurons(color):
            return []
        """),
}


def test_each_kind_of_failure_is_reported_and_others_keep_working(plugin_module):
    names = [plugin_module(name, source) for name, (_, source) in BROKEN.items()]
    good = plugin_module("good_plugin", GOOD.format(name="good_plugin"))
    host = PluginHost(strict=False)
    host.load(modules=[*names, good])
    stages = {(f.plugin, f.stage) for f in host.report.failures}
    for name, (stage, _) in BROKEN.items():
        assert (name, stage) in stages, (name, host.report.failures)
    assert all(f.traceback for f in host.report.failures)
    # every first-party contribution and the good plugin survive
    assert host.registry.get("good_plugin.cell") is not None
    assert host.registry.get("wb_core.lif") is not None
    assert host.registry.get("wb_datasets.digits") is not None
    loaded = {p.name for p in host.report.plugins}
    assert {"wb_core", "wb_datasets", "good_plugin"} <= loaded
    assert "raises_on_import" not in loaded and "typo_hook" not in loaded


def test_duplicate_ids_keep_the_first(plugin_module):
    name = plugin_module("dup", """
        from workbench.pluginhost import hookimpl, EncoderSpec
        @hookimpl
        def wb_encoders():
            return [EncoderSpec(id="dup.enc", display_name="First", factory="a:b"),
                    EncoderSpec(id="dup.enc", display_name="Second", factory="a:c")]
        """)
    host = PluginHost(strict=False)
    host.load(modules=[name])
    assert host.registry.get("dup.enc").display_name == "First"
    (failure,) = host.report.failures
    assert failure.stage == "spec dup.enc" and "already provided by 'dup'" in failure.message


def test_strict_mode_turns_the_first_failure_into_an_error(plugin_module):
    name = plugin_module("raises_on_import", BROKEN["raises_on_import"][1])
    with pytest.raises(StrictPluginError, match="raises_on_import.*import"):
        PluginHost(strict=True).load(modules=[name])


def test_disabled_plugins_are_skipped():
    host = PluginHost(strict=True)
    host.load(disabled=["wb_datasets"])
    assert host.registry.get("wb_datasets.digits") is None
    assert host.registry.get("wb_core.lif") is not None


def test_extra_plugins_from_the_environment(plugin_module, monkeypatch):
    name = plugin_module("env_plugin", GOOD.format(name="env_plugin"))
    monkeypatch.setenv("SNN_WORKBENCH_PLUGINS", name)
    host = PluginHost(strict=True)
    host.load()
    assert host.registry.provider("env_plugin.cell") == "env_plugin"


def test_a_plugin_factory_that_fails_to_import_names_the_plugin(plugin_module):
    from workbench.core.model.errors import PluginError
    from workbench.core.model.specs import NeuronSpec

    spec = NeuronSpec(id="ghost.cell", display_name="Ghost", factory="ghost_module:make")
    with pytest.raises(PluginError, match="plugin 'ghost'.*ghost_module:make"):
        spec.create()


def test_importing_plugins_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from workbench.pluginhost.manager import load_plugins; "
            "h = load_plugins(strict=True); assert len(h.registry) > 20; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- backends are checked against their protocol -----------------------------------------------
BACKEND_PLUGIN = """
from workbench.pluginhost import BackendSpec, hookimpl

class NoCheck:
    def targets(self):
        return {{"cpu": "here"}}
    def deploy(self, ctx):
        yield from ()
        return {{}}
    def run(self, ctx):
        yield from ()
        return {{}}

@hookimpl
def wb_backends():
    return [BackendSpec(id="{name}.board", display_name="Board", factory="{factory}",
                        formats={formats})]
"""


def _backend_plugin(plugin_module, name, factory, formats=()):
    return plugin_module(name, BACKEND_PLUGIN.format(name=name, factory=factory,
                                                     formats=formats))


def test_a_backend_without_check_is_a_reported_failure(plugin_module):
    name = _backend_plugin(plugin_module, "no_check", "no_check:NoCheck")
    host = PluginHost(strict=False)
    host.load(modules=[name])
    (failure,) = host.report.failures
    assert (failure.plugin, failure.stage) == ("no_check", "spec no_check.board")
    assert "has no check() method" in failure.message and "no_check:NoCheck" in failure.message
    assert host.registry.get("no_check.board") is None
    assert host.registry.get("wb_sim.simulator") is not None  # the others keep working


def test_a_backend_module_is_checked_without_importing_it(plugin_module):
    import sys

    plugin_module("lazy_board_impl", "import torch\n" + BACKEND_PLUGIN.split("@hookimpl")[0]
                  .replace("{{", "{").replace("}}", "}"))
    name = _backend_plugin(plugin_module, "lazy_board", "lazy_board_impl:NoCheck")
    host = PluginHost(strict=False)
    host.load(modules=[name])
    (failure,) = host.report.failures
    assert "lazy_board_impl:NoCheck has no check() method" in failure.message
    assert "lazy_board_impl" not in sys.modules


def test_an_exchange_backend_needs_read_and_export(plugin_module):
    name = _backend_plugin(plugin_module, "half_nir", "half_nir:NoCheck", formats=("nir",))
    host = PluginHost(strict=False)
    host.load(modules=[name])
    (failure,) = host.report.failures
    assert "check(), export_file(), read_file() methods" in failure.message


def test_a_missing_backend_module_is_a_reported_failure(plugin_module):
    name = _backend_plugin(plugin_module, "ghost_board", "ghost_board_impl:Backend")
    host = PluginHost(strict=False)
    host.load(modules=[name])
    (failure,) = host.report.failures
    assert failure.stage == "spec ghost_board.board"
    assert "no module named 'ghost_board_impl'" in failure.message


def test_strict_mode_stops_at_a_backend_without_check(plugin_module):
    name = _backend_plugin(plugin_module, "no_check", "no_check:NoCheck")
    with pytest.raises(StrictPluginError, match="no_check.*check\\(\\)"):
        PluginHost(strict=True).load(modules=[name])


def test_create_never_hands_out_a_backend_without_its_methods():
    from workbench.pluginhost import BackendSpec, PluginError

    class Partial:  # what a factory function might build: no way to tell before it runs
        def targets(self):
            return {"cpu": "here"}

    spec = BackendSpec(id="maker.board", display_name="Board", factory=lambda: Partial())
    with pytest.raises(PluginError, match="has no check\\(\\) method") as info:
        spec.create()
    assert info.value.where == "plugin 'maker', maker.board"


def test_the_built_in_backends_follow_their_protocols(plugin_host):
    from workbench.pluginhost import Backend, BackendSpec, ExchangeBackend
    from workbench.pluginhost.conformance import required_methods
    from workbench.pluginhost.protocols import protocol_methods

    assert protocol_methods(Backend) == BackendSpec.METHODS
    assert protocol_methods(ExchangeBackend) == BackendSpec.EXCHANGE_METHODS
    backends = plugin_host.registry.of_kind("backend")
    assert {s.id for s in backends} >= {"wb_sim.simulator", "wb_fpga.fpga", "wb_nir.nir"}
    for spec in backends:
        assert required_methods(spec) == spec.required_methods()
        assert issubclass(spec.resolve(), Backend), spec.id
        assert issubclass(spec.resolve(), ExchangeBackend) == bool(spec.formats), spec.id


def test_trainers_and_encoders_follow_their_protocols(plugin_host):
    import torch

    from workbench.pluginhost import Encoder, Trainer

    for spec in plugin_host.registry.of_kind("encoder"):
        assert isinstance(spec.create(), Encoder), spec.id
    rule = plugin_host.registry.get("wb_core.bptt")
    trainer = rule.create(torch.nn.Linear(2, 2), epochs=1, steps_per_epoch=1)
    assert isinstance(trainer, Trainer)


# -- the public API --------------------------------------------------------------------------
def test_every_public_name_resolves_to_the_core_object():
    import workbench.pluginhost as api
    from workbench.core.build.network import CompiledNetwork
    from workbench.core.runs.compress import CompressionContext

    missing = [n for n in api.__all__ if not hasattr(api, n)]
    assert not missing
    assert api.CompiledNetwork is CompiledNetwork
    assert api.CompressionContext is CompressionContext
    assert set(api.__all__) <= set(dir(api))
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        api.Nothing  # noqa: B018


def test_importing_the_public_api_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, workbench.pluginhost as api; api.hookimpl, api.DeployError, api.Graph; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
