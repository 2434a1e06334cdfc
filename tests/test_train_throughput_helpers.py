"""The training-throughput benchmarks' bookkeeping: medians and ranges over runs, the order the
frameworks take turns in, our ratio to the fastest peer, and the networks' flatten sizes. No
timing: the timed call is replaced by one returning fixed figures."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def tt(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("train_throughput")


@pytest.fixture
def nets(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("snn_nets")


class _Stub:
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    def enter(self) -> None:
        pass

    def step(self) -> None:
        self.calls.append(self.name)


def test_time_runs_reports_median_and_range_and_rotates_the_order(tt, nets, monkeypatch):
    figures = {"ours-eager": [5.0, 1.0, 4.0, 2.0, 3.0], "snntorch": [10.0, 30.0, 20.0, 50.0, 40.0]}
    order: list[str] = []

    def fake_timed(fn, seconds, batch):
        fn()  # the stub records who ran
        name = order[-1]
        return figures[name][sum(1 for o in order if o == name) - 2]  # after the untimed call

    monkeypatch.setattr(tt, "timed", fake_timed)
    runners = {fw: _Stub(fw, order) for fw in figures}
    info = {fw: {"warmup_s": 0.0, "spike_rate": None, "error": None} for fw in figures}
    rows = tt.time_runs(nets.NETS["mlp"], runners, info, "step", 0.0, 5, lambda _m: None)
    # one untimed call each, then runs alternating who goes first: e/s, s/e, e/s, s/e, e/s
    assert order[2:] == ["ours-eager", "snntorch", "snntorch", "ours-eager"] * 2 + [
        "ours-eager", "snntorch"]
    assert (rows["ours-eager"]["median"], rows["ours-eager"]["min"],
            rows["ours-eager"]["max"]) == (3.0, 1.0, 5.0)
    assert (rows["snntorch"]["median"], rows["snntorch"]["min"],
            rows["snntorch"]["max"]) == (30.0, 10.0, 50.0)
    assert tt.ratio_to_peers(rows) == pytest.approx(0.1)


def test_ratio_takes_our_best_mode_over_the_fastest_peer_and_skips_failures(tt):
    rows = {"ours-eager": {"median": 100.0}, "ours-fused": {"median": 150.0},
            "ours-compiled": {"median": None},
            "snntorch": {"median": 60.0}, "spikingjelly": {"median": 120.0}}
    assert tt.ratio_to_peers(rows) == pytest.approx(1.25)
    assert tt.ratio_to_peers({"ours-eager": {"median": 1.0},
                              "snntorch": {"median": None}}) is None


def test_rotations_start_each_run_one_framework_later(tt):
    assert tt.rotations(["a", "b", "c"], 4) == [["a", "b", "c"], ["b", "c", "a"],
                                                ["c", "a", "b"], ["a", "b", "c"]]
    assert tt.rotations([], 2) == [[], []]


@pytest.mark.parametrize("name, features", [("conv", 64 * 2 * 2), ("conv28", 64 * 7 * 7),
                                            ("vgg", 256 * 4 * 4)])
def test_flatten_sizes_follow_the_pools(nets, name, features):
    assert nets.flat_features(nets.NETS[name]) == features
