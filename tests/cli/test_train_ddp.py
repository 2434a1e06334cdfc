"""``snn-workbench train`` on several processes: under torchrun (gloo on the CPU) and through
``--nproc``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_input_error, run

from workbench.core.model.project import RUNS_DIR
from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project
from workbench.core.runs.events import Progress
from workbench.core.runs.session import Session


def _copy(folder: Path) -> Path:
    shutil.copytree(examples_dir() / "digits_mlp", folder,
                    ignore=shutil.ignore_patterns(RUNS_DIR))
    return folder


@pytest.mark.slow
def test_two_processes_train_digits_mlp_in_step_and_like_one(tmp_path, plugin_host):
    ddp, digests = _copy(tmp_path / "ddp"), tmp_path / "digests"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SNN_WORKBENCH_DATA": str(tmp_path / "data"),
           "SNN_WORKBENCH_DDP_DIGESTS": str(digests)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", "-m", "workbench", "train", str(ddp),
                           "--epochs", "2", "--fresh", "--json"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    # rank 1 prints nothing: one start, one summary
    assert [line["event"] for line in lines].count("run_started") == 1
    summaries = [line for line in lines if line["event"] == "summary"]
    assert len(summaries) == 1 and summaries[0]["status"] == "ok"
    # written once, by rank 0: one run record, one weights file
    records = list((ddp / RUNS_DIR).glob("*.jsonl"))
    assert len(records) == 1
    started = json.loads(records[0].read_text(encoding="utf-8").splitlines()[0])
    assert started["config"]["processes"] == 2
    assert len(list(ddp.glob("weights*.safetensors"))) == 1

    # the same training on one process, in this one
    one = Session(load_project(_copy(tmp_path / "one")), plugin_host.registry)
    run_one = one.train(epochs=2, fresh=True)
    steps = sum(isinstance(event, Progress) for event in run_one)
    accuracy = run_one.finished.summary["test_accuracy"]

    # both ranks held the same weights after every optimiser step, and they took the steps one
    # process takes (each rank computes its half of every batch)
    rank0, rank1 = ((digests / f"rank{r}.txt").read_text().splitlines() for r in (0, 1))
    assert len(rank0) == steps
    assert rank0 == rank1
    assert len({line.split()[1] for line in rank0}) == steps  # the weights moved every step
    assert accuracy > 0.3  # it learned, so agreeing within a point means something
    assert abs(summaries[0]["test_accuracy"] - accuracy) <= 0.01


def test_launch_gives_back_the_exit_status_of_the_rank_that_failed(tmp_path):
    # two ranks of a tiny module (rank_exit.py) through the launcher `--nproc` uses: rank 1
    # fails with status 3, and the launcher's process ends with it, not with torchrun's 1
    code = ("import sys; from workbench.core.runs.distributed import launch; "
            "sys.exit(launch(2, ['rank_exit']))")
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    env.update(PYTHONPATH=os.pathsep.join([str(Path(__file__).parent),
                                           env.get("PYTHONPATH", "")]),
               RANK_EXIT_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stderr[-3000:]
    # each rank got a share of the cores, not all of them
    threads = [int((tmp_path / f"rank{r}").read_text()) for r in (0, 1)]
    assert threads[0] == threads[1] and 1 <= 2 * threads[0] <= max(2, os.cpu_count() or 1)


def test_nproc_runs_this_command_on_the_ranks(monkeypatch, capsys):
    from workbench.core.runs import distributed

    launched = []
    monkeypatch.setattr(distributed, "launch",
                        lambda processes, argv: launched.append((processes, argv)) or 3)
    code, _, _, _ = run(["train", "digits_mlp", "--nproc", "4", "--epochs", "2", "--fresh",
                         "--json", "--device", "cpu"], capsys)
    assert code == 3  # the ranks' exit status
    (processes, argv), = launched
    assert processes == 4
    # the example's copy is made once, here, and every rank opens that folder
    folder = Path(os.environ["SNN_WORKBENCH_PROJECTS"]) / "digits_mlp"
    assert (folder / "project.json").is_file()
    assert argv[:3] == ["workbench", "train", str(folder)]
    assert argv[3:] == ["--epochs", "2", "--fresh", "--json", "--device", "cpu"]


@pytest.mark.parametrize(("options", "env", "needle"), [
    (["--nproc", "0"], {}, "must be 1 or more"),
    (["--nproc", "2"], {"RANK": "0", "WORLD_SIZE": "2"}, "already runs under torchrun"),
    (["--nproc", "2", "--device", "mps"], {}, "use --device cpu"),
])
def test_nproc_refuses_what_cannot_work(options, env, needle, tmp_path, monkeypatch, capsys):
    from workbench.core.runs import distributed

    monkeypatch.setattr(distributed, "launch", lambda *_: pytest.fail("launched"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, _, err = run(["train", str(_copy(tmp_path / "p")), *options], capsys)
    assert_input_error(code, err, f"--nproc {options[1]}", needle)
