"""The two compression methods: ``binarize`` (any network) and ``cie`` (BESTformer only).

Both are generator functions ``apply(ctx, **params)`` of the core's compression contract
(:mod:`workbench.core.compress`). The teacher of both distillations is a frozen copy of the
network they are given, taken before any weight is binarised: the user's own trained
full-precision project (the released BESTformer code uses a fine-tuned ViT-B/16 instead;
see docs/bestformer.md).

- ``binarize``: binarise every weight layer but the first and the last (see
  :mod:`wb_bestformer.fakequant`), fine-tune with the straight-through estimator, freeze.
  Loss ``CE(out, y)``, or with ``distill`` the hard distillation
  ``(1 − α)·CE(out, y) + α·CE(out, argmax teacher(x))``.
- ``cie`` (Coupled Information Enhancement, BESTformer): the BESTformer node's binary
  layers are switched on (its first conv and both heads stay full precision) and fine-tuned
  with ``(1 − α)·CE(head(x0), y) + α·CE(head2(x1), argmax teacher(x))``; then frozen.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator
from typing import Any

import torch
import torch.nn.functional as F

from wb_bestformer import fakequant
from wb_bestformer.binary import freeze as freeze_layer
from wb_bestformer.builder import BESTformer
from workbench.pluginhost import CompressionContext, CompressionResult, class_scores, detach_quant

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` in eval mode without gradients: the teacher."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def teacher_labels(teacher: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``argmax`` of the teacher's time-averaged logits (hard distillation, docs/bestformer.md)."""
    with torch.no_grad():
        return class_scores(teacher(x)).argmax(-1)


def hard_distillation(teacher: torch.nn.Module, alpha: float) -> Loss:
    """``(1 − α)·CE(out, y) + α·CE(out, argmax teacher(x))`` on time-averaged logits."""
    def loss(out: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        scores = class_scores(out)
        return ((1 - alpha) * F.cross_entropy(scores, y)
                + alpha * F.cross_entropy(scores, teacher_labels(teacher, x)))
    return loss


def cie_loss(builder: BESTformer, teacher: torch.nn.Module, alpha: float) -> Loss:
    """``(1 − α)·CE(head(x0), y) + α·CE(head2(x1), argmax teacher(x))``; reads the two heads
    the builder kept during the forward that produced ``out``."""
    def loss(out: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if builder.last_heads is None:
            raise RuntimeError("the BESTformer did not keep its head outputs")
        h0, h1 = builder.last_heads
        return ((1 - alpha) * F.cross_entropy(class_scores(h0), y)
                + alpha * F.cross_entropy(class_scores(h1), teacher_labels(teacher, x)))
    return loss


def _with_binary_nodes(ctx: CompressionContext, node_ids: list[str]):
    """The project graph with ``binary: true`` on the given BESTformer nodes."""
    graph = ctx.graph
    for node_id in node_ids:
        graph.node(node_id).params["binary"] = True
    return graph


def _teacher_note(ctx: CompressionContext, builders: dict[str, BESTformer]):
    already = [n for n, b in builders.items() if b.binary]
    if already:
        yield ctx.log(f"node(s) {', '.join(already)} are already binary: the teacher is a binary "
                      "network, not a full-precision one", "warning")


def binarize(ctx: CompressionContext, finetune_epochs: int = 3, lr: float = 1e-3,
             distill: bool = False, alpha: float = 0.5
             ) -> Generator[Any, None, CompressionResult]:
    """Binarise all weight layers but the first and the last, fine-tune, freeze."""
    model = ctx.model
    x, _ = next(iter(ctx.batches(1)))
    p = fakequant.plan(model, x)
    if not p.binarize:
        raise ctx.fail(
            f"the network has {len(p.order)} weight layer(s) and the first and the last stay in "
            "full precision, so there is nothing to binarise; add hidden layers",
            node=model.output_node)
    builders = {n: m for n, m in model.layers.items() if isinstance(m, BESTformer)}
    teacher = None
    if distill:
        yield from _teacher_note(ctx, builders)
        teacher = frozen_copy(model)
    report: dict[str, Any] = p.report()
    yield ctx.log(f"binarising {len(p.binarize)} layer(s): {', '.join(report['binarized_layers'])}"
                  f"; full precision: {', '.join(report['full_precision_layers'])}")
    if p.scaled:
        yield ctx.log("no batch norm follows " + ", ".join(report["scaled_layers"])
                      + ": they keep a per-channel scale mean|W|")
    fakequant.apply(p)
    report["accuracy_binarized_before_finetune"] = ctx.accuracy(model)
    loss = hard_distillation(teacher, alpha) if teacher is not None else None
    history = yield from ctx.fine_tune(model, epochs=finetune_epochs, lr=lr, loss=loss,
                                       label="binary fine-tune")
    fakequant.freeze(p)
    report.update(history=history, distill=bool(distill),
                  teacher="the input project (frozen copy)" if distill else None)
    binarized = set(p.binarize)
    full = [n for n, b in builders.items()
            if all(name in binarized for name, m in model.named_modules()
                   if m in b.binary_layers())]
    graph = _with_binary_nodes(ctx, full) if full else None
    return CompressionResult(model, graph=graph, report=report)


def cie(ctx: CompressionContext, finetune_epochs: int = 3, lr: float = 1e-3, alpha: float = 0.5
        ) -> Generator[Any, None, CompressionResult]:
    """Coupled Information Enhancement: binarise the BESTformer, distil through its two heads."""
    model = ctx.model
    builders = {n: m for n, m in model.layers.items() if isinstance(m, BESTformer)}
    if not builders:
        raise ctx.fail(
            "Coupled Information Enhancement needs reversible two-stream blocks with two heads "
            "(a wb_bestformer.bestformer node), and this network has none; use "
            "wb_bestformer.binarize (with distill = true for a teacher) for other networks",
            node=model.output_node)
    if len(builders) > 1 or model.output_node not in builders:
        found = ", ".join(builders)
        raise ctx.fail(
            f"Coupled Information Enhancement needs the BESTformer node to be the network's only "
            f"one and its output (found {found}; the output is {model.output_node!r}); use "
            "wb_bestformer.binarize for other layouts", node=model.output_node)
    node_id, builder = next(iter(builders.items()))
    yield from _teacher_note(ctx, builders)
    teacher = frozen_copy(model)
    for layer in builder.binary_layers():
        detach_quant(layer)  # a frozen (earlier compressed) layer trains its latent weight again
    builder.set_binary(True)
    report: dict[str, Any] = {
        "binarized_layers": [f"{node_id}.{n}" for n, m in builder.named_modules()
                             if m in builder.binary_layers()],
        "full_precision_layers": [f"{node_id}.{n}" for n, m in builder.named_modules()
                                  if any(m is f for f in builder.full_precision_layers())],
        "teacher": "the input project (frozen copy)",
        "alpha": alpha,
        "accuracy_binarized_before_finetune": ctx.accuracy(model),
    }
    yield ctx.log(f"CIE: {len(report['binarized_layers'])} binary layer(s) in {node_id!r}, "
                  f"distilling from the input network through head2 (alpha {alpha:g})")
    builder.keep_heads = True
    try:
        history = yield from ctx.fine_tune(model, epochs=finetune_epochs, lr=lr,
                                           loss=cie_loss(builder, teacher, alpha),
                                           label="CIE fine-tune")
    finally:
        builder.keep_heads = False
        builder.last_heads = None
    for layer in builder.binary_layers():
        freeze_layer(layer)
    report["history"] = history
    return CompressionResult(model, graph=_with_binary_nodes(ctx, [node_id]), report=report)
