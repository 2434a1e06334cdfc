"""Run by ``test_distributed.py`` under torchrun, once per rank: trains the project at
``argv[1]`` twice. Rank 0 alone asks each run to stop: the first after its third step, the
second after the last step of its first epoch (so the stop arrives while the test set is being
evaluated). Each rank writes how its runs ended to ``argv[2]/rank<N>.json``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from workbench.core.persistence.project_files import load_project
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.events import Progress, RunStarted
from workbench.core.runs.session import Session
from workbench.pluginhost.manager import PluginHost


def main(folder: str, out: str) -> None:
    rank = int(os.environ["RANK"])
    host = PluginHost(strict=True)
    host.load()
    session = Session(load_project(folder), host.registry)
    ends = []
    for stop_at in ("third step", "end of epoch 1"):
        token = CancelToken()
        steps, stop_step = 0, 3
        run = session.train(epochs=50, fresh=True, save_weights=True, cancel=token)
        for event in run:
            if isinstance(event, RunStarted) and stop_at == "end of epoch 1":
                stop_step = event.total // 50
            if isinstance(event, Progress):
                steps = event.done
                if rank == 0 and steps == stop_step:
                    token.set()
        ends.append({"stop_at": stop_at, "stop_step": stop_step, "status": run.finished.status,
                     "error": run.finished.error, "steps": steps,
                     "epochs": run.finished.summary.get("epochs"), "asked": token.requested})
    Path(out, f"rank{rank}.json").write_text(json.dumps(ends), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
