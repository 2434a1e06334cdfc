"""A local Ray head on loopback only for the runner's CLI and GUI tests: each module starts one and
stops it after its last test (both modules are in the xdist group "ray", so one worker runs them
one after the other).

``ray start --head --block`` runs in its own process group: stopping it is a SIGTERM to the
head (it shuts its processes down), then a SIGKILL to whatever of its group is left.
Nothing else on the machine is touched (no ``ray stop``, which stops every Ray on it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

#: seconds the head may take to serve its dashboard, and to stop politely (it has nothing to
#: save: its folder is deleted after it)
START_TIMEOUT_S, STOP_WAIT_S = 90.0, 5.0
_PORT_OPTIONS = ("--port", "--ray-client-server-port", "--dashboard-agent-listen-port",
                 "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
                 "--metrics-export-port", "--node-manager-port", "--object-manager-port")
_head: dict[str, object] = {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def require_ray() -> None:
    pytest.importorskip("ray.job_submission", reason="Ray is not installed (the cluster "
                        "extra: pip install 'snn-workbench[cluster]')")


def address() -> str:
    """The head's dashboard address, starting the head on first use."""
    require_ray()
    if "address" not in _head:
        _start()
    return str(_head["address"])


def _start() -> None:
    from ray.job_submission import JobSubmissionClient

    bin_dir = Path(sys.executable).parent
    temp = tempfile.mkdtemp(prefix="wbray-", dir="/tmp")  # short: Ray's socket paths
    dashboard = _free_port()
    ports = [x for option in _PORT_OPTIONS for x in (option, str(_free_port()))]
    command = [str(bin_dir / "ray"), "start", "--head", "--block", "--num-cpus", "1",
               "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1",
               "--dashboard-port", str(dashboard), "--include-dashboard", "true",
               "--disable-usage-stats", "--temp-dir", temp,
               "--object-store-memory", str(100 << 20), *ports]
    # the jobs' `python` is this one, with snn-workbench and its plugins; Ray's "no cluster"
    # switch keeps every address on loopback (else it swaps 127.0.0.1 for the machine's IP)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    log = open(Path(temp) / "head.log", "w")  # noqa: SIM115 - open while the head runs
    head = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    _head.update(process=head, temp=temp, log=log)
    url = f"http://127.0.0.1:{dashboard}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            JobSubmissionClient(url)
            break
        except Exception:  # noqa: BLE001 - not up yet
            if head.poll() is not None or time.monotonic() > deadline:
                text = (Path(temp) / "head.log").read_text(errors="replace")[-3000:]
                stop()
                pytest.fail(f"the local Ray head did not start:\n{text}")
            time.sleep(0.5)
    _head["address"] = url


def stop() -> None:
    """Shut the head down (idempotent)."""
    head = _head.pop("process", None)
    if head is None:
        return
    try:
        head.send_signal(signal.SIGTERM)  # the head stops the processes it started…
        head.wait(STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(head.pid, signal.SIGKILL)  # …or what is left of its group goes now
    except ProcessLookupError:
        pass
    head.wait()
    _head.pop("log").close()
    shutil.rmtree(str(_head.pop("temp")), ignore_errors=True)
    _head.pop("address", None)
