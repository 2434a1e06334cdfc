import atexit
import os
import shutil
import tempfile

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
