"""A stop asked on one rank of a run on several processes stops every rank at the same batch.

Two processes under torchrun (gloo on the CPU) run ``ddp_cancel_worker.py``; only rank 0's
token is set, as the app's Stop button or a cancelled job would set it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.testing.fixtures import make_tiny_project

WORKER = Path(__file__).with_name("ddp_cancel_worker.py")


@pytest.mark.slow
def test_a_stop_on_rank_0_stops_every_rank_at_the_same_batch(tmp_path):
    folder, out = tmp_path / "tiny", tmp_path / "out"
    make_tiny_project(folder)
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SNN_WORKBENCH_DATA": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", str(WORKER), str(folder), str(out)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    ends = {rank: json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)}
    for rank, runs in ends.items():
        assert [run["status"] for run in runs] == ["cancelled", "cancelled"], runs
        assert [run["asked"] for run in runs] == [rank == 0] * 2  # rank 1 was never asked
        # each run stopped right after the step rank 0 asked at: the same step on both ranks
        assert [run["steps"] for run in runs] == [run["stop_step"] for run in runs]
    first, second = ends[0]
    assert first["steps"] == 3 and first["epochs"] == 0
    # asked after the last step of epoch 1: the stop came during the test-set evaluation,
    # so the epoch is not counted as finished
    assert second["steps"] > 3 and second["epochs"] == 0
    assert ends[1][1]["steps"] == second["steps"]
    # rank 0 alone recorded the two runs; a cancelled run saves no weights
    records = sorted((folder / "runs").glob("train-*.jsonl"))
    assert len(records) == 2
    for record in records:
        last = json.loads(record.read_text(encoding="utf-8").splitlines()[-1])
        assert (last["event"], last["status"]) == ("run_finished", "cancelled")
    assert not list(folder.glob("weights*.safetensors"))
