"""Compression methods on the embedded digits, 3 seeds each: accuracy and model size.

For every seed the script trains the full-precision teachers from scratch (``digits_conv``,
``digits_q_snn`` and ``digits_bestformer``), then compresses copies of them in memory:

- uniform (vanilla) vs ReScaW quantisation at 2 and 4 bits (QP-SNN, docs/qp_snn.md);
- SVS vs L1-norm structured pruning at the same ratio (50 % of the prunable kernels);
- plain binary vs CIE-distilled binary (BESTformer, docs/bestformer.md);
- Q-SNN binary weights (docs/q_snn.md): on ``digits_conv`` plain sign vs WS-DR's weight half
  only (its two neuron layers are the first and the last, which spike regulation skips); on
  ``digits_q_snn`` (four neuron layers) plain sign without regulation vs both halves of WS-DR.

It prints mean ± std of test accuracy and of the model size (the rule of docs/wb_core.md) per row,
and each method's paired test against its baseline: the run is
``benchmarks/compression_bench.py --dataset digits`` (this file holds the digits rows and
``compress_row`` for it), with this script's 3 seeds as the default.

    python benchmarks/compression_digits.py [--seeds 0 1 2] [--finetune-epochs N]
                                            [--rows TEXT] [--json]

``--rows TEXT`` runs only the rows whose label contains TEXT (and their teachers).
"""

from __future__ import annotations

import sys

#: (row label, teacher project, method id, params)
ROWS = [
    ("full precision", "digits_conv", None, {}),
    ("uniform 4-bit", "digits_conv", "wb_qp_snn.uniform", {"bits": 4}),
    ("ReScaW 4-bit", "digits_conv", "wb_qp_snn.rescaw", {"bits": 4}),
    ("uniform 2-bit", "digits_conv", "wb_qp_snn.uniform", {"bits": 2}),
    ("ReScaW 2-bit", "digits_conv", "wb_qp_snn.rescaw", {"bits": 2}),
    ("L1 prune 50 %", "digits_conv", "wb_qp_snn.l1_prune", {"ratio": 0.5}),
    ("SVS prune 50 %", "digits_conv", "wb_qp_snn.svs_prune", {"ratio": 0.5}),
    ("Q-SNN binary: sign weights", "digits_conv", "wb_q_snn.q_snn",
     {"ws_dr": False, "spike_reg": 0.0}),
    ("Q-SNN binary: WS-DR weights only", "digits_conv", "wb_q_snn.q_snn", {"ws_dr": True}),
    ("Q-SNN deep full precision", "digits_q_snn", None, {}),
    ("Q-SNN deep: sign, no regulation", "digits_q_snn", "wb_q_snn.q_snn",
     {"ws_dr": False, "spike_reg": 0.0}),
    ("Q-SNN deep: WS-DR weights + spikes", "digits_q_snn", "wb_q_snn.q_snn", {"ws_dr": True}),
    ("BESTformer full precision", "digits_bestformer", None, {}),
    ("BESTformer plain binary", "digits_bestformer", "wb_bestformer.binarize", {}),
    ("BESTformer CIE binary", "digits_bestformer", "wb_bestformer.cie", {}),
]


def compress_row(session, method: str | None, params: dict) -> dict[str, float]:
    from workbench.core.runs import catalog
    from workbench.core.runs.compress import measure

    if method is None:
        figures = measure(session.model, session)
        return {"accuracy": figures["accuracy"], "bytes": figures["model_size_bytes"]}
    finished = catalog.compress(session, method=method, params=params).result()
    if finished.status != "ok":
        raise RuntimeError(f"{method} {params}: {finished.error}")
    after = finished.summary["after"]
    return {"accuracy": after["accuracy"], "bytes": after["model_size_bytes"]}


def main() -> int:
    from compression_bench import main as bench_main

    argv = sys.argv[1:]
    if "--seeds" not in argv:
        argv = ["--seeds", "0", "1", "2", *argv]
    sys.argv = [sys.argv[0], "--dataset", "digits", *argv]
    return bench_main()


if __name__ == "__main__":
    raise SystemExit(main())
