"""The energy ledger, counted from the spikes actually seen (``docs/energy.md`` explains it).

While an :class:`EnergyMeter` is active, forward hooks on every ``Conv1d``/``Conv2d``/``Linear``
look at the layer's real input:

- **spike input** (every entry in {-1, 0, 1}): each non-zero input entry costs one accumulate
  (AC, a synaptic operation or SOP) per synapse it drives. ``sop_counting="exact"`` counts that
  per entry (a linear layer: spikes × fan-out; a convolution: the non-zeros inside each output's
  receptive field, borders included); ``"rate"`` uses the literature's shortcut
  ``SOPs = firing rate × dense MACs``. Ternary spikes count ``|s| = 1`` as one AC. A layer fed
  firing times (time-to-first-spike) declares ``spike_events(x)``, the 0/1 mask of its inputs
  that fired: it is counted as that spike input (fired inputs × fan-out). A conv fed
  something other than ``[..., C, L...]`` (a causal convolution over time takes ``[T, B, C]``)
  declares ``conv_input(x)``: its input as the convolution reads it, the receptive fields are
  counted on that.
- **real-valued input**: dense multiply-accumulates (MACs). With ``encode_once`` (default) a
  layer whose input is identical at every time step, as under direct encoding, is counted
  once per sample, not T times (the Spikformer-family convention).

Operations no hook can see, the spike × spike products inside an attention core, are counted
by the module itself (``count_ops``/``last_ops``, see :meth:`EnergyMeter.__enter__`). It lists
each product it computed (:func:`spike_product_ops`) and the meter applies ``sop_counting`` to
them: ``"exact"`` one AC per product term with both factors non-zero, ``"rate"`` the dense
term count × the two factors' firing rates.

Neuron layers report their firing rate and the number of neuron updates separately; the papers
do not price those. Energy = MACs × E_MAC + SOPs × E_AC of the chosen cost table, and every
figure is labelled an **estimate** with the table's source.

A layer whose weights are quantised (it declares ``weight_bits``, see
:mod:`workbench.core.build.quantized`) is priced at its real width when the table gives integer
costs per width (:meth:`CostTable.layer_price`): an AC is an integer add, a MAC an integer
multiply plus that add. Every row says the width it was priced at (``priced_at``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Self

import torch
import torch.nn.functional as F

from workbench.core.model.quantity import format_energy_pj
from workbench.core.model.specs import WidthPricing

SOP_COUNTING = ("exact", "rate")


#: the widths an accumulate on a b-bit weight can be priced at (``CostTable.ac_width``)
AC_WIDTHS = ("weight", "accumulator")
#: the widest accumulator ``ac_width="accumulator"`` assumes (a 32-bit register)
ACCUMULATOR_CAP = 32


def per_width(points: tuple[tuple[int, float], ...], exponent: float, bits: int) -> float:
    """Energy at ``bits`` from two published widths ``((w1, e1), (w2, e2))``, growing with
    ``bits ** exponent``: exact at both points, interpolated between, extrapolated beyond.

    ``exponent`` 1 is the rule for adders (a ripple-carry add grows linearly with width), 2 for
    array multipliers (b² partial products); ``docs/energy.md`` states the rule and its source.
    """
    (w1, e1), (w2, e2) = points
    return e1 + (e2 - e1) * (bits ** exponent - w1 ** exponent) / (w2 ** exponent - w1 ** exponent)


def accumulator_bits(weight_bits: int, fan_in: int) -> int:
    """The width a sum of ``fan_in`` ``weight_bits``-bit values needs without overflow
    (``b + ceil(log2 fan_in)``), at most :data:`ACCUMULATOR_CAP` (and never below ``b``)."""
    grow = math.ceil(math.log2(fan_in)) if fan_in > 1 else 0
    return max(weight_bits, min(ACCUMULATOR_CAP, weight_bits + grow))


@dataclass(frozen=True)
class CostTable(WidthPricing):
    """The prices the ledger uses: an :class:`EnergyModelSpec`'s, or a project's custom ones
    (which have no per-width costs: quantised layers are then priced as the rest)."""

    id: str
    name: str
    e_mac_pj: float
    e_ac_pj: float
    source: str

    @classmethod
    def from_spec(cls, spec: Any) -> CostTable:
        pricing = spec.width_pricing() if isinstance(spec, WidthPricing) else {}
        return cls(spec.id, spec.display_name, float(spec.e_mac_pj), float(spec.e_ac_pj),
                   spec.source, **pricing)

    @property
    def prices_bit_widths(self) -> bool:
        """Whether quantised layers are priced at their own width."""
        return len(self.int_add_pj) == 2 and len(self.int_mult_pj) == 2

    def int_add(self, bits: int) -> float:
        """pJ of one ``bits``-bit integer add (the table's rule)."""
        return per_width(self.int_add_pj, self.add_exponent, bits)

    def int_mult(self, bits: int) -> float:
        """pJ of one ``bits``-bit integer multiply (the table's rule)."""
        return per_width(self.int_mult_pj, self.mult_exponent, bits)

    def layer_price(self, weight_bits: int | None, fan_in: int = 0) -> tuple[float, float, str]:
        """``(E_MAC, E_AC, priced_at)`` of a layer with ``weight_bits``-bit weights (``None``:
        full precision). An AC is an integer add at the weight's or the accumulator's width
        (``ac_width``); a MAC is a ``weight_bits``-bit multiply plus that add (its input is
        taken to be at the weight's width, as integer deployment runs it)."""
        if weight_bits is None or not self.prices_bit_widths:
            return self.e_mac_pj, self.e_ac_pj, self.precision
        add_bits = (accumulator_bits(weight_bits, fan_in) if self.ac_width == "accumulator"
                    else weight_bits)
        e_ac = self.int_add(add_bits)
        label = f"INT{weight_bits}" + (f", {add_bits}-bit adds" if add_bits != weight_bits
                                       else "")
        return self.int_mult(weight_bits) + e_ac, e_ac, label

    def pricing_note(self) -> str:
        """How quantised layers are priced, in one line (shown beside the table's source)."""
        if not self.prices_bit_widths:
            return (f"quantised layers priced as {self.precision} (the table gives no "
                    "integer costs per width)")
        (a1, e_a1), (a2, e_a2) = self.int_add_pj
        (m1, e_m1), (m2, e_m2) = self.int_mult_pj
        pj = format_energy_pj
        return (f"quantised layers at their width: int add {pj(e_a1)} at {a1} bits, "
                f"{pj(e_a2)} at {a2}, other widths along width^{self.add_exponent:g}; "
                f"int multiply {pj(e_m1)} at {m1} bits, {pj(e_m2)} at {m2}, along "
                f"width^{self.mult_exponent:g}; an AC is an add at the {self.ac_width}'s width")


@dataclass
class _LayerCount:
    kind: str  # "conv", "linear" or "attention" (counted by the module itself)
    macs: float = 0.0
    sops: float = 0.0
    nonzero: float = 0.0
    entries: float = 0.0
    spike_input: bool = True
    counted_once: bool = False
    weight_bits: int | None = None  # the quantised width of the weights; None: full precision
    fan_in: int = 0  # inputs summed per output (sizes the accumulator)


@dataclass
class _NeuronCount:
    spikes: float = 0.0
    updates: float = 0.0


@dataclass
class EnergyReport:
    table: CostTable
    samples: int
    layers: list[dict[str, Any]] = field(default_factory=list)
    neurons: list[dict[str, Any]] = field(default_factory=list)
    encode_once: bool = True
    sop_counting: str = "exact"

    @property
    def sops_per_sample(self) -> float:
        return sum(layer["sops"] for layer in self.layers)

    @property
    def macs_per_sample(self) -> float:
        return sum(layer["macs"] for layer in self.layers)

    @property
    def total_pj_per_sample(self) -> float:
        return sum(layer["pj"] for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "estimate",
            "table": self.table.id,
            "table_name": self.table.name,
            "source": self.table.source,
            "e_mac_pj": self.table.e_mac_pj,
            "e_ac_pj": self.table.e_ac_pj,
            "precision": self.table.precision,
            "pricing": self.table.pricing_note(),
            "samples": self.samples,
            "total_pj_per_sample": self.total_pj_per_sample,
            "sops_per_sample": self.sops_per_sample,
            "macs_per_sample": self.macs_per_sample,
            "neuron_updates_per_sample": sum(n["updates"] for n in self.neurons),
            "encode_once": self.encode_once,
            "sop_counting": self.sop_counting,
            "layers": self.layers,
            "neurons": self.neurons,
        }


def is_spike_tensor(x: torch.Tensor) -> bool:
    """True when every entry is -1, 0 or 1 (binary or ternary spikes)."""
    return bool(((x == 0) | (x.abs() == 1)).all())


def is_neuron_module(module: torch.nn.Module) -> bool:
    """The neuron contract (``docs/plugins.md``): explicit state, ``step`` and ``initial_state``."""
    return callable(getattr(module, "step", None)) and callable(getattr(module, "initial_state", None))


def emits_spike_times(module: torch.nn.Module) -> bool:
    """The spike-time contract (docs/plugins.md): a module whose output is firing times
    ``[1, B, ...]`` (``inf`` = silent) says so with the class attribute
    ``emits_spike_times = True``."""
    return getattr(module, "emits_spike_times", False) is True


def spike_product_ops(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """What the ledger needs of one spike × spike matrix product ``a @ b`` (batched over the
    leading dimensions), as an entry of an attention core's ``last_ops["products"]``:

    - ``terms``: product terms with both factors non-zero, one AC each (the exact count);
    - ``dense``: all product terms, ``numel(a @ b) × k``;
    - ``rate_a``, ``rate_b``: the fraction of non-zero entries of each factor.
    """
    with torch.no_grad():
        # float64: counts stay exact integers far beyond float32's 2**24
        a_nz, b_nz = ((x.detach() != 0).to(torch.float64) for x in (a, b))
        out = a_nz @ b_nz
        return {"terms": float(out.sum()), "dense": float(out.numel() * a.shape[-1]),
                "rate_a": float(a_nz.mean()), "rate_b": float(b_nz.mean())}


def layer_name(qualified: str) -> str:
    """``layers.conv1.conv`` -> ``conv1.conv`` (node id first)."""
    return qualified.removeprefix("layers.")


class EnergyMeter:
    """Context manager that counts operations of every forward pass of ``model``."""

    def __init__(self, model: torch.nn.Module, *, encode_once: bool = True,
                 sop_counting: str = "exact") -> None:
        if sop_counting not in SOP_COUNTING:
            raise ValueError(f"sop_counting must be one of {SOP_COUNTING}, got {sop_counting!r}")
        self.model = model
        self.encode_once = encode_once
        self.sop_counting = sop_counting
        self.samples = 0
        self._layers: dict[str, _LayerCount] = {}
        self._neurons: dict[str, _NeuronCount] = {}
        self._handles: list[Any] = []
        self._counting: list[torch.nn.Module] = []

    def __enter__(self) -> Self:
        self._handles.append(self.model.register_forward_pre_hook(self._count_samples))
        for qualified, module in self.model.named_modules():
            name = layer_name(qualified)
            if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
                kind = "linear" if isinstance(module, torch.nn.Linear) else "conv"
                bits = getattr(module, "weight_bits", None)
                self._layers[name] = _LayerCount(kind, weight_bits=None if bits is None
                                                 else int(bits), fan_in=_fan_in(module))
                self._handles.append(module.register_forward_hook(self._layer_hook(name)))
            elif is_neuron_module(module):
                self._neurons[name] = _NeuronCount()
                self._handles.append(module.register_forward_hook(self._neuron_hook(name)))
            elif hasattr(module, "count_ops") and hasattr(module, "last_ops"):
                # Operations no Conv/Linear hook can see (spike x spike products inside an
                # attention core): the module counts them itself while ``count_ops`` is on
                # and reports ``last_ops = {"macs": .., "sops": .., "products": [..]}`` for the
                # whole batch: ``sops`` counted exactly, ``products`` the spike x spike products
                # among them (``spike_product_ops``), which ``sop_counting`` applies to. (A
                # wrapper that only forwards ``count_ops`` to an inner module has no
                # ``last_ops`` and is not listed twice.)
                module.count_ops = True
                self._counting.append(module)
                self._layers[name] = _LayerCount("attention")
                self._handles.append(module.register_forward_hook(self._ops_hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for module in self._counting:
            module.count_ops = False
        self._counting.clear()

    def _ops_hook(self, name: str):
        def hook(module: torch.nn.Module, args: tuple[Any, ...], out: Any) -> None:
            ops = getattr(module, "last_ops", None) or {}
            count = self._layers[name]
            count.macs += float(ops.get("macs", 0.0))
            count.sops += float(ops.get("sops", 0.0))
            if self.sop_counting == "rate":
                # the literature's shortcut in place of the exact terms already in ``sops``
                count.sops += sum(p["dense"] * p["rate_a"] * p["rate_b"] - p["terms"]
                                  for p in ops.get("products", ()))
            count.spike_input = bool(ops.get("spike_input", True))

        return hook

    # -- hooks ---------------------------------------------------------------------------------
    def _count_samples(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0]
        self.samples += int(x.shape[1]) if x.dim() >= 2 else 1  # time-major [T, B, ...]

    def _layer_hook(self, name: str):
        def hook(module: torch.nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
            with torch.no_grad():
                self._count_layer(self._layers[name], module, args[0].detach(), out)

        return hook

    def _neuron_hook(self, name: str):
        def hook(module: torch.nn.Module, args: tuple[Any, ...], out: Any) -> None:
            spikes = out[0] if isinstance(out, tuple) else out
            count = self._neurons[name]
            count.spikes += float((spikes.detach() != 0).sum())
            count.updates += float(spikes.numel())

        return hook

    def _count_layer(self, count: _LayerCount, module: torch.nn.Module, x: torch.Tensor,
                     out: torch.Tensor) -> None:
        dense = self._dense_macs(module, x, out)
        events = getattr(module, "spike_events", None)
        if callable(events):
            # a layer fed firing times (0 is a time, inf is silence) says which inputs fired:
            # each one is an accumulate per synapse it drives, like a spike
            x = events(x).to(x.dtype)
        nonzero = float((x != 0).sum())
        count.nonzero += nonzero
        count.entries += float(x.numel())
        if is_spike_tensor(x):
            if self.sop_counting == "rate":
                count.sops += dense * nonzero / max(x.numel(), 1)
            else:
                count.sops += self._exact_sops(module, x, dense)
            return
        count.spike_input = False
        steps = self._time_steps(module, x)
        if self.encode_once and steps > 1 and bool((x == x[:1]).all()):
            count.macs += dense / steps  # the same input at every step: computed once
            count.counted_once = True
        else:
            count.macs += dense

    @staticmethod
    def _time_steps(module: torch.nn.Module, x: torch.Tensor) -> int:
        # Time-major layers see [T, B, ...]; a conv fed [T*B, C, H, W] cannot tell T apart.
        data_dims = 1 if isinstance(module, torch.nn.Linear) else (
            3 if isinstance(module, torch.nn.Conv2d) else 2)
        return int(x.shape[0]) if x.dim() >= data_dims + 2 else 1

    @staticmethod
    def _dense_macs(module: torch.nn.Module, x: torch.Tensor, out: torch.Tensor) -> float:
        if isinstance(module, torch.nn.Linear):
            return float(x.numel() // module.in_features) * module.in_features * module.out_features
        conv: Any = module
        per_output = (conv.in_channels // conv.groups) * int(torch.tensor(conv.kernel_size).prod())
        return float(out.numel()) * per_output

    @staticmethod
    def _exact_sops(module: torch.nn.Module, x: torch.Tensor, dense: float) -> float:
        if isinstance(module, torch.nn.Linear):
            return float((x != 0).sum()) * module.out_features
        conv: Any = module
        data_dims = 2 if isinstance(module, torch.nn.Conv2d) else 1
        if callable(getattr(conv, "conv_input", None)):
            # a conv fed another layout (a causal conv over time takes [T, B, C]) says what
            # it convolves: [N, C, L...], its own padding included
            x = conv.conv_input(x)
        # float64: counts stay exact integers far beyond float32's 2**24
        mask = (x != 0).to(torch.float64).reshape(-1, *x.shape[-(data_dims + 1):])
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            return dense * float(mask.mean())  # unusual padding: the rate formula, not a guess
        groups = conv.groups
        ones = torch.ones(groups, conv.in_channels // groups, *conv.kernel_size,
                          dtype=mask.dtype, device=mask.device)
        op = F.conv2d if data_dims == 2 else F.conv1d
        receptive = op(mask, ones, stride=conv.stride, padding=conv.padding,
                       dilation=conv.dilation, groups=groups)
        return float(receptive.sum()) * (conv.out_channels // groups)

    # -- results -------------------------------------------------------------------------------
    def report(self, table: CostTable) -> EnergyReport:
        n = max(self.samples, 1)
        layers = []
        for name, c in self._layers.items():
            layers.append(_priced({
                "name": name,
                "kind": c.kind,
                "input": "spikes" if c.spike_input else "real",
                "counted_once": c.counted_once,
                "macs": c.macs / n,
                "sops": c.sops / n,
                "weight_bits": c.weight_bits,
                "fan_in": c.fan_in,
                "firing_rate": c.nonzero / c.entries if c.entries else 0.0,
            }, table))
        neurons = [
            {"name": name, "firing_rate": c.spikes / c.updates if c.updates else 0.0,
             "spikes": c.spikes / n, "updates": c.updates / n}
            for name, c in self._neurons.items()
        ]
        return EnergyReport(table, self.samples, layers, neurons, self.encode_once,
                            self.sop_counting)


def _fan_in(module: torch.nn.Module) -> int:
    if isinstance(module, torch.nn.Linear):
        return int(module.in_features)
    conv: Any = module
    return (conv.in_channels // conv.groups) * math.prod(conv.kernel_size)


def _priced(layer: dict[str, Any], table: CostTable) -> dict[str, Any]:
    """``layer`` with its prices and energy under ``table``, at the layer's own width."""
    e_mac, e_ac, priced_at = table.layer_price(layer.get("weight_bits"), layer.get("fan_in", 0))
    return {**layer, "priced_at": priced_at, "e_mac_pj": e_mac, "e_ac_pj": e_ac,
            "pj": layer["macs"] * e_mac + layer["sops"] * e_ac}


def reprice(report: dict[str, Any], table: CostTable) -> dict[str, Any]:
    """The same counts priced with another cost table (no re-run needed)."""
    layers = [_priced(layer, table) for layer in report["layers"]]
    return {**report, "table": table.id, "table_name": table.name, "source": table.source,
            "e_mac_pj": table.e_mac_pj, "e_ac_pj": table.e_ac_pj,
            "precision": table.precision, "pricing": table.pricing_note(), "layers": layers,
            "total_pj_per_sample": sum(layer["pj"] for layer in layers)}
