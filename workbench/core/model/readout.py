"""How network outputs turn into class scores: per-step logits averaged over the T time steps,
the direct-training readout of the surrogate-gradient SNN papers (e.g. Wu et al., 2018, STBP).
"""

from __future__ import annotations


def class_scores(out):
    """``[T, B, C]`` per-step logits -> ``[B, C]`` by the mean over time; ``[B, C]`` as is."""
    return out.mean(0) if out.dim() == 3 else out


def count_correct(out, y) -> int:
    return int((class_scores(out).argmax(-1) == y).sum())
