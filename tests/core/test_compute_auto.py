"""``threads = 0``: the cores minus the current load, at least one; the kernels and the
whole-network compile switch saved only when changed."""

from __future__ import annotations

import pytest

from workbench.core.build import compute
from workbench.core.model.project import ComputeSettings


@pytest.mark.parametrize(("cores", "load", "threads"), [
    (2, 0.2, 2),    # an idle laptop: every core
    (2, 1.4, 1),    # one core busy elsewhere
    (2, 4.6, 1),    # overloaded: never fewer than one
    (16, 5.5, 10),  # 16 - 6 (5.5 rounds to the even 6)
    (8, 0.0, 8),
])
def test_auto_threads_leaves_the_busy_cores(monkeypatch, cores, load, threads):
    monkeypatch.setattr(compute, "process_threads", lambda: cores)
    monkeypatch.setattr(compute.os, "getloadavg", lambda: (load, 0.0, 0.0))
    assert compute.auto_threads() == threads


def test_auto_threads_without_a_load_average_uses_every_core(monkeypatch):
    def unavailable():
        raise OSError("no load average")

    monkeypatch.setattr(compute, "process_threads", lambda: 4)
    monkeypatch.setattr(compute.os, "getloadavg", unavailable)
    assert compute.auto_threads() == 4


def test_resolve_fixes_the_count_and_carries_the_kernels(monkeypatch):
    monkeypatch.setattr(compute, "process_threads", lambda: 4)
    monkeypatch.setattr(compute.os, "getloadavg", lambda: (2.2, 0.0, 0.0))
    auto = compute.resolve(ComputeSettings(device="cpu"))
    assert (auto.threads, auto.kernels, auto.compile) == (2, "auto", False)
    fixed = compute.resolve(ComputeSettings(device="cpu", threads=3, kernels="eager",
                                            compile=True))
    assert (fixed.threads, fixed.kernels, fixed.compile) == (3, "eager", True)


def test_new_switches_are_saved_only_when_changed():
    assert "kernels" not in ComputeSettings().to_dict()
    assert "compile" not in ComputeSettings().to_dict()
    changed = ComputeSettings(kernels="fused", compile=True).to_dict()
    assert changed["kernels"] == "fused" and changed["compile"] is True


@pytest.mark.slow
def test_a_compiled_network_trains_like_the_eager_one_and_shows_its_warm_up(tmp_path,
                                                                             plugin_host):
    from workbench.core.runs.events import Progress, RunFinished, StepStarted
    from workbench.core.runs.session import Session
    from workbench.testing.fixtures import make_tiny_project

    results = {}
    for on in (False, True):
        project = make_tiny_project(tmp_path / str(on))
        project.compute = ComputeSettings(device="cpu", threads=1, compile=on)
        events = list(Session(project, plugin_host.registry).train(epochs=1))
        finished = events[-1]
        assert isinstance(finished, RunFinished) and finished.status == "ok", finished.error
        results[on] = (finished.summary, events)
    eager, compiled = results[False][0], results[True][0]
    assert compiled["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-4)
    assert compiled["test_accuracy"] == pytest.approx(eager["test_accuracy"], abs=0.02)
    steps = [e.step for e in results[True][1] if isinstance(e, StepStarted)]
    assert steps == ["compiling the network", "training"]
    assert any(isinstance(e, Progress) and e.message == "compiling the network"
               for e in results[True][1])
    assert not any(isinstance(e, StepStarted) for e in results[False][1])
