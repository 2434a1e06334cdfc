"""Device, precision, threads and kernels: the project's compute settings made concrete.

Every run goes through :func:`resolve` once, on the thread that runs it, so the CLI, the GUI and
a cluster job compute the same way from the same project file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.project import ComputeSettings

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: torch's own thread count when the process started, before a GUI thread asked for fewer
_PROCESS_THREADS: int | None = None
#: the neurons' time-loop kernels of the run in progress (``eager`` outside any run)
_KERNEL_MODE = "eager"


def process_threads() -> int:
    """The thread count runs get by default: torch's, as it was first seen in this process."""
    global _PROCESS_THREADS
    if _PROCESS_THREADS is None:
        _PROCESS_THREADS = torch.get_num_threads()
    return _PROCESS_THREADS


def auto_threads() -> int:
    """The thread count of ``threads = 0``: the cores minus the machine's current load (the
    one-minute average, rounded), at least one, at most torch's default.

    Why: on a loaded machine a thread waits for a core at every OpenMP barrier, and more
    threads than free cores can train several times slower than one. Where the load is
    unknown (Windows) the cores are all used.
    """
    cores = process_threads()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, cores - round(load)))


def kernel_mode() -> str:
    """How spiking neurons run their time loop now: ``auto``, ``eager`` or ``fused`` (the
    project's ``compute.kernels`` once a run has started on this process; ``eager`` before)."""
    return _KERNEL_MODE


def keep_calling_thread_light() -> int:
    """Leave the calling thread (the GUI's) one torch thread; runs keep the full count.

    OpenMP keeps one thread team per calling thread. Once the GUI thread had run any torch op
    with its default team, training on a worker thread ran at ~40 % of its headless speed on 2
    cores (benchmarks/gui_responsiveness.py). The setting is per thread, so each run sets its
    own count again in :func:`Compute.enter`.
    """
    threads = process_threads()
    torch.set_num_threads(1)
    return threads


def _device_available(name: str) -> bool:
    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    return name == "cpu"


@dataclass(frozen=True)
class Compute:
    """A resolved :class:`ComputeSettings`: a torch device, an autocast dtype, a thread count
    (0: :func:`auto_threads`), the neurons' kernels and whether training compiles the network."""

    device: torch.device
    precision: str = "fp32"
    threads: int = 0
    kernels: str = "auto"
    compile: bool = False

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return _DTYPES.get(self.precision)

    def enter(self) -> None:
        """Apply the thread count on the calling thread (the run's own) and the kernels."""
        global _KERNEL_MODE
        torch.set_num_threads(self.threads or auto_threads())
        _KERNEL_MODE = self.kernels

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Mixed precision around forward passes (a no-op at fp32)."""
        dtype = self.amp_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor if tensor.device == self.device else tensor.to(self.device)

    def describe(self) -> dict[str, object]:
        return {"device": str(self.device), "precision": self.precision,
                "threads": self.threads or torch.get_num_threads(), "kernels": self.kernels,
                "compile": self.compile}


CPU = Compute(torch.device("cpu"))


def resolve(settings: ComputeSettings | None, where: str = "compute") -> Compute:
    """Turn the project's settings into a :class:`Compute`; an unavailable device is an input
    error naming the setting, never a crash deep inside a run."""
    settings = settings or ComputeSettings()
    name = settings.device
    if name == "auto":
        name = next((d for d in ("cuda", "mps") if _device_available(d)), "cpu")
    elif not _device_available(name):
        raise WorkbenchError(f"the device {name!r} is not available on this machine "
                             "(use 'auto' or 'cpu')", where=f"{where}.device")
    if settings.precision == "fp16" and name == "cpu":
        # CPU autocast supports fp16 since torch 2.x only for some ops; bf16 is the CPU's
        # half-precision format, so say so rather than run slowly or fail deep in a kernel.
        raise WorkbenchError("fp16 needs a GPU; use bf16 on the CPU",
                             where=f"{where}.precision")
    return Compute(torch.device(name), settings.precision, settings.threads or auto_threads(),
                   settings.kernels, settings.compile)


def on_the_cpu(settings: ComputeSettings | None) -> tuple[Compute, str | None]:
    """For runs that compute on the CPU whatever the project names (compression, deployment):
    the project's thread count on the CPU, and the other device the project asked for (None when
    that is the CPU). Never an error: a project saved for a GPU still compresses on a laptop."""
    settings = settings or ComputeSettings()
    wanted = settings.device
    if wanted == "auto":
        wanted = next((d for d in ("cuda", "mps") if _device_available(d)), "cpu")
    return Compute(torch.device("cpu"), "fp32", settings.threads, settings.kernels), (
        None if wanted == "cpu" else wanted)


@contextlib.contextmanager
def on_device(module: torch.nn.Module, compute: Compute) -> Iterator[torch.nn.Module]:
    """``module`` moved to the run's device for the duration (back to the CPU afterwards, so
    weights are saved and probed from the CPU as everywhere else)."""
    if compute.device.type == "cpu":
        yield module
        return
    module.to(compute.device)
    try:
        yield module
    finally:
        module.to("cpu")
