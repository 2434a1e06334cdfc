"""GPU training and inference throughput: snn-workbench against SpikingJelly and snnTorch.

Two networks of ``snn_nets`` (the same builders as ``train_throughput.py``, random inputs of
the right shape): the VGG-style 32x32x3 SNN at T = 4, B = 128, and the digits-sized MLP
(64-256-256-10) at T = 8, B = 128. In one process, side by side, at each precision of
``--precisions`` (``fp32``, and ``bf16``: every framework's forward under the same
``torch.autocast``, the loss and Adam in fp32):

- ours: ``ours-eager`` / ``ours-fused`` (``compute.kernels`` eager / fused) and
  ``ours-compiled`` (``compute.compile``: the whole network through ``torch.compile``);
  the bf16 rows are the project's ``compute.precision = bf16`` (AMP);
- SpikingJelly 2.0, its LIF on the CUDA implementation it picks itself (``--sj-impl auto``:
  native CUDA, then Triton, then torch; force one with ``--sj-impl cuda|triton|torch``);
- snnTorch 1.0, its tutorials' loop over time steps.

Training samples/s time the whole step (forward, loss, backward, Adam); inference samples/s a
forward pass under ``torch.no_grad`` in eval mode. Each figure is the median of ``--runs``
timed runs (default 5) with the range, ``torch.cuda.synchronize`` after every call; warm-up
(which includes compiling) is timed separately. The ratio columns are our best mode over each
peer; the summary gives our best over the fastest peer and over SpikingJelly, per precision.

Needs CUDA: without it the script says so in one line and exits with status 2. Install the
peers as for ``train_throughput.py``::

    pip install --no-deps snntorch==1.0.0 spikingjelly==2.0.0 loguru==0.7.3
    python benchmarks/gpu_train.py [--nets vgg,mlp] [--precisions fp32,bf16] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
from snn_nets import NETS, builders, with_batch
from train_throughput import (
    FRAMEWORKS,
    format_table,
    parse_list,
    peer_version,
    ratio_to_peers,
    time_runs,
    warm_up,
)

NETS_HERE = ("vgg", "mlp")
BATCH = {"vgg": 128, "mlp": 128}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
SJ_IMPLS = ("auto", "cuda", "triton", "torch")


def kernel_agreement(device: torch.device) -> dict:
    """The benchmark's LIF (tau 2, hard reset to 0, detached reset, sigmoid surrogate) run by
    the fused kernel and by the eager loop on ``device``, on the same input around the
    threshold: whether the spikes are identical, and the largest difference of the input's
    gradient (the CPU tests hold both to the same bar)."""
    from wb_core.neurons import lif

    from workbench.core.build.compute import Compute

    neuron = lif(tau=2.0, v_reset=0.0)
    x = torch.rand(4, 128, 64, 16, 16, generator=torch.Generator().manual_seed(0)) * 2.0
    weights = torch.linspace(-1.0, 1.0, x.numel()).reshape(x.shape).to(device)
    out = {}
    for mode in ("eager", "fused"):
        Compute(device, "fp32", 0, mode).enter()
        given = x.to(device).requires_grad_(True)
        spikes = neuron(given)
        (spikes * weights).sum().backward()
        out[mode] = (spikes.detach(), given.grad)
    (eager_s, eager_g), (fused_s, fused_g) = out["eager"], out["fused"]
    return {"spikes": bool(torch.equal(eager_s, fused_s)),
            "grad_diff": float((eager_g - fused_g).abs().max())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", default=",".join(NETS_HERE),
                        help=f"comma-separated subset of {','.join(NETS_HERE)}")
    parser.add_argument("--precisions", default=",".join(PRECISIONS),
                        help=f"comma-separated subset of {','.join(PRECISIONS)}")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                        help=f"comma-separated subset of {','.join(FRAMEWORKS)}")
    parser.add_argument("--runs", type=int, default=5, help="timed runs; median (default 5)")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="wall-clock seconds per run (default 1)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up steps (default 5)")
    parser.add_argument("--sj-impl", default="auto", choices=SJ_IMPLS,
                        help="SpikingJelly's CUDA LIF implementation (default: its own choice)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    nets_wanted = parse_list(args.nets, NETS_HERE, "nets", parser)
    precisions = parse_list(args.precisions, list(PRECISIONS), "precisions", parser)
    frameworks = tuple(parse_list(args.frameworks, FRAMEWORKS, "frameworks", parser))
    if args.runs < 1:
        parser.error("--runs: at least 1 (5 or more for a figure worth quoting)")

    if not torch.cuda.is_available():
        print(f"gpu_train.py: CUDA is not available (torch {torch.__version__}); this benchmark "
              "needs an NVIDIA GPU, use train_throughput.py on the CPU", file=sys.stderr)
        return 2
    # read by SpikingJelly when it is first imported, i.e. by the first build below
    os.environ["SJ_LIF_CUDA_IMPLEMENTATION"] = args.sj_impl

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    device = torch.device("cuda")
    sync = torch.cuda.synchronize
    agreement = kernel_agreement(device)
    log(f"fused LIF kernel vs the eager loop on CUDA: spikes identical {agreement['spikes']}, "
        f"largest gradient difference {agreement['grad_diff']:.2e} (bar: 1e-6)")
    if not agreement["spikes"] or agreement["grad_diff"] > 1e-6:
        print("gpu_train.py: the fused kernel disagrees with the eager loop on this GPU; "
              "no throughput is worth reporting", file=sys.stderr)
        return 1
    train: dict[str, dict] = {}
    infer: dict[str, dict] = {}
    for name in nets_wanted:
        net = with_batch(NETS[name], BATCH[name])
        train[name], infer[name] = {}, {}
        for precision in precisions:
            torch.compiler.reset()  # see train_throughput.run: a fresh compile per network
            build = builders(PRECISIONS[precision])
            runners, info = warm_up(net, frameworks, build, device, args.warmup, log, sync)
            for fn, table in (("step", train), ("infer", infer)):
                rows = time_runs(net, runners, info, fn, args.seconds, args.runs, log, sync)
                table[name][precision] = {"rows": rows, "ratio": ratio_to_peers(rows),
                                          "over_spikingjelly": ratio_to_peers(
                                              {fw: r for fw, r in rows.items()
                                               if fw != "snntorch"})}
            del runners
            torch.cuda.empty_cache()

    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "agreement": agreement,
           "gpu": torch.cuda.get_device_name(0), "snntorch": peer_version("snntorch"),
           "spikingjelly": peer_version("spikingjelly"), "sj_impl": args.sj_impl}
    if args.json:
        print(json.dumps({"environment": env, "runs": args.runs, "seconds": args.seconds,
                          "train": train, "infer": infer}, indent=2, default=str))
        return 0
    print(f"{env['gpu']} | torch {env['torch']} (CUDA {env['cuda']}) | snntorch "
          f"{env['snntorch']} | spikingjelly {env['spikingjelly']} (LIF impl {args.sj_impl})")
    print("; ".join(f"{n}: T={NETS[n].steps}, B={BATCH[n]}" for n in nets_wanted) +
          f"; median of {args.runs} runs x {args.seconds:g} s, range = slowest-fastest run")
    for title, table in (("Training", train), ("Inference", infer)):
        print()
        print(f"{title} (samples/s)")
        print("\n".join(format_table(table, key="prec")))
        print(f"{title}, ours (best mode) / SpikingJelly, medians: " + ", ".join(
            f"{n} {p} " + (f"{b['over_spikingjelly']:.2f}x" if b["over_spikingjelly"] else "-")
            for n, by_p in table.items() for p, b in by_p.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
