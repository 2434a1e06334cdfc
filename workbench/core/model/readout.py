"""How network outputs turn into class scores: per-step logits averaged over the T time steps,
the direct-training readout of the surrogate-gradient SNN papers (e.g. Wu et al., 2018, STBP).
"""

from __future__ import annotations


def class_scores(out):
    """``[T, B, C]`` per-step logits -> ``[B, C]`` by the mean over time; ``[B, C]`` as is."""
    return out.mean(0) if out.dim() == 3 else out


def count_correct(out, y, readout=class_scores) -> int:
    """How many of the batch's predictions (``readout(out).argmax``) equal ``y``; ``y`` may sit
    on another device than ``out`` (labels stay on the CPU in the views)."""
    scores = readout(out)
    return int((scores.argmax(-1) == y.to(scores.device)).sum())
