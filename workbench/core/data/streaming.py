"""A split streamed from a map-style ``torch.utils.data.Dataset`` through a ``DataLoader``.

For data that does not fit in memory (or is decoded on the fly): :class:`StreamSplit` offers the
interface the runs use from :class:`~workbench.core.data.splits.ArraySplit` — ``len``,
``batch``, ``batches``, ``n_batches``, ``length_of``, ``sample_shape``, ``labels``, ``scale``
and ``offset`` — and visits samples in the same order for the same ``shuffle``/``seed``/
``limit``, so equal data gives equal batches whichever kind holds it.

Items are ``(x, y)`` or ``(x, y, length)``: ``x`` a tensor or array of one sample, ``y`` an
integer label, ``length`` the sample's own length along the time axis (variable-length
sequences). With ``pad_to`` items may be shorter along their last axis; they are zero-padded to
``pad_to`` as the batch is collated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from workbench.core.data.splits import sample_order
from workbench.core.model.errors import DatasetError


class _Collate:
    """Stack items into ``(x, y, lengths)``; a class, not a closure, so worker processes can
    pickle it."""

    def __init__(self, pad_to: int | None) -> None:
        self.pad_to = pad_to

    def __call__(self, items: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor, Any]:
        xs, ys, lengths = [], [], []
        for item in items:
            if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
                raise DatasetError("a dataset item must be (x, y) or (x, y, length), got "
                                   f"{type(item).__name__}")
            x = torch.as_tensor(np.asarray(item[0]) if not torch.is_tensor(item[0]) else item[0])
            if self.pad_to is not None and x.shape[-1] < self.pad_to:
                x = torch.nn.functional.pad(x, (0, self.pad_to - x.shape[-1]))
            xs.append(x)
            ys.append(int(item[1]))
            lengths.append(int(item[2]) if len(item) == 3 else None)
        try:
            x = default_collate(xs)
        except RuntimeError as exc:  # unequal shapes: name the fix, not torch's internals
            raise DatasetError(f"items of one batch differ in shape ({exc}); pad them, or give "
                               "StreamSplit(pad_to=...)") from None
        y = torch.tensor(ys, dtype=torch.int64)
        known = None if any(n is None for n in lengths) else torch.tensor(lengths,
                                                                         dtype=torch.int64)
        return x, y, known


class StreamSplit:
    """One split over ``dataset`` (items ``(x, y)`` or ``(x, y, length)``).

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Map-style: ``len(dataset)`` and ``dataset[i]``.
    scale, offset : float
        Map item values to network inputs, ``x * scale + offset`` (as ArraySplit).
    num_workers : int
        ``DataLoader`` worker processes; 0 reads in the calling thread.
    pad_to : int or None
        Zero-pad items along their last axis to this length (variable-length sequences).
    """

    def __init__(self, dataset: Dataset, *, scale: float = 1.0, offset: float = 0.0,
                 num_workers: int = 0, pad_to: int | None = None) -> None:
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise DatasetError(f"{type(dataset).__name__} is not a map-style dataset "
                               "(it needs __len__ and __getitem__)")
        if num_workers < 0:
            raise DatasetError("must be 0 or more", where="num_workers")
        self.dataset = dataset
        self.scale = float(scale)
        self.offset = float(offset)
        self.num_workers = int(num_workers)
        self.pad_to = pad_to
        self._collate = _Collate(pad_to)
        self._labels: np.ndarray | None = None
        #: which split of which dataset this is, for error messages (set by DatasetSplits)
        self.name = ""

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    # -- what one item says ----------------------------------------------------------------------
    def _item(self, index: int) -> tuple[torch.Tensor, torch.Tensor, Any]:
        return self._collate([self.dataset[int(index)]])

    def sample_shape(self) -> tuple[int, ...] | None:
        """The (padded) shape of the first item; None for an empty split."""
        if len(self) == 0:
            return None
        return tuple(int(s) for s in self._item(0)[0].shape[1:])

    def length_of(self, index: int) -> int | None:
        """The item's own length (items ``(x, y, length)``), else None."""
        lengths = self._item(index)[2]
        return None if lengths is None else int(lengths[0])

    def labels(self) -> np.ndarray:
        """All labels, ``int64[N]``: the dataset's ``targets`` when it has them (torchvision
        datasets do), else one pass over the items (cached)."""
        if self._labels is None:
            targets = getattr(self.dataset, "targets", None)
            if targets is not None and len(targets) == len(self):
                self._labels = np.asarray(targets, dtype=np.int64)
            else:
                self._labels = np.concatenate(
                    [y.numpy() for _x, y in self.batches(256)] or [np.zeros(0, np.int64)])
        return self._labels

    def stored(self, limit: int | None = None) -> np.ndarray:
        """The first ``limit`` inputs as the items hold them (before ``scale`` and ``offset``)."""
        n = len(self) if limit is None else min(limit, len(self))
        chunks = [x.numpy() for x, _y, _n in self._loader(np.arange(n), 256)]
        return np.concatenate(chunks) if chunks else np.zeros((0, *(self.sample_shape() or ())))

    # -- batches ---------------------------------------------------------------------------------
    def _loader(self, order: np.ndarray, batch_size: int) -> DataLoader:
        # The order is decided here (seeded, limited), so the loader itself never shuffles:
        # equal data gives equal batches as an ArraySplit's.
        return DataLoader(Subset(self.dataset, order.tolist()), batch_size=batch_size,
                          shuffle=False, num_workers=self.num_workers,
                          collate_fn=self._collate)

    def _scaled(self, x: torch.Tensor, order: Sequence[int]) -> torch.Tensor:
        x = x.to(torch.float32)
        if self.scale != 1.0:
            x = x * self.scale
        if self.offset != 0.0:
            x = x + self.offset
        # A stream cannot be checked whole at load; each batch is checked as it is read, so a
        # NaN still stops the run (naming the sample) before it reaches the weights.
        finite = torch.isfinite(x.reshape(len(x), -1)).all(dim=1)
        if not bool(finite.all()):
            sample = int(order[int((~finite).nonzero()[0])])
            raise DatasetError(f"sample {sample} holds NaN or infinite values; clean or drop it "
                               "(the network cannot learn from it)", where=self.name or "dataset")
        return x

    def batch(self, index: np.ndarray, *, lengths: bool = False):
        """``(x, y)`` tensors for the given sample indices (``(x, y, lengths)`` with
        ``lengths=True``)."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        # a few items (a probe's one sample): read here, without a loader and its workers
        x, y, n = self._collate([self.dataset[int(i)] for i in index])
        x = self._scaled(x, index)
        return (x, y, n) if lengths else (x, y)

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                limit: int | None = None, lengths: bool = False) -> Iterator:
        """Yield ``(x, y)`` tensor batches (``(x, y, lengths)`` with ``lengths=True``; lengths
        is None when the items carry none); ``limit`` caps the number of samples."""
        order = sample_order(len(self), shuffle=shuffle, seed=seed, limit=limit)
        if not len(order):
            return
        for start, (x, y, n) in zip(range(0, len(order), batch_size),
                                    self._loader(order, batch_size)):
            x = self._scaled(x, order[start : start + batch_size])
            yield (x, y, n) if lengths else (x, y)

    def n_batches(self, batch_size: int, limit: int | None = None) -> int:
        n = len(self) if limit is None else min(limit, len(self))
        return -(-n // batch_size)
