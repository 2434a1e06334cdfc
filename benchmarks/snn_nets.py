"""The benchmark networks, built the same way in snn-workbench, snnTorch and SpikingJelly.

Shared by ``train_throughput.py`` (CPU) and ``gpu_train.py`` (CUDA). Every network is a chain
of a few layer kinds, written once in :data:`NETS` and translated per framework:

- ``("fc", n)``:   Linear(n) -> LIF
- ``("conv", c)``: Conv2d(c, 3x3, padding 1, no bias) -> BatchNorm2d -> LIF
- ``("pool",)``:   MaxPool2d(2)
- ``("flat",)``:   Flatten
- ``("out", n)``:  Linear(n), the logits

Neuron: LIF, tau = 2 (decay 0.5), threshold 1, hard reset to 0, detached reset, sigmoid
surrogate with alpha 4, in each framework's own neuron (see train_throughput.py for how they
differ). Inputs are random (uniform in [0, 1], random labels, seed 0) of each network's shape:
throughput does not depend on what the pixels show.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

LR = 1e-3
TAU, DECAY, V_TH, ALPHA = 2.0, 0.5, 1.0, 4.0
N_CLASSES = 10
OUR_MODES = ("eager", "fused", "compiled")  # compute.kernels eager/fused; compute.compile


@dataclass(frozen=True)
class Net:
    name: str
    input_shape: tuple[int, ...]
    steps: int  # T
    batch: int  # B
    layers: tuple[tuple, ...]
    about: str = ""


NETS: dict[str, Net] = {n.name: n for n in (
    Net("mlp", (64,), 8, 128, (("fc", 256), ("fc", 256), ("out", N_CLASSES)),
        "digits-sized MLP 64-256-256-10"),
    Net("conv", (1, 8, 8), 8, 128,
        (("conv", 32), ("pool",), ("conv", 64), ("pool",), ("flat",), ("out", N_CLASSES)),
        "8x8x1 conv 32-pool-64-pool-10"),
    Net("conv28", (1, 28, 28), 8, 64,
        (("conv", 32), ("pool",), ("conv", 64), ("pool",), ("flat",), ("out", N_CLASSES)),
        "28x28x1 conv 32-pool-64-pool-10"),
    Net("vgg", (3, 32, 32), 4, 32,
        (("conv", 64), ("conv", 64), ("pool",), ("conv", 128), ("conv", 128), ("pool",),
         ("conv", 256), ("pool",), ("flat",), ("out", N_CLASSES)),
        "VGG-style 32x32x3 64-64-pool-128-128-pool-256-pool-10"),
)}


def with_batch(net: Net, batch: int) -> Net:
    return Net(net.name, net.input_shape, net.steps, batch, net.layers, net.about)


def flat_features(net: Net) -> int:
    """Features reaching the flatten layer (3x3 convs keep the size, each pool halves it)."""
    shape = list(net.input_shape)
    for layer in net.layers:
        if layer[0] == "conv":
            shape[0] = layer[1]
        elif layer[0] == "pool":
            shape[1:] = [s // 2 for s in shape[1:]]
        elif layer[0] == "flat":
            break
    return math.prod(shape)


@dataclass
class Runner:
    """One framework's model for one network. ``step()`` is one training step, ``infer()`` one
    forward pass without gradients, ``enter()`` puts the process in this runner's mode (kernels,
    threads) before it is timed, as the other runners may have changed it."""

    step: Callable[[], float]
    infer: Callable[..., object]  # infer(train=False); train=True keeps BatchNorm on batch stats
    neuron_modules: list[nn.Module]  # the first one is probed for the spike rate
    rate_of: Callable[[object], torch.Tensor]  # module output -> spike tensor
    enter: Callable[[], None] = field(default=lambda: None)

    def spike_rate(self) -> float:
        seen: list[torch.Tensor] = []
        hook = self.neuron_modules[0].register_forward_hook(
            lambda _m, _i, out: seen.append(self.rate_of(out).detach()))
        try:
            self.enter()
            with torch.no_grad():
                self.infer(train=True)  # batch statistics: eval mode's initial ones silence it
        finally:
            hook.remove()
        return float(torch.stack([s.float().mean() for s in seen]).mean())


def make_data(net: Net, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(net.batch, *net.input_shape, generator=g)
    y = torch.randint(0, N_CLASSES, (net.batch,), generator=g)
    return x.to(device), y.to(device)


def _autocast(device: torch.device, amp: torch.dtype | None):
    return torch.autocast(device.type, dtype=amp, enabled=amp is not None)


def _plain_step(model: nn.Module, forward: Callable[[], torch.Tensor], y: torch.Tensor,
                device: torch.device, amp: torch.dtype | None,
                after: Callable[[], None] = lambda: None) -> Callable[[], float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)

    def step() -> float:
        model.train()
        with _autocast(device, amp):
            loss = F.cross_entropy(forward().float().mean(0), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        after()
        return loss.item()
    return step


def _plain_infer(model: nn.Module, forward: Callable[[], object], device: torch.device,
                 amp: torch.dtype | None,
                 after: Callable[[], None] = lambda: None) -> Callable[[], object]:
    def infer(train: bool = False) -> object:
        model.train(train)
        with torch.no_grad(), _autocast(device, amp):
            out = forward()
        after()
        return out
    return infer


# --------------------------------------------------------------------------- snn-workbench


def build_ours(net: Net, x: torch.Tensor, y: torch.Tensor, mode: str = "eager",
               amp: torch.dtype | None = None) -> Runner:
    """Ours as a project run trains: a graph of ``wb_core`` specs compiled by ``compile_graph``,
    ``BPTTTrainer.train_step`` under the run's :class:`Compute` (``compute.kernels`` eager or
    fused; ``compiled`` is ``compute.compile``: the whole network through ``torch.compile``,
    the neurons then tracing their eager loop, as the training run does)."""
    from wb_core.encoders import DirectEncoder
    from wb_core.learning import BPTTTrainer
    from wb_core.neurons import SpikingNeuron

    from workbench.core.build.compile import compile_graph
    from workbench.core.build.compute import Compute
    from workbench.core.model.graph import Graph, Node
    from workbench.pluginhost.manager import load_plugins

    if mode not in OUR_MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(OUR_MODES)}")
    lif = {"id": "wb_core.lif", "params": {"tau": TAU, "v_th": V_TH, "v_reset": 0.0,
                                           "reset": "hard", "detach_reset": True,
                                           "surrogate": "sigmoid", "surrogate_alpha": ALPHA}}
    nodes = []
    for i, layer in enumerate(net.layers):
        kind, name = layer[0], f"{layer[0]}{i}"
        if kind == "fc":
            nodes.append(Node(name, "wb_core.spiking_linear",
                              {"out_features": layer[1], "batch_norm": False, "neuron": lif}))
        elif kind == "conv":
            nodes.append(Node(name, "wb_core.spiking_conv",
                              {"out_channels": layer[1], "kernel_size": 3, "padding": 1,
                               "batch_norm": True, "neuron": lif}))
        elif kind == "pool":
            nodes.append(Node(name, "wb_core.max_pool", {"kernel_size": 2}))
        elif kind == "flat":
            nodes.append(Node(name, "wb_core.flatten"))
        else:
            nodes.append(Node(name, "wb_core.linear", {"out_features": layer[1]}))
    registry = load_plugins(strict=True).registry
    torch.manual_seed(0)
    model = compile_graph(Graph.chain(nodes), registry, net.input_shape).to(x.device)
    trainer = BPTTTrainer(model, epochs=1, steps_per_epoch=1, lr=LR, optimizer="adam",
                          schedule="constant")
    encoder = DirectEncoder()
    precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp]
    kernels = "eager" if mode == "compiled" else mode
    if mode == "compiled":
        model.compile()  # what compute.compile does for a training run

    def enter() -> None:
        Compute(x.device, precision, torch.get_num_threads(), kernels).enter()

    compute = Compute(x.device, precision, 0, kernels)

    def step() -> float:
        with compute.autocast():  # as the training loop wraps train_step
            return trainer.train_step(encoder.encode(x, net.steps), y)["loss"]

    def infer(train: bool = False) -> object:
        model.train(train)
        with torch.no_grad(), compute.autocast():
            return model(encoder.encode(x, net.steps))

    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    return Runner(step, infer, neurons, lambda out: out, enter)


# --------------------------------------------------------------------------- snnTorch


def build_snntorch(net: Net, x: torch.Tensor, y: torch.Tensor,
                   amp: torch.dtype | None = None) -> Runner:
    """snnTorch the way its tutorials use it: a Python loop over the T steps that calls every
    layer on ``[B, ...]`` at each step, the membranes carried by hand."""
    import snntorch as snn
    from snntorch import surrogate

    def leaky() -> nn.Module:
        return snn.Leaky(beta=DECAY, threshold=V_TH, spike_grad=surrogate.sigmoid(slope=ALPHA),
                         reset_mechanism="zero")

    class StepLoop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            channels, features = net.input_shape[0], net.input_shape[0]
            for layer in net.layers:
                if layer[0] == "fc":
                    layers += [nn.Linear(features, layer[1]), leaky()]
                    features = layer[1]
                elif layer[0] == "conv":
                    layers += [nn.Conv2d(channels, layer[1], 3, padding=1, bias=False),
                               nn.BatchNorm2d(layer[1]), leaky()]
                    channels = layer[1]
                elif layer[0] == "pool":
                    layers.append(nn.MaxPool2d(2))
                elif layer[0] == "flat":
                    layers.append(nn.Flatten())
                    features = flat_features(net)
                else:
                    layers.append(nn.Linear(features, layer[1]))
            self.layers = nn.ModuleList(layers)
            self.leaky = [isinstance(m, snn.Leaky) for m in layers]

        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            mems = [m.reset_mem() if lif else None
                    for m, lif in zip(self.layers, self.leaky, strict=True)]
            out = []
            for _ in range(net.steps):  # direct encoding: the same input at every step
                h = inp
                for i, m in enumerate(self.layers):
                    if self.leaky[i]:
                        h, mems[i] = m(h, mems[i])
                    else:
                        h = m(h)
                out.append(h)
            return torch.stack(out)

    torch.manual_seed(0)
    model = StepLoop().to(x.device)
    first_lif = next(m for m, lif in zip(model.layers, model.leaky, strict=True) if lif)
    return Runner(_plain_step(model, lambda: model(x), y, x.device, amp),
                  _plain_infer(model, lambda: model(x), x.device, amp),
                  [first_lif], lambda out: out[0])


# --------------------------------------------------------------------------- SpikingJelly


def build_spikingjelly(net: Net, x: torch.Tensor, y: torch.Tensor,
                       amp: torch.dtype | None = None) -> Runner:
    """SpikingJelly with every layer in multi-step mode (stateless layers on ``[T*B, ...]``, the
    LIF through its fused multi-step op) and ``functional.reset_net`` after every pass."""
    # SpikingJelly's op registration makes torch warn that Triton is missing (irrelevant on CPU)
    logging.getLogger("torch._library.triton").setLevel(logging.ERROR)
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def lif() -> nn.Module:
        return neuron.LIFNode(tau=TAU, v_threshold=V_TH, v_reset=0.0, detach_reset=True,
                              surrogate_function=surrogate.Sigmoid(alpha=ALPHA))

    torch.manual_seed(0)
    layers: list[nn.Module] = []
    channels, features = net.input_shape[0], net.input_shape[0]
    for spec in net.layers:
        if spec[0] == "fc":
            layers += [layer.Linear(features, spec[1]), lif()]
            features = spec[1]
        elif spec[0] == "conv":
            layers += [layer.Conv2d(channels, spec[1], 3, padding=1, bias=False),
                       layer.BatchNorm2d(spec[1]), lif()]
            channels = spec[1]
        elif spec[0] == "pool":
            layers.append(layer.MaxPool2d(2))
        elif spec[0] == "flat":
            layers.append(layer.Flatten())
            features = flat_features(net)
        else:
            layers.append(layer.Linear(features, spec[1]))
    model = nn.Sequential(*layers).to(x.device)
    functional.set_step_mode(model, "m")

    def forward() -> torch.Tensor:
        return model(x.unsqueeze(0).expand(net.steps, *x.shape))  # same direct encoding

    def reset() -> None:
        functional.reset_net(model)

    neurons = [m for m in model.modules() if isinstance(m, neuron.LIFNode)]
    return Runner(_plain_step(model, forward, y, x.device, amp, reset),
                  _plain_infer(model, forward, x.device, amp, reset),
                  neurons, lambda out: out)


def builders(amp: torch.dtype | None = None) -> dict[str, Callable[[Net, torch.Tensor,
                                                                      torch.Tensor], Runner]]:
    """Framework name -> builder; ours once per mode (``ours-eager``, ``ours-fused``, ...)."""
    def ours(mode: str):
        return lambda net, x, y: build_ours(net, x, y, mode, amp)
    return {**{f"ours-{m}": ours(m) for m in OUR_MODES},
            "snntorch": lambda net, x, y: build_snntorch(net, x, y, amp),
            "spikingjelly": lambda net, x, y: build_spikingjelly(net, x, y, amp)}


def is_ours(framework: str) -> bool:
    return framework.startswith("ours-")
