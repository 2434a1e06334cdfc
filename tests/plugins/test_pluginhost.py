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
