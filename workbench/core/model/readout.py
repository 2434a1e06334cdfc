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


def earliest_spike(out):
    """Time-to-first-spike read-out: ``[1, B, C]`` (or ``[B, C]``) output firing times ->
    ``[B, C]`` scores ``-t``, so the class whose neuron fired first scores highest. A silent
    output (``inf``) scores below every neuron that fired (the lowest finite float), never
    ``-inf``: scores stay finite for a softmax, and a batch where nothing fired ties at class 0."""
    import torch

    times = out[-1] if out.dim() == 3 else out
    lowest = torch.finfo(times.dtype).min
    return torch.where(torch.isfinite(times), -times, torch.full_like(times, lowest))
