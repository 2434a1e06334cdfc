import pytest

from workbench.gui import workers


@pytest.fixture(autouse=True)
def _fresh_settings(tmp_path, monkeypatch):
    # Never read or write the developer's own settings or recovery files.
    monkeypatch.setenv("SNN_WORKBENCH_CONFIG", str(tmp_path / "config"))


@pytest.fixture(autouse=True)
def _no_dangling_threads(qtbot):
    yield
    # A QThread still running at teardown is a future segfault: fail here instead.
    qtbot.waitUntil(lambda: not workers.live_threads(), timeout=10_000)
