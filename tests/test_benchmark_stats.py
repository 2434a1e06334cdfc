"""The compression and attention benchmarks' helpers: the paired tests over seeds, which rows
are compared, and the MNIST-1D networks they train (compiled here, never trained).

The expected p-values are computed by hand: the t distribution's CDF with 4 degrees of
freedom has a closed form, and the Wilcoxon signed-rank test's exact distribution for 5 pairs
is a count over the 32 sign patterns.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("compression_bench")


def t4_two_sided_p(t: float) -> float:
    """Two-sided p of Student's t with 4 degrees of freedom, from its closed-form CDF
    ``F(t) = 1/2 + 3/8 · u · (1 − u²/12)``, ``u = t / sqrt(1 + t²/4)``."""
    u = t / math.sqrt(1 + t * t / 4)
    return 2 * (1 - (0.5 + 3 / 8 * u * (1 - u * u / 12)))


def test_paired_t_test_matches_a_hand_computed_example(bench):
    baseline = [0.81, 0.82, 0.83, 0.84, 0.85]
    method = [0.82, 0.84, 0.83, 0.86, 0.87]
    # differences 1, 2, 0, 2, 2 points: mean 1.4, sample variance 3.2/4 = 0.8, so
    # t = 1.4 / (sqrt(0.8) / sqrt(5)) = 1.4 / 0.4 = 3.5 with 4 degrees of freedom
    result = bench.paired_test(baseline, method)
    assert result["n"] == 5
    assert result["mean_diff"] == pytest.approx(0.014)
    assert result["std_diff"] == pytest.approx(0.01 * math.sqrt(0.8))
    assert result["t"] == pytest.approx(3.5)
    assert result["p_t"] == pytest.approx(t4_two_sided_p(3.5), rel=1e-9)
    assert result["p_t"] == pytest.approx(0.0249, abs=1e-4)  # the table's value, as a check
    # the order matters: method − baseline
    assert bench.paired_test(method, baseline)["t"] == pytest.approx(-3.5)


@pytest.mark.parametrize(("diffs", "expected"), [
    # all five positive: only the all-plus pattern (of 32) is as extreme on each side
    ([1, 2, 3, 4, 5], 2 / 32),
    # the smallest one negative: W- = 1; patterns with W- <= 1 are {} and {1}, on each side
    ([-1, 2, 3, 4, 5], 2 * 2 / 32),
])
def test_wilcoxon_p_is_the_exact_count_over_sign_patterns(bench, diffs, expected):
    baseline = [0.5] * 5
    method = [0.5 + d / 100 for d in diffs]
    assert bench.paired_test(baseline, method)["p_wilcoxon"] == pytest.approx(expected)


def test_undefined_tests_give_none(bench):
    same = bench.paired_test([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert same["mean_diff"] == 0 and same["p_t"] is None and same["p_wilcoxon"] is None
    shifted = bench.paired_test([0.5, 0.6, 0.7], [0.51, 0.61, 0.71])
    assert shifted["t"] is None and shifted["p_t"] is None  # no spread: t is undefined
    assert shifted["p_wilcoxon"] == pytest.approx(2 / 8)
    single = bench.paired_test([0.5], [0.6])
    assert single["p_t"] is None and single["p_wilcoxon"] is None
    with pytest.raises(ValueError, match="2 baseline values but 1 method values"):
        bench.paired_test([0.5, 0.6], [0.5])


def test_each_method_is_paired_with_its_baseline_on_the_same_teacher(bench):
    rows = [
        ("full", "a", None, {}),
        ("u4", "a", "wb_qp_snn.uniform", {"bits": 4}),
        ("u2", "a", "wb_qp_snn.uniform", {"bits": 2}),
        ("r2", "a", "wb_qp_snn.rescaw", {"bits": 2}),
        ("r4", "a", "wb_qp_snn.rescaw", {"bits": 4}),
        ("r4 on b", "b", "wb_qp_snn.rescaw", {"bits": 4}),  # no baseline on teacher b
        ("l1 50", "a", "wb_qp_snn.l1_prune", {"ratio": 0.5}),
        ("svs 80", "a", "wb_qp_snn.svs_prune", {"ratio": 0.8}),  # no L1 at 80 %
        ("svs 50", "a", "wb_qp_snn.svs_prune", {"ratio": 0.5}),
        ("sign", "q", "wb_q_snn.q_snn", {"ws_dr": False, "spike_reg": 0.0}),
        ("ws-dr", "q", "wb_q_snn.q_snn", {"ws_dr": True}),
        ("plain", "t", "wb_bestformer.binarize", {}),
        ("cie", "t", "wb_bestformer.cie", {}),
    ]
    assert bench.pairs(rows) == [("u2", "r2"), ("u4", "r4"), ("l1 50", "svs 50"),
                                 ("sign", "ws-dr"), ("plain", "cie")]
    assert len(bench.pairs(bench.MNIST1D_ROWS)) == 6  # 2 bit widths, 2 ratios, Q-SNN, CIE


@pytest.mark.parametrize("teacher", ["mnist1d_conv", "mnist1d_q_snn", "mnist1d_bestformer"])
def test_mnist1d_teachers_compile_on_their_layout(bench, plugin_host, teacher):
    from wb_datasets.mnist_1d import SHAPES

    from workbench.core.runs.session import Session

    project = bench.teacher_project(teacher)
    assert project.dataset.id == "wb_datasets.mnist1d" and project.folder is None
    layout = project.dataset.params["layout"]
    model = Session(project, plugin_host.registry).build(load_saved_weights=False,
                                                         shape=(SHAPES[layout], 10))
    assert model.output_shape[-1] == 10


@pytest.mark.parametrize(("tokens", "grid"), [(40, (1, 40)), (20, (1, 20))])
def test_the_row_layout_gives_one_token_per_column(bench, monkeypatch, plugin_host, tokens,
                                                   grid):
    from wb_datasets.mnist_1d import SHAPES

    from workbench.core.runs.session import Session

    attention = importlib.import_module("attention_mnist1d")
    project = bench.on_mnist1d(attention.EXAMPLES["sssa"], "row")
    for node in project.graph.nodes:
        if node.spec == "wb_snn_vit.gl_sps":
            node.params["pool_stages"] = attention.POOL_STAGES[tokens]
    model = Session(project, plugin_host.registry).build(load_saved_weights=False,
                                                         shape=(SHAPES["row"], 10))
    assert model.layers["embed"].grid == grid
