"""Backpropagation through time with surrogate gradients."""

from __future__ import annotations

import math

import torch

from wb_core.backward_metrics import BackwardMetrics
from wb_core.losses import LOSSES
from workbench.pluginhost import class_scores, count_correct


class BPTTTrainer:
    """One optimiser step per batch on the loss of the whole ``[T, B, ...]`` sequence.

    The learning rate follows a cosine from ``lr`` down to ``lr * min_lr_ratio`` over
    ``epochs * steps_per_epoch`` steps (or stays constant with ``schedule="constant"``).

    Every step also reports what its backward pass touched (:mod:`wb_core.backward_metrics`):
    ``backward_events`` (every neuron at every step under a surrogate gradient, only the
    spikes of event-driven neurons), ``dense_backward_events``, ``silent_fraction.<layer>``
    and ``grad_norm.<layer>``.
    """

    def __init__(self, model: torch.nn.Module, *, epochs: int, steps_per_epoch: int,
                 optimizer: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                 momentum: float = 0.9, schedule: str = "cosine", min_lr_ratio: float = 0.0,
                 loss: str = "mean_ce", grad_clip: float = 0.0) -> None:
        self.model = model
        self.loss_fn = LOSSES[loss]
        self.grad_clip = grad_clip
        params = [p for p in model.parameters() if p.requires_grad]
        if optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        elif optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        else:
            self.optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum,
                                             weight_decay=weight_decay)
        total = max(1, epochs * steps_per_epoch)
        if schedule == "cosine":
            def factor(step: int) -> float:
                cos = 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
                return min_lr_ratio + (1.0 - min_lr_ratio) * cos
        else:
            def factor(step: int) -> float:
                return 1.0
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.backward_metrics = BackwardMetrics(model)
        self.metric_reductions = self.backward_metrics.reductions()

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    #: the read-out that counts a batch's correct answers (a rule on firing times overrides it)
    readout = staticmethod(class_scores)

    def forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(out, loss)`` of one batch: the one part a rule with its own loss overrides (the
        optimiser, schedule, clipping and metrics stay this trainer's)."""
        out = self.model(x)
        return out, self.loss_fn(out, y)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        self.model.train()
        with self.backward_metrics.recording() as counts:
            out, loss = self.forward_loss(x, y)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss.item()} (NaN or infinite); lower the learning rate"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norms = self.backward_metrics.grad_norms()  # before clipping: what backward gave
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return {"loss": float(loss.detach()),
                "correct": count_correct(out.detach(), y, self.readout),
                "count": int(y.shape[0]), **self.backward_metrics.step_metrics(counts),
                **grad_norms}
