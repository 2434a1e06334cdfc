"""Hyper-parameter sweeps (workbench.core.runs.sweep): the setting paths, the checks of the
values, trials trained here and as jobs of a runner, and what a failed or stopped trial leaves.
The Ray runner's sweep is in tests/plugins/test_ray_runner.py, the app's in
tests/gui/test_sweep_gui.py."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import pytest
import torch

from workbench.core.model.errors import ProjectError, WorkbenchError
from workbench.core.model.project import PROJECT_FILE
from workbench.core.model.setting_paths import apply_setting, find_setting, get_setting, settings
from workbench.core.model.specs import ParamSpec, RunnerSpec
from workbench.core.persistence.project_files import load_project
from workbench.core.persistence.weights import load_weights, weights_bytes
from workbench.core.runs import catalog, remote, session_runs
from workbench.core.runs.engine import launch
from workbench.core.runs.events import Progress, RunFinished, StepStarted
from workbench.core.runs.session import Session
from workbench.core.runs.sweep import (
    MAX_TRIALS,
    RECORD_KEY,
    SweepAxis,
    check_axes,
    parse_values,
    spaced,
    trial_values,
)
from workbench.testing.fixtures import make_tiny_project

LR = "training.rule.params.lr"


@pytest.fixture
def session(tmp_path, plugin_host) -> Session:
    make_tiny_project(tmp_path / "tiny")
    return Session(load_project(tmp_path / "tiny"), plugin_host.registry)


def snapshot(folder: Path) -> dict[str, bytes]:
    """The project's own files (its variants/ folder, where the trials go, left out)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "variants" not in p.relative_to(folder).parts}


def record(folder: Path) -> dict:
    return json.loads((folder / PROJECT_FILE).read_text())["extras"][RECORD_KEY]


# -- settings ------------------------------------------------------------------------------------
def test_the_settings_are_the_project_fields_the_components_and_each_node(session):
    project, lookup = session.project, session.lookup
    paths = [s.path for s in settings(project, lookup)]
    assert paths[:4] == ["time_steps", "training.epochs", "training.batch_size", "training.seed"]
    assert LR in paths
    node = project.graph.nodes[1]
    assert any(p.startswith(f"nodes.{node.id}.") for p in paths)
    lr = find_setting(project, lookup, "lr")  # the last part alone, when only one ends so
    assert lr.path == LR and lr.value == 0.005 and lr.title == "Learning rate (Training)"
    with pytest.raises(ProjectError, match="training.seed, dataset.params.seed") as info:
        find_setting(project, lookup, "seed")
    assert info.value.where == "seed"
    with pytest.raises(ProjectError, match="did you mean training.epochs"):
        find_setting(project, lookup, "training.epoch")


def test_a_setting_is_read_and_written_by_its_path(session):
    project = session.project.copy()
    node = project.graph.nodes[1]
    name = next(s.param.name for s in settings(project, session.lookup)
                if s.path.startswith(f"nodes.{node.id}."))
    apply_setting(project, f"nodes.{node.id}.{name}", 7)
    apply_setting(project, LR, 0.25)
    apply_setting(project, "time_steps", 9)
    assert node.params[name] == 7 and get_setting(project, f"nodes.{node.id}.{name}") == 7
    assert project.training.rule.params["lr"] == 0.25 and project.time_steps == 9
    assert session.project.time_steps == 2  # the copy, not the session's project


# -- values --------------------------------------------------------------------------------------
def test_values_are_read_as_json_else_as_text():
    assert parse_values("0.001, 4 ,true, adam") == (0.001, 4, True, "adam")
    with pytest.raises(WorkbenchError, match="between commas"):
        parse_values("0.1,,0.2", where="lr")


def test_spaced_values_by_hand():
    assert spaced(1e-3, 1e-1, 3, log=True) == [0.001, 0.01, 0.1]
    assert spaced(0, 1, 5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert spaced(2, 8, 4, integer=True) == [2, 4, 6, 8]
    assert spaced(1, 2, 5, integer=True) == [1, 2]  # 1, 1.25, 1.5, 1.75, 2 rounded, once each
    with pytest.raises(WorkbenchError, match="above 0"):
        spaced(0, 1, 3, log=True)


def test_the_values_are_checked_by_the_settings_own_spec(session):
    project, lookup = session.project, session.lookup
    axes = check_axes(project, lookup, [SweepAxis("lr", (0.01, 1)),
                                        SweepAxis("time_steps", (2.0, 4))])
    assert axes == [SweepAxis(LR, (0.01, 1.0)), SweepAxis("time_steps", (2, 4))]
    assert [type(v) for v in axes[1].values] == [int, int]
    assert trial_values(axes) == [{LR: 0.01, "time_steps": 2}, {LR: 0.01, "time_steps": 4},
                                  {LR: 1.0, "time_steps": 2}, {LR: 1.0, "time_steps": 4}]
    bad = [([SweepAxis("time_steps", (2, 0))], "time_steps", "below the minimum"),
           ([SweepAxis("lr", ("fast",))], "lr", "expected a number"),
           ([SweepAxis("lr", (0.1, 0.1))], "lr", "given twice"),
           ([SweepAxis("lr", (0.1,)), SweepAxis(LR, (0.2,))], LR, "swept twice"),
           ([SweepAxis("lr", ())], "lr", "no values")]
    for given, where, message in bad:
        with pytest.raises(ProjectError, match=message) as info:
            check_axes(project, lookup, given)
        assert info.value.where == where
    many = [SweepAxis("training.seed", tuple(range(MAX_TRIALS))), SweepAxis("lr", (0.1, 0.2))]
    with pytest.raises(WorkbenchError, match=f"{2 * MAX_TRIALS} trials"):
        check_axes(project, lookup, many)


# -- trials here ---------------------------------------------------------------------------------
def test_a_sweep_trains_a_variant_per_value_and_leaves_the_project_as_it_was(session):
    folder = session.project.folder
    before = snapshot(folder)
    run = catalog.sweep(session, axes=[SweepAxis("lr", (0.001, 0.05))], epochs=1, limit=64)
    events = list(run)
    finished = events[-1]
    assert finished.status == "ok", finished.error
    assert snapshot(folder).keys() - before.keys() == {f"runs/{run.id}.jsonl"}
    assert {k: v for k, v in snapshot(folder).items() if k in before} == before

    steps = [e.step for e in events if isinstance(e, StepStarted)]
    assert steps == ["trial 1 of 2: lr=0.001", "trial 2 of 2: lr=0.05"]
    progress = [(e.done, e.total) for e in events if isinstance(e, Progress)]
    assert progress[-1] == (200, 200) and all(t == 200 for _, t in progress)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)  # one bar, never back

    rows = finished.summary["trials"]
    assert [r["trial"] for r in rows] == ["sweep-lr-t01", "sweep-lr-t02"]
    for row, lr in zip(rows, (0.001, 0.05), strict=True):
        trial = Path(row["folder"])
        assert trial.parent == folder / "variants" and row["status"] == "ok"
        project = load_project(trial)
        assert project.training.rule.params["lr"] == lr and project.extras[RECORD_KEY]["values"] \
            == {LR: lr}
        assert record(trial)["after"]["accuracy"] == row["accuracy"]
        assert record(trial)["parent_folder"] == str(folder)
        # the weights the trial trained are the variant's, and they fit its network
        load_weights(Session(project, session.lookup).build(load_saved_weights=False),
                     project.weights_path)
    best = max(rows, key=lambda r: r["accuracy"])
    assert finished.summary["best"] == best["folder"]
    # a second sweep of the same setting takes the next name, never the first one's folders
    again = catalog.sweep(session, axes=[SweepAxis("lr", (0.01,))], epochs=1, limit=16)
    assert again.result().summary["trials"][0]["trial"] == "sweep-lr-2-t01"


def failing_train(monkeypatch, fails):
    """Trials whose learning rate ``fails(lr)`` fail in their training, the others train."""
    real = session_runs.train

    def train(trial_session, **options):
        lr = trial_session.project.training.rule.params["lr"]
        if fails(lr):
            def body(token, run_id):
                raise WorkbenchError(f"the data went away at lr={lr}", where="dataset")
                yield  # a generator, as every run body is
            return launch("train", body, record_to=None)
        return real(trial_session, **options)

    monkeypatch.setattr(session_runs, "train", train)


def test_a_failed_trial_leaves_nothing_and_the_sweep_goes_on(session, monkeypatch):
    failing_train(monkeypatch, lambda lr: lr == 0.5)
    finished = catalog.sweep(session, axes=[SweepAxis("lr", (0.5, 0.01))], epochs=1,
                             limit=16).result()
    assert finished.status == "ok"
    failed, good = finished.summary["trials"]
    assert failed["status"] == "failed" and "the data went away" in failed["error"]
    assert not Path(failed["folder"]).exists() and Path(good["folder"]).is_dir()
    assert finished.summary["best"] == good["folder"]


def test_every_trial_failing_fails_the_sweep_with_the_first_reason(session, monkeypatch):
    failing_train(monkeypatch, lambda lr: True)
    finished = catalog.sweep(session, axes=[SweepAxis("lr", (0.5, 0.01))], epochs=1).result()
    assert finished.status == "failed" and finished.error_kind == "input"
    assert finished.error.startswith("every trial failed; the first said: dataset: "
                                     "the data went away at lr=0.5")
    assert not (session.project.folder / "variants").exists() or not any(
        (session.project.folder / "variants").iterdir())
    with pytest.raises(WorkbenchError, match="not an installed runner"):
        catalog.sweep(session, axes=[SweepAxis("lr", (0.1,))], runner="nowhere.runner")


def test_stopping_a_sweep_stops_the_trial_and_starts_no_other(session):
    run = catalog.sweep(session, axes=[SweepAxis("lr", (0.001, 0.01, 0.1))], epochs=3)
    events = []
    for event in run:
        events.append(event)
        if isinstance(event, Progress) and event.done > 0:
            run.cancel()
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "cancelled"
    statuses = [r["status"] for r in finished.summary["trials"]]
    assert statuses == ["cancelled", "not run", "not run"]
    assert not (session.project.folder / "variants").exists() or not any(
        (session.project.folder / "variants").iterdir())


def test_an_unsaved_project_or_a_bad_option_is_refused_before_anything_runs(session,
                                                                              plugin_host):
    with pytest.raises(WorkbenchError, match="several at once need a runner") as info:
        catalog.sweep(session, axes=[SweepAxis("lr", (0.1,))], parallel=2)
    assert info.value.where == "parallel"
    with pytest.raises(WorkbenchError, match="must be 1 or more"):
        catalog.sweep(session, axes=[SweepAxis("lr", (0.1,))], epochs=0)
    unsaved = Session(session.project.copy(), plugin_host.registry)
    unsaved.project.folder = None
    with pytest.raises(ProjectError, match="save it first"):
        catalog.sweep(unsaved, axes=[SweepAxis("lr", (0.1,))])


# -- trials as jobs ------------------------------------------------------------------------------
class TrainedJob:
    """A job that "trains" for ``polls`` polls and succeeds with weights of the network of the
    folder it was sent (every value 0.5), in the job module's own output format."""

    def __init__(self, folder: Path, lookup, log: list, polls: int = 3) -> None:
        self.id, self.where = folder.name, f"job {folder.name}"
        model = Session(load_project(folder), lookup).build(load_saved_weights=False)
        with torch.no_grad():
            for tensor in model.state_dict().values():
                tensor.fill_(0.5) if tensor.is_floating_point() else None
        data = weights_bytes(model)
        self.lines = [
            {"event": "run_started", "run_id": "remote", "kind": "train", "total": 2,
             "config": {}},
            {"event": "summary", "status": "ok", "epochs": 1},
            {"event": remote.WEIGHTS_EVENT, "size": len(data),
             "sha256": hashlib.sha256(data).hexdigest(),
             "data": base64.b64encode(data).decode()}]
        self.polls, self.log = polls, log
        self.started = time.monotonic()
        log.append(("sent", self.id))

    def poll(self) -> remote.JobUpdate:
        # a job ends only once two were out at the same time (or after 10 s, and the test
        # fails): the threads' own pace must not decide the order the test reads
        both_out = sum(kind == "sent" for kind, _ in self.log) >= 2
        if not both_out and time.monotonic() - self.started < 10:
            return remote.JobUpdate("", "running")
        self.polls -= 1
        if self.polls > 0:
            return remote.JobUpdate("", "running")
        if self.polls == 0:
            self.log.append(("ended", self.id))
            return remote.JobUpdate("".join(json.dumps(x) + "\n" for x in self.lines),
                                    "succeeded")
        return remote.JobUpdate("", "succeeded")

    def stop(self) -> None:
        self.log.append(("stopped", self.id))


def test_trials_sent_to_a_runner_run_side_by_side_as_jobs(session, monkeypatch):
    monkeypatch.setattr(remote, "POLL_S", 0.01)
    log: list = []

    class Runner:
        def submit(self, folder, command, *, excludes, env):
            assert command[-1] == "--fresh"  # every trial starts from new weights
            return TrainedJob(Path(folder), session.lookup, log)

    spec = RunnerSpec(id="test.jobs", display_name="Jobs", factory=lambda address: Runner(),
                      params=(ParamSpec("address", "here", "str"),))
    lookup_get = session.lookup.get
    monkeypatch.setattr(session.lookup, "get",
                        lambda spec_id: spec if spec_id == spec.id else lookup_get(spec_id))
    run = catalog.sweep(session, axes=[SweepAxis("lr", (0.001, 0.01, 0.1))], runner=spec.id,
                        parallel=2, epochs=1, limit=32)
    events = list(run)
    finished = events[-1]
    assert finished.status == "ok", finished.error
    rows = finished.summary["trials"]
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"]
    for row in rows:
        assert load_project(row["folder"]).weights_path.is_file()
        assert record(Path(row["folder"]))["runner"] == spec.id
    # two jobs out at once (neither ended before the other was sent), the third sent when
    # one came back
    assert [kind for kind, _ in log[:3]] == ["sent", "sent", "ended"]
    assert log.index(("sent", "sweep-lr-t03")) > 2
    assert log.count(("sent", "sweep-lr-t03")) == 1 and len(log) == 6
    progress = [e.done for e in events if isinstance(e, Progress)]
    assert progress == [100, 200, 300]
