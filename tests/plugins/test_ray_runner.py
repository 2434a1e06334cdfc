"""wb_ray against a real local Ray head on loopback (tests/ray_head.py): ``snn-workbench submit
--ray`` trains digits_mlp on the cluster and brings its weights and record back, a stopped or
failed job leaves the project as it was, and each bad input gets one clear message."""

from __future__ import annotations

import io
import json
import shutil
import socket
import sys
from pathlib import Path

import pytest
import ray_head

from workbench.cli import main
from workbench.core.model.errors import WorkbenchError
from workbench.core.model.project import RUNS_DIR
from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project
from workbench.core.runs import catalog
from workbench.core.runs.events import MetricSample, RunStarted
from workbench.core.runs.records import last_training
from workbench.core.runs.session import Session

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


# a head per module, stopped after its last test: an idle head costs ~8 % of a core for
# the rest of the session
@pytest.fixture(scope="module")
def ray_address():
    yield ray_head.address()
    ray_head.stop()


def digits_mlp(folder: Path) -> Path:
    shutil.copytree(examples_dir() / "digits_mlp", folder,
                    ignore=shutil.ignore_patterns(RUNS_DIR))
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def job_state(address: str, job_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return str(JobSubmissionClient(address).get_job_status(job_id).value)


class Watched(io.StringIO):
    """The CLI's output, noting the job's state on the cluster when each line arrives."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address, self.job, self.states = address, "", []

    def write(self, text: str) -> int:
        for raw in text.splitlines():
            item = json.loads(raw)
            if item["event"] == "run_started":
                self.job = item["config"]["job"]
            if self.job:
                self.states.append((item["event"], job_state(self.address, self.job)))
        return super().write(text)


def test_submit_trains_on_the_cluster_and_brings_weights_and_record_back(ray_address,
                                                                        tmp_path, plugin_host):
    folder = digits_mlp(tmp_path / "digits_mlp")
    assert load_project(folder).weights_path is None or not load_project(
        folder).weights_path.exists()
    out = Watched(ray_address)
    status = main(["submit", str(folder), "--ray", ray_address, "--epochs", "2", "--json"],
                  out=out)
    assert status == 0, out.getvalue()[-2000:]
    lines = [json.loads(raw) for raw in out.getvalue().splitlines()]
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["status"] == "ok"
    assert summary["epochs"] == 2
    # metric events arrived while the job was still running on the cluster
    metric_states = [state for event, state in out.states if event == "metric"]
    assert "RUNNING" in metric_states
    assert job_state(ray_address, out.job) == "SUCCEEDED"
    # the weights came back into the project and fit its network: trained, not initial
    project = load_project(folder)
    assert Path(summary["weights"]) == project.weights_path and project.weights_path.is_file()
    trained = Session(project, plugin_host.registry)
    model = trained.build()
    assert trained.weights_loaded
    fresh = Session(load_project(folder), plugin_host.registry).build(load_saved_weights=False)
    assert any(not (a == b).all() for a, b in zip(model.state_dict().values(),
                                                  fresh.state_dict().values(), strict=True))
    # the run's record landed, with the two epochs the job trained
    history = last_training(folder)
    assert history is not None and history.status == "ok" and history.epochs == 2
    assert history.run_id == lines[0]["run_id"]


def test_stopping_a_job_mid_run_leaves_the_project_untouched(ray_address, tmp_path,
                                                            plugin_host):
    folder = digits_mlp(tmp_path / "digits_mlp")
    before = snapshot(folder)
    session = Session(load_project(folder), plugin_host.registry)
    run = catalog.submit(session, runner="wb_ray.ray", params={"address": ray_address},
                         epochs=500)
    job = ""
    for event in run:
        if isinstance(event, RunStarted):
            job = event.config["job"]
        if isinstance(event, MetricSample):
            assert job_state(ray_address, job) == "RUNNING"
            run.cancel()
    assert run.finished.status == "cancelled"
    assert job_state(ray_address, job) == "STOPPED"
    assert snapshot(folder) == before


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_cluster_is_one_line_naming_the_address(tmp_path, capsys):
    ray_head.require_ray()
    folder = digits_mlp(tmp_path / "digits_mlp")
    before = snapshot(folder)
    address = f"http://127.0.0.1:{_free_port()}"
    assert main(["submit", str(folder), "--ray", address]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert address in err[0] and "is `ray start --head` running" in err[0]
    assert snapshot(folder) == before


def test_without_ray_here_the_runner_says_how_to_install_it(monkeypatch):
    from wb_ray.runner import RayRunner

    monkeypatch.setitem(sys.modules, "ray.job_submission", None)  # an import that fails
    with pytest.raises(WorkbenchError, match=r"pip install 'snn-workbench\[cluster\]'"):
        RayRunner("http://127.0.0.1:8265")


def test_an_address_that_is_not_a_dashboard_url_is_refused(tmp_path, capsys):
    folder = digits_mlp(tmp_path / "digits_mlp")
    assert main(["submit", str(folder), "--ray", "127.0.0.1:8265"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("snn-workbench: error: address '127.0.0.1:8265': expected the cluster's "
                   "dashboard address, http://HOST:8265 (`ray start --head` prints it)")]
    assert main(["submit", str(folder)]) == 2
    assert "give --ray http://HOST:8265" in capsys.readouterr().err


def test_a_job_that_fails_on_the_cluster_is_one_message_and_changes_nothing(
        ray_address, tmp_path, capsys):
    folder = digits_mlp(tmp_path / "digits_mlp")
    (folder / "weights.safetensors").write_bytes(b"\0" * 10)  # cut: unreadable on the cluster
    before = snapshot(folder)
    assert main(["submit", str(folder), "--ray", ray_address, "--epochs", "1"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "INFO" not in line]
    assert len(err) == 1, err
    assert "Ray job raysubmit_" in err[0] and "not a readable safetensors file" in err[0]
    assert snapshot(folder) == before


def test_a_cluster_without_the_project_plugins_says_which(ray_address, tmp_path, capsys,
                                                         plugin_module):
    # a plugin this process loads but the cluster does not have
    name = plugin_module("wb_here_only", """
        from workbench.pluginhost import EncoderSpec, hookimpl

        @hookimpl
        def wb_encoders():
            return [EncoderSpec(id="wb_here_only.direct", display_name="Direct, here only",
                                factory="wb_core.encoders:DirectEncoder")]
    """)
    folder = digits_mlp(tmp_path / "digits_mlp")
    text = (folder / "project.json").read_text()
    (folder / "project.json").write_text(text.replace('"wb_core.direct"',
                                                      '"wb_here_only.direct"'))
    before = snapshot(folder)
    assert main(["submit", str(folder), "--ray", ray_address, "--plugin", name]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "INFO" not in line]
    assert len(err) == 1, err
    assert "the cluster lacks the plugin(s) the project needs: wb_here_only" in err[0]
    assert "wb_here_only.direct (encoder)" in err[0]
    assert snapshot(folder) == before
    assert sys.modules.get(name) is not None  # it really was loaded here


def test_a_sweep_sends_each_trial_as_a_job_two_at_a_time(ray_address, tmp_path):
    """`sweep --ray`: each trial a job on the cluster, two out at once, each trial's weights
    back in its variant folder with its figures; the project itself unchanged."""
    folder = digits_mlp(tmp_path / "digits_mlp")
    before = snapshot(folder)
    out = io.StringIO()
    status = main(["sweep", str(folder), "--over", "lr=0.002,0.01", "--epochs", "1",
                   "--ray", ray_address, "--parallel", "2", "--limit", "100", "--json"],
                  out=out)
    assert status == 0, out.getvalue()[-2000:]
    lines = [json.loads(raw) for raw in out.getvalue().splitlines()]
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["status"] == "ok"
    assert summary["runner"] == "wb_ray.ray"
    sent = [line["message"] for line in lines if line["event"] == "log"
            and " sent: " in line["message"]]
    assert sent == ["trial 1 of 2 sent: lr=0.002", "trial 2 of 2 sent: lr=0.01"]
    # both were sent before either came back: the first "trial … ended" line follows them
    first_end = next(i for i, line in enumerate(lines) if line["event"] == "log"
                     and "test accuracy" in line["message"])
    assert max(i for i, line in enumerate(lines) if line["event"] == "log"
               and " sent: " in line["message"]) < first_end
    for row in summary["trials"]:
        assert row["status"] == "ok"
        trial = load_project(row["folder"])
        assert trial.weights_path.is_file()
        assert trial.extras["sweep"]["after"]["accuracy"] == row["accuracy"]
        assert trial.extras["sweep"]["runner"] == "wb_ray.ray"
    assert {k: v for k, v in snapshot(folder).items() if not k.startswith(("variants", "runs"))} \
        == {k: v for k, v in before.items() if not k.startswith(("variants", "runs"))}
