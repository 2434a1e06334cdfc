"""The one run API (``workbench.core.runs.catalog``): every kind is recorded, ends with exactly
one RunFinished, turns errors into a failed finish, cancels, and honours device and precision."""

from __future__ import annotations

import json
import shutil

import pytest

from workbench.core.model.errors import WorkbenchError
from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project
from workbench.core.runs import catalog
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.engine import launch
from workbench.core.runs.events import Log, RunFinished, RunStarted
from workbench.core.runs.session import Session


def _record(project_folder, run):
    lines = (project_folder / "runs" / f"{run.id}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _only_one_finish(events):
    finishes = [e for e in events if isinstance(e, RunFinished)]
    assert len(finishes) == 1 and events[-1] is finishes[0]
    return finishes[0]


@pytest.fixture
def trained(trained_digits_mlp, tmp_path, plugin_host):
    folder = tmp_path / "mlp"
    shutil.copytree(trained_digits_mlp, folder)
    return Session(load_project(folder), plugin_host.registry)


@pytest.mark.parametrize("kind, options", [
    ("evaluate", {"limit": 40}),
    ("probe", {"sample": 2}),
    ("check_fit", {"backend": "wb_sim.simulator"}),
    ("deploy", {"backend": "wb_sim.simulator", "limit": 20}),
    ("compress", {"method": "wb_qp_snn.uniform", "params": {"bits": 4}, "limit": 40}),
    ("export", {"path": "OUT/net.nir"}),
])
def test_every_kind_is_recorded_with_one_finish(trained, tmp_path, kind, options):
    options = {k: (tmp_path / v.removeprefix("OUT/") if isinstance(v, str) and
                   v.startswith("OUT/") else v) for k, v in options.items()}
    run = catalog.start(kind, trained, **options)
    events = list(run)
    finished = _only_one_finish(events)
    assert finished.status == "ok", finished.error
    record = _record(trained.project.folder, run)
    assert record[0]["event"] == "run_started" and record[-1]["event"] == "run_finished"
    assert record[-1]["status"] == "ok"
    assert "result" not in record[-1]  # in-memory results never reach a record
    assert all(line["run_id"] == run.id for line in record)


def test_the_probe_carries_its_result_in_memory_and_json_in_the_summary(trained):
    finished = catalog.probe(trained, sample=5).result()
    assert finished.summary["sample"] == 5 and finished.summary["layers"]
    assert finished.result.index == 5
    assert set(finished.result.records) == set(finished.summary["layers"])


def test_errors_inside_a_run_end_it_as_failed_never_raise(tmp_path):
    def bad_input(cancel, run_id):
        yield RunStarted("r1", "x", 0)
        raise WorkbenchError("no good", where="field")

    def crash(cancel, run_id):
        yield RunStarted("r2", "x", 0)
        raise ZeroDivisionError("boom")

    for body, kind in ((bad_input, "input"), (crash, "internal")):
        run = launch("x", body, record_to=tmp_path)
        finished = _only_one_finish(list(run))
        assert finished.status == "failed" and finished.error_kind == kind
    assert len(list((tmp_path / "runs").glob("*.jsonl"))) == 2


def test_a_body_that_forgets_to_finish_still_ends_with_one_failure(tmp_path):
    run = launch("x", lambda cancel, run_id: iter([Log("r", "info", "hi")]), record_to=None)
    finished = _only_one_finish(list(run))
    assert finished.status == "failed" and "without a result" in finished.error


def test_options_wrong_before_the_run_are_input_errors(trained):
    with pytest.raises(WorkbenchError, match="wb_nope.x"):
        catalog.deploy(trained, backend="wb_nope.x")
    with pytest.raises(WorkbenchError, match="limit"):
        catalog.evaluate(trained, limit=0)
    with pytest.raises(WorkbenchError, match="unknown run kind"):
        catalog.start("dance", trained)


def test_cancel_ends_training_within_a_batch(trained):
    token = CancelToken()
    token.set()
    finished = catalog.train(trained, epochs=3, cancel=token).result()
    assert finished.status == "cancelled"


def test_bf16_training_runs_under_autocast_and_still_learns(tmp_path, plugin_host):
    shutil.copytree(examples_dir() / "digits_mlp", tmp_path / "mlp")
    session = Session(load_project(tmp_path / "mlp"), plugin_host.registry)
    session.project.compute.device = "cpu"
    session.project.compute.precision = "bf16"
    events = list(catalog.train(session, epochs=2, fresh=True))
    started = next(e for e in events if isinstance(e, RunStarted))
    finished = _only_one_finish(events)
    assert finished.status == "ok", finished.error
    assert started.config["precision"] == "bf16" and started.config["device"] == "cpu"
    assert finished.summary["test_accuracy"] > 0.5  # 10 classes: chance is 0.1


def test_an_unavailable_device_is_an_input_error_naming_the_setting(trained, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a GPU machine
    trained.project.compute.device = "cuda"
    finished = catalog.evaluate(trained, limit=10).result()
    assert finished.status == "failed" and finished.error_kind == "input"
    assert "compute.device" in finished.error


def test_compute_settings_round_trip_through_the_project_file(trained):
    trained.project.compute.precision = "bf16"
    trained.project.compute.threads = 1
    from workbench.core.persistence.project_files import save_project

    save_project(trained.project)
    again = load_project(trained.project.folder)
    assert (again.compute.precision, again.compute.threads, again.compute.device) == \
        ("bf16", 1, "auto")


def test_compression_says_it_runs_on_the_cpu_when_the_project_asks_for_a_gpu(trained,
                                                                             monkeypatch):
    import torch

    # a project saved for a GPU, compressed on a machine without one: it works, and says so
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    trained.project.compute.device = "cuda"
    events = list(catalog.compress(trained, method="wb_qp_snn.uniform", params={"bits": 4},
                                   limit=20))
    assert events[-1].status == "ok", events[-1].error
    notes = [e.message for e in events if isinstance(e, Log)]
    assert any("compression runs on the CPU" in n and "cuda" in n for n in notes)
    finished = catalog.check_fit(trained, backend="wb_sim.simulator").result()
    assert finished.status == "ok", finished.error


def test_a_cost_table_chosen_for_one_evaluation_leaves_the_project_alone(trained):
    before = trained.project.energy.table
    finished = catalog.evaluate(trained, limit=20, table="wb_core.int8_45nm").result()
    assert finished.status == "ok", finished.error
    assert finished.summary["energy"]["table"] == "wb_core.int8_45nm"
    assert trained.project.energy.table == before
