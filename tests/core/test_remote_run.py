"""The remote training run (workbench.core.runs.remote) against a scripted runner: how a job's
output becomes the run's events, and that the project changes only when a job succeeded with
weights that fit. The real Ray runner is tested in tests/plugins/test_ray_runner.py."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import pytest
import torch

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.project import RUNS_DIR
from workbench.core.model.specs import ParamSpec, RunnerSpec
from workbench.core.persistence.project_files import load_project, save_project
from workbench.core.persistence.weights import weights_bytes
from workbench.core.runs import remote
from workbench.core.runs.events import Artifact, MetricSample, Progress, RunStarted
from workbench.core.runs.records import last_training
from workbench.core.runs.session import Session
from workbench.testing.fixtures import make_tiny_project, tiny_graph


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch):
    monkeypatch.setattr(remote, "POLL_S", 0.0)
    monkeypatch.setattr(remote, "TAIL_WAIT_S", 0.05)


class ScriptedJob:
    """Hands out ``updates`` one per poll (the last one again after that); ``stop()`` turns
    the job "stopped"."""

    def __init__(self, updates: list[remote.JobUpdate]) -> None:
        self.id, self.where = "job-1", "scripted job job-1"
        self.updates = list(updates)
        self.stops = 0

    def poll(self) -> remote.JobUpdate:
        if self.stops:
            return remote.JobUpdate("", "stopped", "stopped by the test")
        return self.updates.pop(0) if len(self.updates) > 1 else self.updates[0]

    def stop(self) -> None:
        self.stops += 1


class ScriptedRunner:
    def __init__(self, job: ScriptedJob, sent: list) -> None:
        self.job, self.sent = job, sent

    def submit(self, folder, command, *, excludes, env):
        self.sent.append((folder, command, excludes, env))
        return self.job


def runner_spec(job: ScriptedJob, sent: list) -> RunnerSpec:
    return RunnerSpec(id="scripted.runner", display_name="Scripted",
                      factory=lambda address: ScriptedRunner(job, sent),
                      params=(ParamSpec("address", "here", "str"),))


def line(obj: dict) -> str:
    return json.dumps(obj) + "\n"


def weights_line(data: bytes) -> str:
    return line({"event": remote.WEIGHTS_EVENT, "file": "weights.safetensors",
                 "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                 "data": base64.b64encode(data).decode()})


def started(total: int) -> str:
    return line({"event": "run_started", "run_id": "train-remote", "kind": "train",
                 "total": total, "config": {"epochs": 1}})


def epoch_end(step: int) -> str:
    values = {"train_loss": 1.5, "train_accuracy": 0.5, "test_accuracy": 0.25, "lr": 0.0}
    return line({"event": "metric", "run_id": "train-remote", "epoch": 1, "step": step,
                 "values": values, "epoch_end": True})


@pytest.fixture
def session(tmp_path, plugin_host) -> Session:
    make_tiny_project(tmp_path / "tiny")
    return Session(load_project(tmp_path / "tiny"), plugin_host.registry)


def halves(session: Session) -> bytes:
    """Weights of the project's network with every value 0.5 (no network starts that way)."""
    model = session.build(load_saved_weights=False)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.fill_(0.5)
    data = weights_bytes(model)
    session.model = None
    return data


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_succeeded_job_brings_its_events_weights_and_record_home(session):
    data = halves(session)
    job = ScriptedJob([
        remote.JobUpdate("Ray's own line\n" + started(10), "running"),
        remote.JobUpdate(epoch_end(10) + line({"event": "artifact", "run_id": "train-remote",
                                                "path": "/cluster/w", "kind": "weights"}),
                         "running"),
        remote.JobUpdate(line({"event": "summary", "status": "ok", "epochs": 1,
                               "weights": "/cluster/w"}) + weights_line(data)[:-1],
                         "succeeded"),
    ])
    sent: list = []
    run = remote.submit(session, runner_spec(job, sent), {}, epochs=1)
    events = list(run)

    folder = session.project.folder
    assert sent == [(folder, ["python", "-m", remote.JOB_MODULE, "--epochs", "1"],
                     remote.EXCLUDES, {"PYTHONUNBUFFERED": "1"})]
    assert {e.run_id for e in events} == {run.id}  # the job's events became this run's
    first = events[0]
    assert isinstance(first, RunStarted) and first.config["job"] == "job-1"
    assert first.config["remote_run_id"] == "train-remote"
    metric = next(e for e in events if isinstance(e, MetricSample))
    assert metric.values["test_accuracy"] == 0.25
    progress = [e for e in events if isinstance(e, Progress)]
    assert [(p.done, p.total) for p in progress] == [(10, 10)]
    artifacts = [e for e in events if isinstance(e, Artifact)]
    assert len(artifacts) == 1 and Path(artifacts[0].path).parent == folder  # not the cluster's
    finished = events[-1]
    assert finished.status == "ok" and finished.summary["weights"] == artifacts[0].path
    assert Path(finished.summary["weights"]).read_bytes() == data
    assert load_project(folder).weights_path.read_bytes() == data
    # the session holds them too: every float in its network is 0.5
    assert all(bool((t == 0.5).all()) for t in session.model.state_dict().values()
               if t.is_floating_point())
    history = last_training(folder)
    assert history is not None and history.run_id == run.id and history.status == "ok"
    assert history.epochs == 1


@pytest.mark.parametrize("output, reason, expected", [
    (line({"event": remote.FAILED_EVENT, "error": "the cluster lacks the plugin(s) wb_x"}),
     "exit code 2", "the cluster lacks the plugin(s) wb_x"),
    ("one\ntwo\nTraceback\nModuleNotFoundError: No module named 'workbench'\n",
     "Job entrypoint command failed with exit code 1",
     "No module named 'workbench' | Job entrypoint command failed with exit code 1"),
])
def test_a_failed_job_says_why_in_one_message_and_changes_nothing(session, output, reason,
                                                                  expected):
    before = snapshot(session.project.folder)
    job = ScriptedJob([remote.JobUpdate(output, "failed", reason)])
    finished = remote.submit(session, runner_spec(job, []), {}).result()
    assert finished.status == "failed" and finished.error_kind == "input"
    assert finished.error_where == "scripted job job-1"
    assert expected in finished.error and "\n" not in finished.error
    assert snapshot(session.project.folder) == before  # no weights, no record


def test_cancelling_stops_the_job_and_changes_nothing(session):
    before = snapshot(session.project.folder)
    job = ScriptedJob([remote.JobUpdate(started(100), "running"),
                       remote.JobUpdate(epoch_end(5), "running")])
    run = remote.submit(session, runner_spec(job, []), {})
    for event in run:
        if isinstance(event, MetricSample):
            run.cancel()
    assert job.stops == 1
    assert run.finished.status == "cancelled"
    assert snapshot(session.project.folder) == before


def test_a_job_that_succeeds_after_the_stop_was_asked_still_counts_as_stopped(session):
    before = snapshot(session.project.folder)
    data = halves(session)
    job = ScriptedJob([remote.JobUpdate(started(10), "running"),
                       remote.JobUpdate(epoch_end(10) + weights_line(data), "succeeded")])
    job.stop = lambda: None  # the cluster ignores the stop: the job ends on its own
    run = remote.submit(session, runner_spec(job, []), {})
    run.cancel()
    assert run.result().status == "cancelled"
    assert snapshot(session.project.folder) == before


def test_weights_of_another_network_are_refused_and_the_project_keeps_its_own(session):
    other = Session(session.project.copy(), session.lookup)
    other.project.graph = tiny_graph(hidden=8)  # 8 hidden neurons, the project has 32
    foreign = weights_bytes(other.build(load_saved_weights=False))
    own = halves(session)
    session.build(load_saved_weights=False)
    model_before = session.model
    session.save_weights()
    assert load_project(session.project.folder).weights_path.read_bytes() != own
    before = snapshot(session.project.folder)
    job = ScriptedJob([remote.JobUpdate(started(10) + line({"event": "summary",
                                                            "status": "ok"})
                                        + weights_line(foreign), "succeeded")])
    finished = remote.submit(session, runner_spec(job, []), {}).result()
    assert finished.status == "failed"
    assert "do not fit the project's network" in finished.error
    assert "hidden" in finished.error  # the tensor that differs is named
    assert snapshot(session.project.folder) == before
    assert session.model is model_before


def test_damaged_weights_are_refused(session):
    data = halves(session)
    item = json.loads(weights_line(data))
    item["data"] = item["data"][:-8] + "AAAAAAAA"  # still base64, not the same bytes
    job = ScriptedJob([remote.JobUpdate(started(10) + line({"event": "summary", "status": "ok"})
                                        + line(item), "succeeded")])
    finished = remote.submit(session, runner_spec(job, []), {}).result()
    assert finished.status == "failed" and "checksum" in finished.error
    assert not (session.project.folder / RUNS_DIR).exists()


def test_bad_options_are_refused_before_anything_is_sent(session, tmp_path):
    sent: list = []
    spec = runner_spec(ScriptedJob([remote.JobUpdate("", "running")]), sent)
    with pytest.raises(WorkbenchError) as caught:
        remote.submit(session, spec, {"address": 5})
    assert caught.value.where == "address"
    with pytest.raises(WorkbenchError) as caught:
        remote.submit(session, spec, {}, epochs=0)
    assert caught.value.where == "epochs"
    session.project.folder = None
    with pytest.raises(WorkbenchError, match="save it first"):
        remote.submit(session, spec, {})
    assert sent == []


def test_missing_plugins_names_each_plugin_and_what_uses_it(tiny_project, plugin_host):
    project = tiny_project.copy()
    project.dataset.id = "wb_elsewhere.data"
    project.graph.nodes[1].params["neuron"] = {"id": "wb_other.neuron", "params": {}}
    missing = remote.missing_plugins(project, plugin_host.registry)
    assert missing == {"wb_elsewhere": ["wb_elsewhere.data (dataset)"],
                       "wb_other": ["wb_other.neuron (node 'hidden')"]}
    assert remote.missing_plugins(tiny_project, plugin_host.registry) == {}


def test_the_job_names_the_plugins_the_cluster_lacks(tmp_path, monkeypatch):
    from workbench.cli import remote_job

    project = make_tiny_project(tmp_path / "tiny")
    project.encoder.id = "wb_gone.encoder"
    save_project(project, tmp_path / "tiny")
    monkeypatch.chdir(tmp_path / "tiny")
    out = io.StringIO()
    assert remote_job.main([], out=out) == 2
    item = json.loads(out.getvalue().strip())
    assert item["event"] == remote.FAILED_EVENT
    assert "the cluster lacks the plugin(s) the project needs: wb_gone" in item["error"]
    assert "wb_gone.encoder (encoder)" in item["error"]
