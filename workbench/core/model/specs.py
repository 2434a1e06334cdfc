"""Declarative contributions: what a plugin offers, described without importing heavy code.

Every contribution hook returns frozen spec objects. A spec carries its parameters as
:class:`ParamSpec` (the GUI form and the project file are both generated from them) and a lazy
``factory``: a ``"module:attr"`` string imported only when a run needs it, so discovering plugins
never imports torch.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from workbench.core.model.errors import PluginError, ProjectError

#: Parameter kinds. ``path`` is a folder and ``file`` a file (the GUI offers the matching
#: chooser); ``neuron`` holds a neuron choice: ``{"id": spec id, "params": {...}}``.
PARAM_KINDS = ("float", "int", "bool", "choice", "str", "path", "file", "neuron")

_ID_RE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_.]*$")
_FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


#: words of parameter names that read better spelled out or as their usual abbreviation
_WORDS = {"lr": "learning rate", "ste": "STE", "mlp": "MLP", "attn": "attention",
          "dim": "dimension", "eps": "epsilon", "finetune": "fine-tune", "sim": "simulated",
          "dt": "Δt", "sacc": "saccadic", "th": "threshold", "v": "V", "min": "minimum"}
#: whole names with an established spelling
_NAMES = {"ws_dr": "WS-DR", "lam": "λ", "p": "P", "v_th": "Threshold V_th",
          "v_reset": "Reset potential V_reset"}


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a contribution.

    ``unit`` is shown next to the value in forms and docs ("ms", "pJ"); ``doc`` becomes the tooltip.
    """

    name: str
    default: Any
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    unit: str = ""
    doc: str = ""
    label: str = ""

    @property
    def title(self) -> str:
        """What a form calls the parameter: its ``label``, else its name in words
        (``tool_timeout_s`` → "Tool timeout", ``lr`` → "Learning rate", ``ws_dr`` → "WS-DR");
        a last word that only repeats the unit is left to :attr:`label_with_unit`."""
        if self.label:
            return self.label
        if self.name in _NAMES:
            return _NAMES[self.name]
        words = self.name.split("_")
        if len(words) > 1 and self.unit and words[-1] == self.unit and len(self.unit) <= 2:
            words = words[:-1]  # tool_timeout_s with unit "s" (a symbol, not a word)
        text = " ".join(_WORDS.get(w, w) for w in words)
        return text[:1].upper() + text[1:]

    @property
    def label_with_unit(self) -> str:
        """The title and its unit, the unit once: "Tool timeout (s)", "Weight bits" (not
        "Weight bits (bits)"), "Kernel size (px)"."""
        if not self.unit or self.unit.lower() in self.title.lower().split():
            return self.title
        return f"{self.title} ({self.unit})"

    def coerce(self, value: Any) -> Any:
        """Return ``value`` converted to this parameter's kind, or raise ``ValueError``."""
        kind = self.kind
        if kind == "bool":
            if isinstance(value, bool):
                return value
            raise ValueError(f"expected true or false, got {value!r}")
        if kind in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"expected a number, got {value!r}")
            if kind == "int":
                if float(value) != int(value):
                    raise ValueError(f"expected an integer, got {value!r}")
                value = int(value)
            else:
                value = float(value)
                if not math.isfinite(value):
                    raise ValueError(f"expected a finite number, got {value!r}")
            if self.low is not None and value < self.low:
                raise ValueError(f"{value!r} is below the minimum {self.low}{self._unit()}")
            if self.high is not None and value > self.high:
                raise ValueError(f"{value!r} is above the maximum {self.high}{self._unit()}")
            return value
        if kind == "choice":
            if value not in self.choices:
                options = ", ".join(repr(c) for c in self.choices)
                raise ValueError(f"{value!r} is not one of {options}")
            return value
        if kind in ("str", "path", "file"):
            if not isinstance(value, str):
                raise ValueError(f"expected text, got {value!r}")
            return value
        if kind == "neuron":
            if isinstance(value, str):
                return {"id": value, "params": {}}
            if (
                isinstance(value, Mapping)
                and isinstance(value.get("id"), str)
                and isinstance(value.get("params", {}), Mapping)
            ):
                return {"id": value["id"], "params": dict(value.get("params", {}))}
            raise ValueError(f'expected a neuron id or {{"id": ..., "params": {{...}}}}, got {value!r}')
        raise ValueError(f"unknown parameter kind {kind!r}")

    def _unit(self) -> str:
        return f" {self.unit}" if self.unit else ""


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Fields every contribution has; subclasses add what their kind needs."""

    KIND: ClassVar[str] = "spec"

    id: str
    display_name: str
    factory: str | Callable[..., Any] = ""
    params: tuple[ParamSpec, ...] = ()
    doc: str = ""
    spec_version: int = 1
    replaces: tuple[str, ...] = ()
    #: ``migrate(params, from_version) -> params`` upgrades parameters saved by older versions.
    migrate: Callable[[dict[str, Any], int], dict[str, Any]] | None = None
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def plugin(self) -> str:
        return self.id.split(".", 1)[0]

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def check_params(self, values: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
        """Merge ``values`` over the defaults and validate each one.

        Raises :class:`ProjectError` naming the first bad field (``where.params.name``).
        """
        prefix = f"{where}.params" if where else "params"
        unknown = sorted(set(values) - {p.name for p in self.params})
        if unknown:
            allowed = ", ".join(p.name for p in self.params) or "none"
            raise ProjectError(
                f"unknown parameter {unknown[0]!r} for {self.id} (allowed: {allowed})",
                where=f"{prefix}.{unknown[0]}",
            )
        merged = {}
        for p in self.params:  # defaults are coerced too: a neuron id becomes {"id", "params"}
            try:
                merged[p.name] = p.coerce(values.get(p.name, p.default))
            except ValueError as exc:
                raise ProjectError(str(exc), where=f"{prefix}.{p.name}") from None
        return merged

    def resolve(self) -> Callable[..., Any]:
        """Import and return the factory; errors name the plugin and the factory string."""
        return self._resolve_lazy("factory", self.factory)

    def _resolve_lazy(self, slot: str, target: str | Callable[..., Any]) -> Callable[..., Any]:
        """Import a ``"module:attr"`` reference once; errors name the plugin and the string."""
        if callable(target):
            return target
        if slot not in self._cache:
            module_name, _, attr = target.partition(":")
            try:
                obj: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (Exception, SystemExit) as exc:  # a module calling sys.exit() on import too
                raise PluginError(
                    f"cannot import {target!r} ({type(exc).__name__}: {exc})",
                    where=f"plugin {self.plugin!r}, {self.id}",
                ) from exc
            self._cache[slot] = obj
        return self._cache[slot]

    def create(self, *args: Any, **params: Any) -> Any:
        """Call the factory with the defaults overridden by ``params``."""
        return self.resolve()(*args, **{**self.defaults(), **params})

    def problems(self) -> list[str]:
        """What is wrong with this spec itself (empty when valid); used by the plugin loader."""
        found = []
        if not isinstance(self.id, str) or not _ID_RE.match(self.id):
            found.append(f"id {self.id!r} is not of the form 'plugin.name' (lowercase)")
        if not isinstance(self.display_name, str) or not self.display_name.strip():
            found.append("display_name is empty")
        if self.needs_factory() and not callable(self.factory):
            if not isinstance(self.factory, str) or not _FACTORY_RE.match(self.factory):
                found.append(f"factory {self.factory!r} is not 'module:attr' or a callable")
        names = [p.name for p in self.params]
        if len(names) != len(set(names)):
            found.append("parameter names repeat")
        for p in self.params:
            if not isinstance(p, ParamSpec):
                found.append(f"parameter {p!r} is not a ParamSpec")
                continue
            try:
                p.coerce(p.default)
            except ValueError as exc:
                found.append(f"default of parameter {p.name!r} is invalid: {exc}")
        return found

    def needs_factory(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class NeuronSpec(Spec):
    """A spiking neuron. The factory builds a module with ``step(x, state) -> (spikes, state)``,
    ``initial_state(x)`` and a multi-step ``forward(x[T, B, ...]) -> spikes[T, B, ...]``."""

    KIND: ClassVar[str] = "neuron"
    state_vars: tuple[str, ...] = ("v",)


#: How spikes travel between layers (``spike_code`` of encoders, blocks and learning rules):
#: ``"trains"``, a value per input at each of T steps (spikes or currents, the default);
#: ``"times"``, one firing time per input (time-to-first-spike: ``[1, B, ...]``, ``inf`` for an
#: input that never fires); ``"any"`` (blocks only) a block that moves values without reading
#: them as either (a flatten).
SPIKE_TRAINS, SPIKE_TIMES, ANY_SPIKE_CODE = "trains", "times", "any"
SPIKE_CODES = (SPIKE_TRAINS, SPIKE_TIMES)


def _spike_code_problems(code: str, allowed: tuple[str, ...]) -> list[str]:
    return [] if code in allowed else [f"spike_code {code!r} is not one of {', '.join(allowed)}"]


@dataclass(frozen=True, kw_only=True)
class BlockSpec(Spec):
    """A layer or composite block. The factory is called as
    ``factory(in_shapes, **params) -> nn.Module``; ``in_shapes`` are per-sample shapes without
    the time and batch dimensions. ``inputs`` is how many incoming edges the block takes."""

    KIND: ClassVar[str] = "block"
    inputs: int = 1
    category: str = "layer"
    #: what it takes and emits: ``"trains"``, ``"times"`` or ``"any"`` (see :data:`SPIKE_CODES`)
    spike_code: str = SPIKE_TRAINS

    def problems(self) -> list[str]:
        return super().problems() + _spike_code_problems(self.spike_code,
                                                         (*SPIKE_CODES, ANY_SPIKE_CODE))


@dataclass(frozen=True, kw_only=True)
class AttentionSpec(BlockSpec):
    """An attention block; its module returns ``(out, maps)`` so the maps can be shown."""

    KIND: ClassVar[str] = "attention"
    category: str = "attention"


@dataclass(frozen=True, kw_only=True)
class EncoderSpec(Spec):
    """Turns a batch ``[B, ...]`` into a time-major ``[T, B, ...]`` tensor.

    The factory builds an object with ``encode(x, T)``; it may also offer ``step_shape``,
    ``time_steps`` (to set T from the data), return ``(spikes, side)`` from ``encode`` and
    ``decode(spikes, side)`` (see :mod:`workbench.core.build.encoding`). ``sets_time_steps``
    tells the GUI to grey out the project's T."""

    KIND: ClassVar[str] = "encoder"
    sets_time_steps: bool = False
    #: what it emits: ``"trains"`` ``[T, B, ...]`` or ``"times"`` ``[1, B, ...]`` firing times
    spike_code: str = SPIKE_TRAINS

    def problems(self) -> list[str]:
        return super().problems() + _spike_code_problems(self.spike_code, SPIKE_CODES)


@dataclass(frozen=True, kw_only=True)
class CompressionSpec(Spec):
    """A compression method: the factory is a generator function ``apply(ctx, **params)``
    that yields events and returns a ``CompressionResult`` (see
    :mod:`workbench.core.runs.compress`)."""

    KIND: ClassVar[str] = "compression"
    kind: str = "quantize"


@dataclass(frozen=True, kw_only=True)
class LearningRuleSpec(Spec):
    """How a network learns: the factory builds a trainer, ``factory(model, *, epochs,
    steps_per_epoch, **params)``, whose ``train_step(x, y)`` returns at least ``loss``,
    ``correct`` and ``count``; every other number it returns (``backward_events``, a silent
    fraction, gradient norms…) is an extra metric that reaches the CLI's JSON, the run record and
    the training panel. ``metric_reductions`` on the trainer says how an extra metric sums over an
    epoch (``"sum"`` or ``"mean"``, the default).

    ``readout`` (a lazy ``"module:attr"``) turns the network's output into class scores
    ``[B, C]``; empty means the mean over time of ``[T, B, C]`` logits."""

    KIND: ClassVar[str] = "learning_rule"
    readout: str | Callable[..., Any] = ""
    #: the networks it trains: ``"trains"`` or ``"times"`` (its loss reads firing times)
    spike_code: str = SPIKE_TRAINS

    def problems(self) -> list[str]:
        return super().problems() + _spike_code_problems(self.spike_code, SPIKE_CODES)

    def resolve_readout(self) -> Callable[..., Any]:
        if not self.readout:
            from workbench.core.model.readout import class_scores

            return class_scores
        return self._resolve_lazy("readout", self.readout)


@dataclass(frozen=True, kw_only=True)
class DatasetSpec(Spec):
    """The factory builds a :class:`workbench.core.data.DatasetSplits` from the params.

    ``offline`` tells whether the data ships with the package (no file needed). ``shape``
    (optional, a lazy ``"module:attr"``) is ``fn(**params) -> (input_shape, n_classes)``: the
    dataset's shape declared without loading it, so describing a network (``snn-workbench
    info``) stays cheap."""

    KIND: ClassVar[str] = "dataset"
    offline: bool = False
    shape: str | Callable[..., Any] = ""

    def resolve_shape(self) -> Callable[..., Any] | None:
        """The declared-shape function, or None when the dataset declares none."""
        return self._resolve_lazy("shape", self.shape) if self.shape else None

    def problems(self) -> list[str]:
        found = super().problems()
        if self.shape and not callable(self.shape) and (
                not isinstance(self.shape, str) or not _FACTORY_RE.match(self.shape)):
            found.append(f"shape {self.shape!r} is not 'module:attr' or a callable")
        return found


@dataclass(frozen=True, kw_only=True)
class BackendSpec(Spec):
    """A simulator or hardware target: ``factory(**params)`` builds an object with
    ``targets()``, ``check(ctx)``, ``deploy(ctx)`` and ``run(ctx)`` (see
    :mod:`workbench.core.runs.deploy`). :meth:`create` refuses an object that lacks one."""

    KIND: ClassVar[str] = "backend"
    #: what every backend object offers (``workbench.pluginhost.protocols.Backend``)
    METHODS: ClassVar[tuple[str, ...]] = ("targets", "check", "deploy", "run")
    #: what one with ``formats`` offers too (``...protocols.ExchangeBackend``)
    EXCHANGE_METHODS: ClassVar[tuple[str, ...]] = ("targets", "export_file", "read_file")
    kind: str = "simulator"  # "simulator", "hardware" or "exchange" (a file format)
    #: file formats the backend reads and writes (e.g. ``("nir",)``); its object then also has
    #: ``export_file(session, path) -> dict`` and ``read_file(path, ctx) -> (Project, model)``
    #: (see :mod:`workbench.core.runs.exchange`)
    formats: tuple[str, ...] = ()
    #: the targets its object offers with the default parameters, named without building it
    #: (``deploy --help`` lists them and must not import what the backend needs); the object's
    #: ``targets()`` stays the authority. Empty: not known until the backend is built.
    known_targets: tuple[str, ...] = ()

    def required_methods(self) -> tuple[str, ...]:
        extra = self.EXCHANGE_METHODS if self.formats else ()
        return tuple(dict.fromkeys((*self.METHODS, *extra)))

    def create(self, *args: Any, **params: Any) -> Any:
        """The backend object; a :class:`PluginError` naming the method when one is missing,
        so a run never meets a half-made backend."""
        backend = super().create(*args, **params)
        for name in self.required_methods():
            if not callable(getattr(backend, name, None)):
                raise PluginError(
                    f"the backend object ({type(backend).__name__}) has no {name}() method; "
                    f"a backend needs {', '.join(self.required_methods())}",
                    where=f"plugin {self.plugin!r}, {self.id}")
        return backend


@dataclass(frozen=True, kw_only=True)
class WidthPricing:
    """How a cost table prices arithmetic by width: declared on an :class:`EnergyModelSpec` and
    carried by the ledger's cost table (one list of fields for both)."""

    #: the arithmetic ``e_mac_pj``/``e_ac_pj`` price ("FP32", "INT8"): full-precision layers
    precision: str = "FP32"
    #: integer add and multiply energy (pJ) at two widths, ``((8, 0.03), (32, 0.1))``: a
    #: quantised layer is priced at its own width (docs/energy.md); empty: priced as the rest
    int_add_pj: tuple[tuple[int, float], ...] = ()
    int_mult_pj: tuple[tuple[int, float], ...] = ()
    #: other widths: energy grows with ``width ** exponent`` through the two points
    add_exponent: float = 1.0
    mult_exponent: float = 2.0
    #: the width an accumulate on a b-bit weight is priced at: "weight" (b bits) or
    #: "accumulator" (b + ceil(log2 fan-in) bits, at most 32)
    ac_width: str = "weight"

    def width_pricing(self) -> dict[str, Any]:
        """These fields by name, as a :class:`WidthPricing` of another kind takes them."""
        return {name: getattr(self, name) for name in WidthPricing.__dataclass_fields__}


@dataclass(frozen=True, kw_only=True)
class EnergyModelSpec(WidthPricing, Spec):
    """A cost table: energy per operation, and where the figures come from."""

    KIND: ClassVar[str] = "energy_model"
    e_mac_pj: float = 4.6
    e_ac_pj: float = 0.9
    source: str = ""

    def needs_factory(self) -> bool:
        return False

    def problems(self) -> list[str]:
        found = super().problems()
        for name in ("e_mac_pj", "e_ac_pj"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                found.append(f"{name} must be a non-negative number, got {value!r}")
        if not self.source:
            found.append("source is empty: every cost table must say where its figures come from")
        found += self._width_problems()
        return found

    def _width_problems(self) -> list[str]:
        found = []
        if bool(self.int_add_pj) != bool(self.int_mult_pj):
            found.append("int_add_pj and int_mult_pj are given together or not at all")
        for name in ("int_add_pj", "int_mult_pj"):
            points = getattr(self, name)
            if not points:
                continue
            try:
                (w1, e1), (w2, e2) = points
                ok = (all(isinstance(w, int) and w >= 1 for w in (w1, w2)) and w1 < w2
                      and all(isinstance(e, (int, float)) and math.isfinite(e) for e in (e1, e2))
                      and 0 < e1 <= e2)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                found.append(f"{name} must be two (bits, pJ) points, narrower first, energies "
                             f"positive and not falling, got {points!r}")
                continue
            p = getattr(self, name.replace("int_", "").replace("_pj", "_exponent"))
            if isinstance(p, (int, float)) and p > 0 and w2 ** p > w1 ** p:
                one_bit = e1 + (e2 - e1) * (1 - w1 ** p) / (w2 ** p - w1 ** p)
                if one_bit <= 0:
                    found.append(f"{name} with exponent {p:g} prices a 1-bit operation at "
                                 f"{one_bit:.3g} pJ; every width needs a positive cost")
        for name in ("add_exponent", "mult_exponent"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value <= 4:
                found.append(f"{name} must be a number in (0, 4], got {value!r}")
        if self.ac_width not in ("weight", "accumulator"):
            found.append(f'ac_width must be "weight" or "accumulator", got {self.ac_width!r}')
        return found


@dataclass(frozen=True, kw_only=True)
class RunnerSpec(Spec):
    """Somewhere else a training run can go (a Ray cluster, a batch queue): ``factory(**params)``
    (the params say where, e.g. the cluster's address) builds a runner whose
    ``submit(folder, command, *, excludes, env)`` sends the project folder and starts
    ``command`` there, returning a job with ``id``, ``where``, ``poll() -> JobUpdate`` and
    ``stop()`` (protocols :class:`~workbench.pluginhost.protocols.Runner` and ``RemoteJob``;
    the run around it is :mod:`workbench.core.runs.remote`)."""

    KIND: ClassVar[str] = "runner"


@dataclass(frozen=True, kw_only=True)
class ViewSpec(Spec):
    """A GUI panel; the factory (in the plugin's ``_qt`` module) builds a widget."""

    KIND: ClassVar[str] = "view"


class SpecLookup(Protocol):
    """Anything that finds a contribution by id (the plugin registry does)."""

    def get(self, spec_id: str) -> Spec | None: ...
