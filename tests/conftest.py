import os

# Before anything imports Qt or loads plugins: offscreen Qt (CI has no display), strict plugin
# loading (a broken first-party plugin fails the suite) and no third-party plugins.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["SNN_WORKBENCH_STRICT_PLUGINS"] = "1"
os.environ["SNN_WORKBENCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"
os.environ.pop("SNN_WORKBENCH_PLUGINS", None)
