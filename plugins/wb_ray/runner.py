"""The Ray runner: jobs through Ray's Jobs API (``ray.job_submission.JobSubmissionClient``).

The job's working directory is the project folder (Ray zips and uploads it); its output is read
back by polling the job's log, whose new part each poll hands to the workbench.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.pluginhost import JobUpdate, WorkbenchError

INSTALL_HINT = "install the cluster extra: pip install 'snn-workbench[cluster]'"
#: Ray's loggers that report every package upload
_CHATTY = ("ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging")
#: Ray's job states -> the workbench's
_STATES = {"PENDING": "pending", "RUNNING": "running", "SUCCEEDED": "succeeded",
           "FAILED": "failed", "STOPPED": "stopped"}


def _client_class() -> Any:
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise WorkbenchError(f"Ray is not installed here ({exc}); {INSTALL_HINT}",
                             where="wb_ray") from None
    # Ray says each upload at INFO level on stderr; the run's own events say what happens
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
    return JobSubmissionClient


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class RayRunner:
    """A connection to the Ray cluster whose dashboard is at ``address``."""

    def __init__(self, address: str) -> None:
        self.address = address.strip().rstrip("/")
        if not self.address.startswith(("http://", "https://")):
            raise WorkbenchError("expected the cluster's dashboard address, http://HOST:8265 "
                                 "(`ray start --head` prints it)", where=f"address {address!r}")
        client_class = _client_class()
        try:
            self.client = client_class(self.address)
        except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, requests' own…
            raise WorkbenchError(f"cannot reach a Ray cluster there ({_reason(exc)}); is `ray "
                                 "start --head` running, with its dashboard on this address?",
                                 where=self.address) from None

    def submit(self, folder: Path, command: list[str], *, excludes: list[str],
               env: Mapping[str, str]) -> RayJob:
        runtime_env = {"working_dir": str(folder), "excludes": list(excludes),
                       "env_vars": dict(env)}
        try:
            job_id = self.client.submit_job(entrypoint=shlex.join(command),
                                            runtime_env=runtime_env,
                                            metadata={"submitted_by": "snn-workbench"})
        except Exception as exc:  # noqa: BLE001 - an upload too large, a lost connection…
            raise WorkbenchError(f"the cluster did not take the job: {_reason(exc)}",
                                 where=self.address) from None
        return RayJob(self.client, job_id, self.address)


class RayJob:
    """One submitted job; :meth:`poll` hands out its log a piece at a time."""

    def __init__(self, client: Any, job_id: str, address: str) -> None:
        self.id = job_id
        self.where = f"Ray job {job_id} at {address}"
        self._client = client
        self._seen = 0

    def poll(self) -> JobUpdate:
        try:
            # the state first: a log read after it holds every line up to that state
            status = self._client.get_job_status(self.id)
            state = _STATES.get(str(getattr(status, "value", status)), "running")
            log = self._client.get_job_logs(self.id)
            reason = ""
            if state in ("failed", "stopped"):
                reason = self._client.get_job_info(self.id).message or ""
        except Exception as exc:  # noqa: BLE001 - whatever the connection raised
            raise WorkbenchError(f"lost the connection to the cluster ({_reason(exc)}); the job "
                                 f"may still be running there (`ray job stop {self.id}` stops "
                                 "it)", where=self.where) from None
        new, self._seen = log[self._seen:], max(self._seen, len(log))
        return JobUpdate(new, state, reason)

    def stop(self) -> None:
        try:
            self._client.stop_job(self.id)
        except Exception as exc:  # noqa: BLE001 - see poll
            raise WorkbenchError(f"could not stop the job ({_reason(exc)}); `ray job stop "
                                 f"{self.id}` stops it", where=self.where) from None
