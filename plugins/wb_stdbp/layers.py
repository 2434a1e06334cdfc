"""ReL-PSP layers on firing times: ``[T, B, ...]`` times in (T is 1 under ``wb_core.ttfs``),
times out, ``inf`` for a neuron that never fires.

Each layer is a ``torch.nn.Linear`` / ``torch.nn.Conv2d`` without bias whose forward computes
firing times instead of currents; ``spike_events`` tells the energy ledger which inputs fired,
so each counts one accumulate per synapse it drives. ``kernel="relpsp"`` is the rectified
linear PSP trained with STDBP (:mod:`wb_stdbp.relpsp`); ``kernel="alpha"`` the alpha PSP with
the SpikeProp gradient (:mod:`wb_stdbp.alpha`), for comparison.

Initialisation (why the defaults are what they are): a single-spike network is useless when
its neurons never fire, and a silent neuron gets no gradient, so it stays silent. The weights
are drawn from ``N(mean_gain * theta / fan_in, (std_gain * theta)^2 / fan_in)``: a positive
mean that makes the summed weight of a neuron about ``mean_gain * theta`` when all of its
inputs fire (it then reaches threshold about ``1 / mean_gain`` after the bulk of its inputs),
plus a spread of the usual fan-in scale so neurons differ. With the defaults (2 and 1) on the
digits, all but a few per cent of the neurons of every layer fire at initialisation, well
before the horizon (docs/stdbp.md has the measurement).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from wb_stdbp.alpha import MAX_HORIZON_OVER_TAU, alpha_kernel, alpha_spike_times
from wb_stdbp.relpsp import stdbp_times
from workbench.pluginhost import RELPSP, FiringTimeNeuron

Shape = tuple[int, ...]
KERNELS = ("relpsp", "alpha")
#: the input window of ``wb_core.ttfs`` at its default ``t_max``: inputs fire in [0, 1]
INPUT_WINDOW = 1.0
INIT_MEAN_GAIN = 2.0
INIT_STD_GAIN = 1.0


def check_neuron(kernel: str, tau: float, theta: float, horizon: float) -> None:
    """Refuse parameters the neuron cannot work with, naming the parameter."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    if not theta > 0:
        raise ValueError(f"theta must be positive, got {theta}")
    if not horizon > INPUT_WINDOW:
        raise ValueError(
            f"horizon must be above the input window: got {horizon}, but wb_core.ttfs fires "
            f"inputs up to t_max = {INPUT_WINDOW:g} (and hidden neurons fire later); use a "
            "horizon of several times the input window, e.g. 10")
    if kernel == "alpha" and not (tau > 0 and horizon / tau <= MAX_HORIZON_OVER_TAU):
        raise ValueError(f"tau must be positive and at least horizon / {MAX_HORIZON_OVER_TAU:g} "
                         f"for the alpha kernel, got tau = {tau} with horizon = {horizon}")


class SpikeTimeLayer:
    """What the linear and convolutional layers share: the neuron and its initialisation."""

    emits_spike_times = True  # its outputs are firing times: probes and the Spike times tab
    weight: torch.Tensor
    kernel: str
    tau: float
    theta: float
    horizon: float

    def _set_neuron(self, kernel: str, tau: float, theta: float, horizon: float) -> None:
        check_neuron(kernel, tau, theta, horizon)
        self.kernel, self.tau, self.theta, self.horizon = kernel, float(tau), float(theta), \
            float(horizon)

    @property
    def firing_time_neuron(self) -> FiringTimeNeuron:
        """The neuron, declared for deployment targets (the integer simulator rebuilds it)."""
        kernel = RELPSP if self.kernel == "relpsp" else f"alpha(tau={self.tau:g})"
        return FiringTimeNeuron(kernel, self.theta, self.horizon)

    def spike_events(self, x: torch.Tensor) -> torch.Tensor:
        """The inputs that fired (a time of 0 is a spike; ``inf`` is silence)."""
        return torch.isfinite(x)

    def _init_weight(self, fan_in: int) -> None:
        with torch.no_grad():
            self.weight.normal_(INIT_MEAN_GAIN * self.theta / fan_in,
                                INIT_STD_GAIN * self.theta / math.sqrt(fan_in))

    def spike_times(self, t_in: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``[N, I]`` input times -> ``[N, O]`` output times through this layer's neuron."""
        if self.kernel == "alpha":
            return alpha_spike_times(t_in, weight, self.theta, self.horizon, self.tau)
        return stdbp_times(t_in, weight, self.theta, self.horizon)

    def psp(self, lag: torch.Tensor) -> torch.Tensor:
        """The post-synaptic potential ``lag`` after an input spike (0 before it and for an
        input that never fired, whose lag is ``-inf``)."""
        if self.kernel == "alpha":
            return alpha_kernel(lag, self.tau)
        return lag.clamp(min=0.0)

    def neuron_repr(self) -> str:
        tau = f", tau={self.tau}" if self.kernel == "alpha" else ""
        return f"kernel={self.kernel}{tau}, theta={self.theta}, horizon={self.horizon}"


class RelPSPLinear(SpikeTimeLayer, nn.Linear):
    """A fully connected layer of single-spike neurons: ``[..., in] -> [..., out]`` times."""

    def __init__(self, in_features: int, out_features: int, *, kernel: str = "relpsp",
                 tau: float = 2.0, theta: float = 1.0, horizon: float = 10.0) -> None:
        super().__init__(in_features, out_features, bias=False)
        self._set_neuron(kernel, tau, theta, horizon)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if hasattr(self, "theta"):  # nn.Linear's own call comes before the neuron is set
            self._init_weight(self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t_out = self.spike_times(x.reshape(-1, self.in_features), self.weight)
        return t_out.reshape(*x.shape[:-1], self.out_features)

    def potential_at_horizon(self, x: torch.Tensor) -> torch.Tensor:
        """``V_j(t_h)`` for input times ``x``, shaped like the output (differentiable in the
        weights: what the learning rule's silence penalty raises)."""
        return F.linear(self.psp(self.horizon - x), self.weight)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self.neuron_repr()}"


class RelPSPConv2d(SpikeTimeLayer, nn.Conv2d):
    """A convolution of single-spike neurons: each output position is a neuron whose inputs
    are its receptive field. ``[T, B, C, H, W]`` times in and out; padding never fires."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 stride: int = 1, padding: int = 0, kernel: str = "relpsp", tau: float = 2.0,
                 theta: float = 1.0, horizon: float = 10.0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         bias=False)
        self._set_neuron(kernel, tau, theta, horizon)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if hasattr(self, "theta"):
            self._init_weight(self.in_channels * math.prod(self.kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead, (channels, height, width) = x.shape[:-3], x.shape[-3:]
        images = x.reshape(-1, channels, height, width)
        pad_h, pad_w = self.padding  # type: ignore[misc]
        # padded positions are inputs that never fire: inf, not the zero F.unfold would add
        images = F.pad(images, (pad_w, pad_w, pad_h, pad_h), value=math.inf)
        fields = F.unfold(images, self.kernel_size, stride=self.stride)  # [M, C*k*k, L]
        out_h = (height + 2 * pad_h - self.kernel_size[0]) // self.stride[0] + 1
        out_w = (width + 2 * pad_w - self.kernel_size[1]) // self.stride[1] + 1
        t_in = fields.transpose(1, 2).reshape(-1, fields.shape[1])  # one row per neuron input
        t_out = self.spike_times(t_in, self.weight.reshape(self.out_channels, -1))
        t_out = t_out.reshape(images.shape[0], out_h * out_w, self.out_channels).transpose(1, 2)
        return t_out.reshape(*lead, self.out_channels, out_h, out_w)

    def potential_at_horizon(self, x: torch.Tensor) -> torch.Tensor:
        """``V_j(t_h)`` for input times ``x``, shaped like the output; zero padding is right
        here, a padded input never fires."""
        images = self.psp(self.horizon - x.reshape(-1, *x.shape[-3:]))
        v = F.conv2d(images, self.weight, stride=self.stride, padding=self.padding)
        return v.reshape(*x.shape[:-3], *v.shape[1:])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self.neuron_repr()}"


def _need_flat(shape: Shape) -> None:
    if len(shape) not in (1, 2):
        raise ValueError(f"a ReL-PSP linear layer expects a flat [D] input, got {list(shape)}; "
                         "put a Flatten before it")


def relpsp_linear(in_shapes: list[Shape], out_features: int = 256, kernel: str = "relpsp",
                  tau: float = 2.0, theta: float = 1.0, horizon: float = 10.0) -> RelPSPLinear:
    shape = in_shapes[0]
    _need_flat(shape)
    return RelPSPLinear(shape[-1], out_features, kernel=kernel, tau=tau, theta=theta,
                        horizon=horizon)


def relpsp_conv(in_shapes: list[Shape], channels: int = 16, kernel_size: int = 3,
                stride: int = 1, padding: int = 1, kernel: str = "relpsp", tau: float = 2.0,
                theta: float = 1.0, horizon: float = 10.0) -> RelPSPConv2d:
    shape = in_shapes[0]
    if len(shape) != 3:
        raise ValueError(f"a ReL-PSP convolution expects a [C, H, W] input, got {list(shape)}")
    if shape[1] + 2 * padding < kernel_size or shape[2] + 2 * padding < kernel_size:
        raise ValueError(f"kernel {kernel_size} is larger than the padded input {list(shape)}")
    return RelPSPConv2d(shape[0], channels, kernel_size, stride=stride, padding=padding,
                        kernel=kernel, tau=tau, theta=theta, horizon=horizon)
