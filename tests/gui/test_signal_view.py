"""The Signal view in the window: the probed sample of a sequence project as each signal encoder
sees it (raw, reconstruction, ternary spikes, figures), and a hint for other projects."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from workbench.core.persistence.project_files import load_project
from workbench.pluginhost.manager import load_plugins
from workbench.testing.toy_plugins import DeltaEncoder, toy_project_dir

pytestmark = pytest.mark.gui


def sample(window, index):
    split = window.session.data().test
    x, _y, lengths = split.batch(np.array([index]), lengths=True)
    return x, int(lengths[0])


def test_the_signal_tab_shows_the_probed_sample_through_each_encoder(make_main_window, qtbot,
                                                                    tmp_path):
    from workbench.core.runs.signal import compare_encoders

    host = load_plugins(modules=["workbench.testing.toy_plugins"])
    folder = shutil.copytree(toy_project_dir(), tmp_path / "toy")
    window = make_main_window(load_project(folder), host=host)
    window.docks["signal"].raise_()  # the user opens the Signal tab: built, then fed the probe
    qtbot.waitUntil(lambda: window._lazy["signal"].built is not None, timeout=3000)
    view = window.signal
    qtbot.waitUntil(lambda: bool(view.encoders()), timeout=10_000)
    assert view.encoders()[0] == "toy_plugins.delta"  # the project's encoder on top
    assert view.hint_text() == ""

    x, length = sample(window, 0)
    encoder = DeltaEncoder()
    spikes, start = encoder.encode(x, 24)
    rebuilt = encoder.decode(spikes, start)[0, :, :length].numpy()
    steps, raw = view.curve(0, "raw")
    assert np.array_equal(steps, np.arange(length))  # only the sample's own length
    assert np.allclose(raw, x[0, 0, :length].numpy())
    assert np.allclose(view.curve(0, "reconstruction")[1], rebuilt[0])
    # the spike train: ticks from 0 to +1 and from 0 to −1, at the encoder's spikes
    up_t, up = view.curve(0, "spikes_up")
    down_t, down = view.curve(0, "spikes_down")
    assert set(up) <= {0.0, 1.0} and set(down) <= {0.0, -1.0} and down.min() == -1
    train = spikes[:length, 0, 0].numpy()
    assert np.array_equal(up_t[::2], np.flatnonzero(train == 1))
    assert np.array_equal(down_t[::2], np.flatnonzero(train == -1))
    # the printed figures are the core's
    [core] = [e for e in compare_encoders(window.session, 0) if e.encoder == "toy_plugins.delta"
              and e.is_project]
    title = view.row_title(0)
    assert f"MSE {core.mse:.3g}" in title and f"{core.spike_count} spikes" in title
    assert f"SNR {core.snr_db:.1f} dB" in title and "(project)" in title

    view.set_channel(1)
    assert np.allclose(view.curve(0, "raw")[1], x[0, 1, :length].numpy())
    assert np.allclose(view.curve(0, "reconstruction")[1], rebuilt[1])
    tooltip = view.plot_widget.ci.getItem(0, 0).toolTip()  # the top row's plot
    mse_1 = float(core.mse_per_channel[1])
    assert "channel 1" in tooltip and f"MSE {mse_1:.3g}" in tooltip

    # the "Test sample" chooser: another sample, another signal
    window.probe_now(3)
    x3, length3 = sample(window, 3)
    qtbot.waitUntil(lambda: view.curve(0, "raw")[1].size == length3
                    and np.allclose(view.curve(0, "raw")[1], x3[0, 1, :length3].numpy()),
                    timeout=5000)

    with open(view.export_csv(tmp_path / "signal.csv"), newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["step", "channel", "encoder", "raw", "spike", "reconstruction",
                       "threshold"]
    delta_rows = [r for r in rows[1:] if r[2] == "toy_plugins.delta"]
    assert len(delta_rows) == length3 and {r[1] for r in delta_rows} == {"1"}
    assert {r[4] for r in delta_rows} <= {"-1", "0", "1"}
    assert view.export_image(tmp_path / "signal.png").stat().st_size > 0


def test_a_live_probe_of_the_same_sample_does_not_encode_again(make_main_window, qtbot,
                                                               tmp_path, monkeypatch):
    from workbench.core.runs import signal

    host = load_plugins(modules=["workbench.testing.toy_plugins"])
    folder = shutil.copytree(toy_project_dir(), tmp_path / "toy")
    window = make_main_window(load_project(folder), host=host)
    calls = []
    prepare = signal.prepare_comparison
    monkeypatch.setattr(signal, "prepare_comparison",
                        lambda session, index: calls.append(index) or prepare(session, index))
    view = window.signal
    item = {"index": 2, "label": 1, "predicted": 0}
    view.set_probe(item)
    view.set_probe({**item, "predicted": 1})  # the network changed, the signal did not
    assert calls == [2] and "predicted 1" in view.title_text()
    view.wait_for_encodings()
    assert view.curve(0, "raw")[1].size == sample(window, 2)[1]
    view.set_probe({**item, "index": 5})
    view.wait_for_encodings()
    assert calls == [2, 5] and view.curve(0, "raw")[1].size == sample(window, 5)[1]


def test_a_project_without_sequences_shows_why(make_main_window, qtbot):
    window = make_main_window()  # digits: images
    window.docks["signal"].raise_()
    qtbot.waitUntil(lambda: window._lazy["signal"].built is not None, timeout=3000)
    view = window.signal
    qtbot.waitUntil(lambda: "wb_datasets.digits" in view.hint_text(), timeout=10_000)
    assert "needs a sequence dataset (layout 'sequence')" in view.hint_text()
    assert view.encoders() == []


def test_the_threshold_band_is_the_value_before_each_step_plus_minus_its_threshold(qtbot):
    from workbench.core.runs.signal import EncodedSignal
    from workbench.gui.views.signal import SignalView

    view = SignalView()
    qtbot.addWidget(view)
    signal = np.array([[0.0, 0.5, 1.0, 0.2], [1.0, 1.0, 1.0, 1.0]])
    rebuilt = np.array([[0.0, 0.4, 0.8, 0.4], [1.0, 1.0, 1.0, 1.0]])
    spikes = np.array([[0, 0], [1, 0], [1, 0], [-1, 0]], np.int8)  # [T, C]
    thresholds = np.array([[0.4, 0.3], [0.4, 0.3], [0.4, 0.3], [0.4, 0.3]])
    adaptive = EncodedSignal("t.adaptive", "Adaptive", True, signal, spikes, rebuilt, thresholds)
    fixed = EncodedSignal("t.fixed", "Fixed", False, signal, spikes, rebuilt)
    view.set_encodings([adaptive, fixed])
    assert view.encoders() == ["t.adaptive", "t.fixed"]
    before = np.array([0.0, 0.0, 0.4, 0.8])  # step 0 has no step before it: its own value
    assert np.allclose(view.curve(0, "band_low")[1], before - 0.4)
    assert np.allclose(view.curve(0, "band_high")[1], before + 0.4)
    assert view.curve(1, "band_low")[1].size == 0  # no thresholds, no band
    legend = [label.text for _sample, label in view.plot_widget.ci.getItem(0, 0).legend.items]
    assert "threshold band" in legend
    assert view.figures(0).startswith("3 spikes · 375.0 spikes/ch/1000 samples · MSE ")
    view.set_channel(1)
    assert np.allclose(view.curve(0, "band_high")[1], 1.3)
    assert view.curve(0, "spikes_up")[0].size == 0  # channel 1 never spiked
    # the band's key (in the top row's legend) is there while any row draws a band
    for encodings, keyed in (([fixed], False), ([fixed, adaptive], True)):
        view.set_encodings(encodings)
        legend = view.plot_widget.ci.getItem(0, 0).legend
        labels = [label.text for _sample, label in legend.items]
        assert ("threshold band" in labels) is keyed and "reconstruction" in labels


class BrokenDecoder(DeltaEncoder):
    def decode(self, spikes, side):
        raise RuntimeError("decoder lost its state")


def test_a_failing_encoder_is_named_and_the_others_still_drawn(qtbot, tmp_path, caplog):
    from workbench.core.model.project import Component
    from workbench.core.model.specs import EncoderSpec
    from workbench.core.runs.session import Session
    from workbench.gui.views.signal import SignalView
    from workbench.pluginhost.registry import ContributionRegistry

    host = load_plugins(modules=["workbench.testing.toy_plugins"])
    broken = EncoderSpec(id="tests.broken", display_name="Broken", factory=BrokenDecoder)
    host.registry.add("tests", broken)
    project = load_project(shutil.copytree(toy_project_dir(), tmp_path / "toy"))
    project.encoder = Component("tests.broken")
    view = SignalView(lambda: Session(project, host.registry))
    qtbot.addWidget(view)
    with caplog.at_level("WARNING", logger="workbench.core.runs.signal"):
        view.set_probe({"index": 0})
        view.wait_for_encodings()  # encoded on the worker thread
    assert "toy_plugins.delta" in view.encoders() and "tests.broken" not in view.encoders()
    assert "encoder tests.broken: RuntimeError: decoder lost its state" in caplog.text

    # the only signal encoder there is: its failure takes the plots' place
    alone = ContributionRegistry()
    alone.add("toy_plugins", host.registry.get("toy_plugins.sequences"))
    alone.add("tests", broken)
    lonely = SignalView(lambda: Session(project, alone))
    qtbot.addWidget(lonely)
    lonely.set_probe({"index": 0})
    lonely.wait_for_encodings()
    assert lonely.hint_text().startswith("Encoder tests.broken: RuntimeError")
    assert lonely.encoders() == []


def test_a_long_band_is_drawn_as_its_envelope():
    from workbench.gui.views.signal import band_envelope

    low, high = np.arange(10.0), np.arange(10.0) + 1
    at, lows, highs = band_envelope(low, high, max_points=4)  # bins of 3 steps
    assert at.tolist() == [0, 3, 6, 9]
    assert lows.tolist() == [0, 3, 6, 9] and highs.tolist() == [3, 6, 9, 10]
    at, lows, highs = band_envelope(low, high, max_points=10)  # short enough: as it is
    assert at.tolist() == list(range(10)) and lows is low and highs is high


def test_vowels_qt_snn_shows_ternary_tae_spikes_and_the_decoders_error(make_main_window, qtbot):
    """Issue #13's bar: open the shipped JapaneseVowels QT-SNN, show a sample in the Signal
    tab: the spike train is ternary and the error printed is the TAE decoder's own."""
    from wb_qt_snn.tae import tae

    from workbench.core.persistence.examples import examples_dir

    window = make_main_window(load_project(examples_dir() / "vowels_qt_snn"))
    window.docks["signal"].raise_()
    qtbot.waitUntil(lambda: window._lazy["signal"].built is not None, timeout=3000)
    view = window.signal
    qtbot.waitUntil(lambda: bool(view.encoders()), timeout=20_000)
    assert view.encoders()[0] == "wb_qt_snn.tae"
    x, length = sample(window, 0)
    encoder = tae(**window.doc.project.encoder.params)
    spikes, side = encoder.encode(x, 29)
    train = spikes[:length, 0, 0].numpy()
    _up_t, up = view.curve(0, "spikes_up")
    _down_t, down = view.curve(0, "spikes_down")
    assert set(up) <= {0.0, 1.0} and set(down) <= {0.0, -1.0}
    assert set(np.unique(train)) <= {-1.0, 0.0, 1.0} and (train != 0).any()
    rebuilt = encoder.decode(spikes, side)[0, :, :length]
    mse = float(((rebuilt - x[0, :, :length]) ** 2).mean())
    assert f"MSE {mse:.3g}" in view.row_title(0)
    assert np.allclose(view.curve(0, "reconstruction")[1], rebuilt[0].numpy())
