"""Signal encoders compared on one sequence sample: the spikes each emits, what it decodes back,
the threshold it had at each step, and how sparse and how faithful that is.

The app's Signal view and ``snn-workbench inspect --signal`` both call :func:`compare_encoders`
(the view through its two halves, :func:`prepare_comparison`, to encode off the GUI thread).
A *signal encoder* turns a ``[C, L]`` sample into ``T`` steps of ``[C]`` spikes
(``step_shape``, ``time_steps``) and decodes them (``decode``); it may also say the threshold in
force at each step (``thresholds(spikes, side) -> [T, B, C]``). The sample is encoded as the
network gets it (padded to the dataset's length, like the probe); everything kept and measured
stops at the sample's own length, so padding never counts as signal.

Figures, over the sample's own length:

- spike count: the non-zero spikes (+1 and −1);
- spikes per channel per 1000 samples: ``1000 · count / (C · L)``;
- MSE: the mean of ``(x̂ − x)²``, per channel and over all channels;
- SNR: ``10 · log10(Σ x² / Σ (x − x̂)²)`` in dB, per channel and over all channels
  (``inf`` for an exact reconstruction).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workbench.core.build.encoding import Encoding
from workbench.core.build.energy import is_spike_tensor
from workbench.core.model.errors import DatasetError, PluginError, WorkbenchError
from workbench.core.model.project import Component
from workbench.core.model.specs import EncoderSpec

log = logging.getLogger(__name__)

#: the columns of :func:`signal_rows` (and of the Signal view's CSV export)
CSV_HEADER = ("step", "channel", "encoder", "raw", "spike", "reconstruction", "threshold")


@dataclass(frozen=True, eq=False)  # arrays: compared by identity, not element-wise
class EncodedSignal:
    """One encoder's encoding of one sequence sample, cut to the sample's own length ``L``.

    ``signal`` is the raw sample ``[C, L]``; ``spikes`` ``[T, C]`` int8 in {−1, 0, +1} (T = L
    for the usual signal encoders); ``reconstruction`` the decode of those spikes ``[C, L]``
    (None when the encoder cannot decode); ``thresholds`` ``[T, C]`` the threshold in force at
    each step (None when the encoder does not say).
    """

    encoder: str
    name: str
    is_project: bool
    signal: np.ndarray
    spikes: np.ndarray
    reconstruction: np.ndarray | None = None
    thresholds: np.ndarray | None = None

    @property
    def spike_count(self) -> int:
        return int(np.count_nonzero(self.spikes))

    @property
    def spikes_per_channel_per_1000(self) -> float:
        channels, length = self.signal.shape
        return 1000.0 * self.spike_count / max(channels * length, 1)

    def _error(self) -> np.ndarray | None:
        if self.reconstruction is None:
            return None
        return self.reconstruction.astype(np.float64) - self.signal.astype(np.float64)

    @property
    def mse_per_channel(self) -> np.ndarray | None:
        error = self._error()
        return None if error is None else (error**2).mean(axis=1)

    @property
    def mse(self) -> float | None:
        error = self._error()
        return None if error is None else float((error**2).mean())

    @property
    def snr_db_per_channel(self) -> np.ndarray | None:
        error = self._error()
        if error is None:
            return None
        return _snr_db((self.signal.astype(np.float64) ** 2).sum(axis=1), (error**2).sum(axis=1))

    @property
    def snr_db(self) -> float | None:
        error = self._error()
        if error is None:
            return None
        return float(_snr_db(np.array((self.signal.astype(np.float64) ** 2).sum()),
                             np.array((error**2).sum())))

    def summary(self) -> dict[str, Any]:
        """The figures as JSON-able values (a non-finite SNR is written as null)."""
        def listed(values: np.ndarray | None) -> list[float] | None:
            return None if values is None else [float(v) for v in values]

        return {"encoder": self.encoder, "name": self.name, "project": self.is_project,
                "steps": int(self.spikes.shape[0]), "spikes": self.spike_count,
                "positive": int((self.spikes > 0).sum()),
                "negative": int((self.spikes < 0).sum()),
                "spikes_per_channel_per_1000": self.spikes_per_channel_per_1000,
                "mse": self.mse, "mse_per_channel": listed(self.mse_per_channel),
                "snr_db": self.snr_db, "snr_db_per_channel": listed(self.snr_db_per_channel),
                "thresholds": self.thresholds is not None}


def _snr_db(signal_energy: np.ndarray, error_energy: np.ndarray) -> np.ndarray:
    # an exact reconstruction has no error: +inf dB (a silent channel decoded exactly: nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(signal_energy / error_energy)


# -- which encoders --------------------------------------------------------------------------
def is_signal_encoder(encoder: Any, input_shape: tuple[int, ...]) -> bool:
    """Whether an encoder object turns a ``[C, L]`` sample into steps of ``[C]`` and decodes."""
    if not all(callable(getattr(encoder, name, None))
               for name in ("step_shape", "time_steps", "decode")):
        return False
    try:
        return tuple(encoder.step_shape(tuple(input_shape))) == tuple(input_shape[:-1])
    except Exception:  # noqa: BLE001 - plugin code: one that cannot say is no signal encoder
        return False


def signal_encoders(session: Any) -> list[Component]:
    """The project's encoder (with its parameters) when it is a signal encoder, then every other
    installed signal encoder with its defaults, in the order the plugins were loaded."""
    input_shape = tuple(session.data().input_shape)
    project = session.project.encoder
    found: list[Component] = []
    if is_signal_encoder(session.encoding().encoder, input_shape):
        found.append(Component(project.id, dict(project.params)))
    of_kind = getattr(session.lookup, "of_kind", None)  # a bare SpecLookup only finds by id
    for spec in of_kind("encoder") if of_kind is not None else ():
        if spec.id == project.id:
            continue
        try:
            encoder = spec.create()
        except Exception as exc:  # noqa: BLE001 - a broken plugin leaves the others compared
            log.debug("encoder %s not compared: %s", spec.id, exc)
            continue
        if is_signal_encoder(encoder, input_shape):
            found.append(Component(spec.id, {}))
    return found


def _components(session: Any, encoders: Sequence[str | Component]) -> list[Component]:
    project = session.project.encoder
    chosen = []
    for item in encoders:
        if isinstance(item, Component):
            chosen.append(item)
        elif item == project.id:  # the project's encoder as the project sets it
            chosen.append(Component(project.id, dict(project.params)))
        else:
            chosen.append(Component(item, {}))
    return chosen


# -- the comparison --------------------------------------------------------------------------
def require_sequence(session: Any) -> Any:
    """The session's dataset, or the one clear error when its samples are not sequences."""
    data = session.data()
    if data.layout != "sequence":
        raise DatasetError(
            "the signal view needs a sequence dataset (layout 'sequence'); this project's "
            f"dataset is {session.project.dataset.id} (layout {data.layout!r}, samples "
            f"{list(data.input_shape)}); open a project whose dataset holds signals",
            where="dataset")
    return data


def compare_encoders(session: Any, sample: int = 0, *,
                     encoders: Sequence[str | Component] | None = None) -> list[EncodedSignal]:
    """Encode test sample ``sample`` with each encoder (default: :func:`signal_encoders`).

    ``encoders`` are spec ids (the project's own id takes the project's parameters) or
    :class:`Component`\\ s with parameters. Raises :class:`DatasetError` when the dataset is not
    a sequence dataset and :class:`WorkbenchError` (``where="encoders"``) for an id that is not
    an installed encoder or an encoder that does not turn signals into spikes; a plugin's
    failure is a :class:`PluginError` naming the encoder. Of the default encoders, one that
    fails is left out with a logged warning (an error only when every one fails).
    """
    return prepare_comparison(session, sample, encoders=encoders)()


def prepare_comparison(session: Any, sample: int = 0, *,
                       encoders: Sequence[str | Component] | None = None
                       ) -> Callable[[], list[EncodedSignal]]:
    """:func:`compare_encoders` in two halves: the checks, the sample and the encoders chosen
    now (cheap), and the encoding when the returned function is called.

    The function holds its own copies of what it needs, never the session, so it may run on
    another thread while the project is edited or trained (the app's view encodes a long
    signal off the GUI thread).
    """
    data = require_sequence(session)
    split = data.test
    if not 0 <= sample < len(split):
        raise WorkbenchError(f"the test split has {len(split)} samples; choose 0 to "
                             f"{len(split) - 1}", where="sample")
    x, _y, lengths = split.batch(np.array([sample]), lengths=True)
    x = x.float().cpu()
    length = int(x.shape[-1]) if lengths is None else int(lengths[0])
    components = signal_encoders(session) if encoders is None else _components(session, encoders)
    if not components:
        raise WorkbenchError("no installed encoder turns a [C, L] signal into spikes and decodes "
                             "them; install a signal encoder plugin", where="encoders")
    lookup, project_encoder = session.lookup, session.project.encoder.id
    time_steps = session.project.time_steps
    chosen = encoders is not None

    def encode_all() -> list[EncodedSignal]:
        done: list[EncodedSignal] = []
        failures: list[WorkbenchError] = []
        for component in components:
            try:
                done.append(_encode(lookup, component, x, length, time_steps=time_steps,
                                    is_project=component.id == project_encoder))
            except WorkbenchError as exc:
                if chosen:  # asked for by name: its failure is the answer
                    raise
                # found by looking: one broken plugin must not hide the others
                log.warning("%s; it is left out of the signal comparison", exc)
                failures.append(exc)
        if failures and not done:
            raise failures[0]
        return done

    return encode_all


def _encode(lookup: Any, component: Component, x: torch.Tensor, length: int, *,
            time_steps: int, is_project: bool) -> EncodedSignal:
    where = f"encoder {component.id}"
    spec = lookup.get(component.id)
    if not isinstance(spec, EncoderSpec):
        what = "not an installed encoder" if spec is None else f"a {spec.KIND}, not an encoder"
        raise WorkbenchError(f"{component.id!r} is {what} (see `snn-workbench plugins`)",
                             where="encoders")
    encoding = Encoding(spec.create(**spec.check_params(component.params, where=where)),
                        time_steps)
    _, channels, padded = x.shape
    try:
        with torch.no_grad():
            spikes, side = encoding.encode(x)
            fits = spikes.shape[1:] == (1, channels) and is_spike_tensor(spikes)
            rebuilt = encoding.decode(spikes, side) if fits else None
            thresholds_of = getattr(encoding.encoder, "thresholds", None)
            thresholds = thresholds_of(spikes, side) if fits and callable(thresholds_of) else None
    except Exception as exc:  # plugin code: report, don't crash
        raise PluginError(f"{type(exc).__name__}: {exc}", where=where) from exc
    if not fits:
        raise WorkbenchError(
            f"{component.id} does not turn a [{channels}, {padded}] signal into spikes per step "
            f"of [{channels}] (it gave {list(spikes.shape)} for one sample); only signal "
            "encoders can be compared", where="encoders")
    steps = min(spikes.shape[0], math.ceil(length * spikes.shape[0] / padded))
    reconstruction = None
    if rebuilt is not None:
        if tuple(rebuilt.shape) != (1, channels, padded):
            raise PluginError(f"decode gave {list(rebuilt.shape)}, expected "
                              f"[1, {channels}, {padded}]", where=where)
        reconstruction = rebuilt[0, :, :length].float().numpy()
    if thresholds is not None:
        if tuple(thresholds.shape) != tuple(spikes.shape):
            raise PluginError(f"thresholds gave {list(thresholds.shape)}, expected "
                              f"{list(spikes.shape)} like the spikes", where=where)
        thresholds = thresholds[:steps, 0].detach().float().cpu().numpy()
    return EncodedSignal(
        encoder=component.id, name=spec.display_name, is_project=is_project,
        signal=x[0, :, :length].numpy(),
        spikes=spikes[:steps, 0].detach().cpu().to(torch.int8).numpy(),
        reconstruction=reconstruction, thresholds=thresholds)


# -- the data as a table -----------------------------------------------------------------------
def signal_rows(encodings: Sequence[EncodedSignal], channels: Sequence[int] | None = None
                ) -> Iterator[tuple[Any, ...]]:
    """Rows of :data:`CSV_HEADER`, per encoder, channel and step; a cell is "" where the encoder
    has no reconstruction or threshold (or the step no sample)."""
    for encoded in encodings:
        thresholds = None if encoded.thresholds is None else encoded.thresholds.T  # [C, T]
        for channel in range(encoded.signal.shape[0]) if channels is None else channels:
            for step in range(encoded.spikes.shape[0]):
                yield (step, channel, encoded.encoder, _cell(encoded.signal, channel, step),
                       int(encoded.spikes[step, channel]),
                       _cell(encoded.reconstruction, channel, step),
                       _cell(thresholds, channel, step))


def _cell(values: np.ndarray | None, channel: int, step: int) -> float | str:
    if values is None or step >= values.shape[1]:
        return ""
    return float(values[channel, step])
