"""Training on several processes: torchrun's environment, the process group, and what the
training loop asks of its peers.

``python -m torch.distributed.run --nproc-per-node N -m workbench train PROJECT`` (which
``snn-workbench train PROJECT --nproc N`` runs) starts N copies of the command, one rank each.
Every rank builds the network, takes rank 0's weights, computes its part of every training batch
and averages the gradients with the others before each optimiser step, so every rank takes the
same step. The project's ``batch_size`` stays the batch of the whole run: N processes train the
network one process would, only sooner. Only rank 0 records the run and saves the weights.

The gradients are averaged in an optimiser step pre-hook rather than by wrapping the model in
``DistributedDataParallel``: learning rules own their model and optimiser step, find layers by
their module names (which DDP's wrapper prefixes with ``module.``), swap neuron modules for a
step (MPD-ED), and may leave a layer without gradient for a batch (an event-driven rule on a
silent layer), which DDP takes for a hang unless it searches the graph for unused parameters
after every backward pass. The hook sees none of that: any trainer that steps a torch optimiser
trains on several processes unchanged.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from workbench.core.model.errors import WorkbenchError

#: what torchrun sets for every process it starts
RANK_ENV, WORLD_ENV, LOCAL_RANK_ENV = "RANK", "WORLD_SIZE", "LOCAL_RANK"
#: a debugging aid: a folder where every rank appends ``step digest`` lines (a hash of its
#: parameters after each optimiser step) to ``rank<N>.txt``; the files of a healthy run are equal
DIGESTS_ENV = "SNN_WORKBENCH_DDP_DIGESTS"


def launched() -> bool:
    """This process is one rank of a torchrun job."""
    return RANK_ENV in os.environ and WORLD_ENV in os.environ


def is_main() -> bool:
    """This process records and saves: the only one, or rank 0 of a torchrun job."""
    return not launched() or int(os.environ[RANK_ENV]) == 0


class PeerStopped(WorkbenchError):
    """Another rank left the job (its own error is printed above), so this one stops too."""


class Single:
    """One process: what the training loop asks of its peers, when it has none."""

    rank, size = 0, 1

    def describe(self) -> dict[str, Any]:
        return {}

    def steps(self, split: Any, batch_size: int) -> int:
        """Optimiser steps per epoch."""
        return split.n_batches(batch_size)

    def shard(self, batches: Iterable[Any], *, skip_small: bool = True) -> Iterable[Any]:
        """This rank's part of each ``(x, y)`` batch."""
        return batches

    def stop(self, requested: bool) -> bool:
        """Whether any rank's run was asked to stop (checked by all, once per batch)."""
        return requested

    def averaging(self, model: torch.nn.Module) -> contextlib.AbstractContextManager[None]:
        """Within the block, every optimiser step uses the gradients averaged over the ranks."""
        return contextlib.nullcontext()

    def share_buffers(self, model: torch.nn.Module) -> None:
        """Give every rank rank 0's buffers (batch-norm statistics) before an evaluation."""

    def sum(self, *values: float) -> list[float]:
        return list(values)

    def sum_dict(self, values: dict[str, float]) -> dict[str, float]:
        """Sums over the ranks, key by key (a key some rank lacks counts 0 there)."""
        return values


SINGLE = Single()


class World(Single):
    """Rank ``rank`` of ``size`` processes in torch's default process group."""

    def __init__(self, rank: int, size: int, device: torch.device) -> None:
        self.rank, self.size, self.device = rank, size, device
        #: this rank's fraction of the current training batch (its gradient's weight)
        self._share = 1.0 / size
        self._step = 0

    def describe(self) -> dict[str, Any]:
        return {"processes": self.size}

    def steps(self, split: Any, batch_size: int) -> int:
        if batch_size < self.size:
            raise WorkbenchError(f"is {batch_size}, but each batch is shared by {self.size} "
                                 f"processes; make it at least {self.size}",
                                 where="training.batch_size")
        small = 0 < len(split) % batch_size < self.size  # the last batch, left out by shard
        return split.n_batches(batch_size) - int(small)

    def shard(self, batches: Iterable[Any], *, skip_small: bool = True) -> Iterator[Any]:
        # each rank takes a contiguous slice of every batch (sizes differ by one at most); a
        # training batch smaller than the ranks is left out, so every rank has samples
        for x, y in batches:
            n = len(y)
            if skip_small and n < self.size:
                continue
            low, high = self.rank * n // self.size, (self.rank + 1) * n // self.size
            self._share = (high - low) / n
            yield x[low:high], y[low:high]

    def stop(self, requested: bool) -> bool:
        return self.sum(float(requested))[0] > 0

    @contextlib.contextmanager
    def averaging(self, model: torch.nn.Module) -> Iterator[None]:
        from torch.optim.optimizer import (
            register_optimizer_step_post_hook,
            register_optimizer_step_pre_hook,
        )

        self._broadcast([*model.parameters(), *model.buffers()])  # the trainer may have drawn
        if self.rank:  # rank 0 keeps one process's random stream; the others draw their own
            torch.manual_seed(torch.initial_seed() + self.rank)
        hooks = [register_optimizer_step_pre_hook(lambda opt, *_: self._average(opt))]
        folder = os.environ.get(DIGESTS_ENV)
        if folder:
            hooks.append(register_optimizer_step_post_hook(
                lambda *_: self._write_digest(model, Path(folder))))
        try:
            yield
        finally:
            for hook in hooks:
                hook.remove()

    def share_buffers(self, model: torch.nn.Module) -> None:
        self._broadcast(list(model.buffers()))

    def sum(self, *values: float) -> list[float]:
        totals = torch.tensor(values, dtype=torch.float64, device=self.device)
        self._reduce(totals)
        return totals.tolist()

    def sum_dict(self, values: dict[str, float]) -> dict[str, float]:
        keys = self._union(sorted(values))
        return dict(zip(keys, self.sum(*(values.get(key, 0.0) for key in keys)), strict=True))

    # -- collectives ---------------------------------------------------------------------------
    def _call(self, op: Any, *args: Any) -> None:
        """A collective; a rank that left mid-way ends this one's run with one clear line."""
        import torch.distributed as dist

        try:
            getattr(dist, op)(*args)
        except RuntimeError as exc:  # gloo: "[file:line] Connection closed by peer. …"
            text = str(exc).strip().splitlines()
            cause = (re.sub(r"^\[[^]]*\]\s*", "", text[0]).split(". ")[0] if text
                     else type(exc).__name__)
            raise PeerStopped(f"another training process stopped (its error is printed above), "
                              f"so this one stops too ({cause})",
                              where=f"rank {self.rank}") from exc

    def _reduce(self, tensor: torch.Tensor) -> None:
        self._call("all_reduce", tensor)

    def _broadcast(self, tensors: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for tensor in tensors:
                self._call("broadcast", tensor.detach(), 0)

    def _union(self, keys: list[str]) -> list[str]:
        """Every rank's ``keys``, merged (JSON through byte tensors)."""
        data = torch.tensor(list(json.dumps(keys).encode()), dtype=torch.uint8)
        sizes = torch.zeros(self.size, dtype=torch.int64, device=self.device)
        sizes[self.rank] = len(data)
        self._reduce(sizes)
        padded = torch.zeros(self.size, int(sizes.max()), dtype=torch.uint8, device=self.device)
        padded[self.rank, :len(data)] = data.to(self.device)
        self._reduce(padded)
        merged: set[str] = set()
        for row, size in zip(padded.cpu().tolist(), sizes.tolist(), strict=True):
            merged.update(json.loads(bytes(row[:size]).decode()))
        return sorted(merged)

    def _average(self, optimizer: torch.optim.Optimizer) -> None:
        """Replace each parameter's gradient by the batch's: the ranks' gradients weighted by
        their share of the samples (the losses are means over a batch). A parameter no rank
        gave a gradient keeps none, as on one process."""
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if not params:
            return
        device = params[0].device
        has = torch.tensor([float(p.grad is not None) for p in params], device=device)
        self._reduce(has)
        by_dtype: dict[torch.dtype, list[int]] = {}
        for i, (p, ranks) in enumerate(zip(params, has.tolist(), strict=True)):
            if ranks > 0:
                by_dtype.setdefault(p.dtype, []).append(i)
        for indices in by_dtype.values():
            flat = torch.cat([(params[i].grad if params[i].grad is not None
                               else torch.zeros_like(params[i])).reshape(-1)
                              for i in indices]) * self._share
            self._reduce(flat)
            for i, chunk in zip(indices, flat.split([params[i].numel() for i in indices]),
                                strict=True):
                params[i].grad = chunk.view_as(params[i]).clone()

    def _write_digest(self, model: torch.nn.Module, folder: Path) -> None:
        self._step += 1
        digest = hashlib.sha256()
        for param in model.parameters():
            digest.update(param.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"rank{self.rank}.txt", "a", encoding="utf-8") as handle:
            handle.write(f"{self._step} {digest.hexdigest()[:16]}\n")


_WORLD: list[World] = []


def world(compute: Any) -> Single:
    """The training loop's peers for a run on ``compute``: :data:`SINGLE` outside torchrun;
    under torchrun, this rank of the default process group, joined on first use (gloo on the
    CPU, NCCL on CUDA GPUs, one GPU per rank)."""
    if not launched():
        return SINGLE
    if not _WORLD:
        _WORLD.append(_join(compute.device))
    return _WORLD[0]


def _join(device: torch.device) -> World:
    import torch.distributed as dist

    rank, size = int(os.environ[RANK_ENV]), int(os.environ[WORLD_ENV])
    if device.type == "cuda":
        local = int(os.environ.get(LOCAL_RANK_ENV, "0"))
        if local >= torch.cuda.device_count():
            raise WorkbenchError(f"the processes on this machine need one GPU each, and it has "
                                 f"{torch.cuda.device_count()}; start fewer processes",
                                 where="compute.device")
        torch.cuda.set_device(local)
        backend, device = "nccl", torch.device("cuda", local)
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise WorkbenchError(f"training on several processes runs on the CPU or CUDA GPUs, not "
                             f"{device.type!r}; use --device cpu", where="compute.device")
    if not dist.is_initialized():
        dist.init_process_group(backend)
        atexit.register(dist.destroy_process_group)
    return World(rank, size, device)


def cpu_threads(processes: int) -> int:
    """Torch threads per process so that ``processes`` of them share the cores without
    oversubscribing them."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // processes)


def launch(processes: int, module_args: list[str]) -> int:
    """Run ``python -m MODULE ARGS…`` (``module_args``) as ``processes`` ranks on this machine
    through torchrun; the exit status of the first rank that failed, or 0. Ctrl-C (which every
    rank gets too) raises KeyboardInterrupt once they have stopped."""
    import logging
    import signal

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    os.environ.setdefault("OMP_NUM_THREADS", str(cpu_threads(processes)))
    # torchrun's warnings (the SIGTERM sent to the other ranks) say nothing the ranks' own
    # errors do not; its failure lines stay (a rank killed by a signal prints nothing itself)
    for name in ("agent.server.api", "multiprocessing.api"):
        logging.getLogger(f"torch.distributed.elastic.{name}").setLevel(logging.ERROR)
    try:
        run(parse_args(["--standalone", f"--nproc-per-node={processes}", "-m", *module_args]))
    except ChildFailedError as exc:
        code = exc.get_first_failure()[1].exitcode
        return code if code > 0 else 128 - code  # a negative code: killed by that signal
    except SignalException as exc:
        if exc.sigval == signal.SIGINT:
            raise KeyboardInterrupt from None
        return 128 + int(exc.sigval)
    return 0
