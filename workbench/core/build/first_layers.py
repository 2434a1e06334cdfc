"""Which conv/linear layers are "the first layer": traced on one forward pass.

Compression methods keep the first and the last weight layer at higher precision (QP-SNN: full
precision; Q-SNN: 8 bits; BESTformer: full precision), because the first one reads real-valued
pixels rather than spikes. "First" means every layer the network input reaches *itself*, not
the first module in the network's order: the first stage of a GL-SPS patch embedding feeds the
image to a plain and a dilated convolution, and both read raw pixels.

:func:`trace_layers` runs one batch in eval mode without gradients and records, in call order,
every leaf module called. A ``Conv1d``/``Conv2d``/``Linear`` is *fed the input* when a call
receives the input tensor or a view sharing its memory (a flatten of it, the ``[T·B, ...]``
view a time-flattened layer makes). When no layer is (the input passes a pooling or a
normalisation first), the first layer called stands for the first layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class LayerTrace:
    """What :func:`trace_layers` saw; names are those of ``model.named_modules()``."""

    calls: list[str]  # every leaf module called, in call order (repeats included)
    order: list[str]  # conv/linear layers, in the order of their first call
    first: list[str]  # the layers fed the input itself (else the first one called)
    unused: list[str]  # conv/linear layers the forward never called

    @property
    def last(self) -> str | None:
        """The conv/linear layer called last for the first time: the classifier."""
        return self.order[-1] if self.order else None

    @property
    def ends(self) -> list[str]:
        """``first`` and ``last``, in call order, without repeats."""
        ends = set(self.first) | ({self.last} if self.last else set())
        return [n for n in self.order if n in ends]


def _is_leaf(module: nn.Module) -> bool:
    return next(iter(module.children()), None) is None or isinstance(module, WEIGHT_LAYERS)


def trace_layers(model: nn.Module, x: torch.Tensor) -> LayerTrace:
    """Run ``model(x)`` once (eval mode, no gradients; the mode is restored) and report which
    conv/linear layers it calls and which of them read ``x`` itself."""
    modules = dict(model.named_modules())
    names = {id(m): n for n, m in modules.items()}
    calls: list[str] = []
    fed: set[str] = set()

    def hook(module: nn.Module, args: tuple) -> None:
        name = names[id(module)]
        calls.append(name)
        if isinstance(module, WEIGHT_LAYERS) and args and isinstance(args[0], torch.Tensor) \
                and args[0].data_ptr() == x.data_ptr():
            fed.add(name)

    handles = [m.register_forward_pre_hook(hook) for m in modules.values() if _is_leaf(m)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    order = list(dict.fromkeys(n for n in calls if isinstance(modules[n], WEIGHT_LAYERS)))
    first = [n for n in order if n in fed] or order[:1]
    unused = [n for n, m in modules.items() if isinstance(m, WEIGHT_LAYERS) and n not in order]
    return LayerTrace(calls=calls, order=order, first=first, unused=unused)
