"""Datasets as the runs consume them.

Dataset plugins return :class:`DatasetSplits` of two splits. An :class:`ArraySplit` keeps numpy
arrays in their stored dtype (uint8 images stay uint8) and converts them to float tensors one
batch at a time, so a 50 000-image CIFAR training set costs 150 MB, not 600 MB. A
:class:`~workbench.core.data.streaming.StreamSplit` reads a map-style torch ``Dataset`` through
a ``DataLoader`` instead, for data that does not fit in memory. Both offer the same interface:
``len``, ``batch``, ``batches``, ``n_batches``, ``length_of``, ``sample_shape``, ``labels``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.core.model.errors import DatasetError


@dataclass
class ArraySplit:
    """One split: inputs ``x[N, ...]`` and integer labels ``y[N]``.

    ``scale`` and ``offset`` map stored values to network inputs: ``x * scale + offset``.
    """

    x: np.ndarray
    y: np.ndarray
    scale: float = 1.0
    offset: float = 0.0
    #: per-sample lengths along the time axis of variable-length sequences (``x`` is padded
    #: with zeros after each sample's length); None for fixed-size samples
    lengths: np.ndarray | None = None
    #: which split of which dataset this is, for error messages (set by DatasetSplits)
    name: str = ""

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise DatasetError(f"{len(self.x)} inputs but {len(self.y)} labels")
        self.y = _integer_labels(self.y)
        if self.lengths is not None:
            self.lengths = np.asarray(self.lengths, dtype=np.int64)
            if self.lengths.shape != self.y.shape:
                raise DatasetError(f"{len(self.lengths)} lengths for {len(self.y)} samples")

    def length_of(self, index: int) -> int | None:
        """The sample's own length (variable-length sequences), else None."""
        return None if self.lengths is None else int(self.lengths[index])

    def first_non_finite(self) -> int | None:
        """The index of the first sample holding NaN or ±inf (after ``scale`` and ``offset``),
        else None. Read in chunks, so the check costs a few MB however big the split."""
        if not (math.isfinite(self.scale) and math.isfinite(self.offset)):
            return 0 if len(self) else None
        if not np.issubdtype(self.x.dtype, np.floating) and not np.issubdtype(
                self.x.dtype, np.complexfloating):
            return None  # integers (uint8 images) cannot hold NaN
        rows = max(1, _CHECK_CHUNK // max(1, int(np.prod(self.x.shape[1:], dtype=np.int64))))
        for start in range(0, len(self), rows):
            chunk = np.asarray(self.x[start : start + rows]).reshape(min(rows, len(self) - start),
                                                                     -1)
            bad = ~np.isfinite(chunk).all(axis=1)
            if bad.any():
                return start + int(np.argmax(bad))
        return None

    def __len__(self) -> int:
        return len(self.y)

    def sample_shape(self) -> tuple[int, ...]:
        """The (padded) shape of one sample."""
        return tuple(int(s) for s in self.x.shape[1:])

    def labels(self) -> np.ndarray:
        """All labels, ``int64[N]``."""
        return self.y

    def stored(self, limit: int | None = None) -> np.ndarray:
        """The first ``limit`` inputs as stored (before ``scale`` and ``offset``)."""
        return np.asarray(self.x if limit is None else self.x[:limit])

    def batch(self, index: np.ndarray, *, lengths: bool = False):
        """Return ``(x, y)`` tensors for the given sample indices (``(x, y, lengths)`` with
        ``lengths=True``; see :meth:`batches`)."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(self.x[index])).to(torch.float32)
        if self.scale != 1.0:
            x = x * self.scale
        if self.offset != 0.0:
            x = x + self.offset
        y = torch.from_numpy(self.y[index])
        if not lengths:
            return x, y
        return x, y, None if self.lengths is None else torch.from_numpy(self.lengths[index])

    def batches(
        self, batch_size: int, *, shuffle: bool = False, seed: int = 0, limit: int | None = None,
        lengths: bool = False,
    ) -> Iterator:
        """Yield ``(x, y)`` tensor batches; ``limit`` caps the number of samples.

        With ``lengths=True`` each batch is ``(x, y, lengths)``: ``int64[B]`` per-sample
        lengths of variable-length sequences, or None when the samples have no lengths."""
        for index in batch_order(len(self), batch_size, shuffle=shuffle, seed=seed, limit=limit):
            yield self.batch(index, lengths=lengths)

    def n_batches(self, batch_size: int, limit: int | None = None) -> int:
        n = len(self) if limit is None else min(limit, len(self))
        return -(-n // batch_size)


#: elements checked per chunk when looking for non-finite inputs
_CHECK_CHUNK = 1 << 20


def _integer_labels(y: Any) -> np.ndarray:
    """Labels as ``int64``; a NaN, a fraction or a negative label is a dataset error, not a
    silent cast to some class."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        finite = np.isfinite(y)
        if not finite.all():
            raise DatasetError(f"label of sample {int(np.argmax(~finite))} is {y[~finite][0]}; "
                               "labels must be class numbers 0, 1, 2, …", where="labels")
        whole = y == np.round(y)
        if not whole.all():
            raise DatasetError(f"label of sample {int(np.argmax(~whole))} is "
                               f"{y[~whole][0]}; labels must be whole class numbers",
                               where="labels")
    elif y.dtype.kind not in "iub" and len(y):
        raise DatasetError(f"labels must be integer class numbers, got {y.dtype} values",
                           where="labels")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise DatasetError(f"label of sample {int(np.argmax(y < 0))} is {int(y.min())}; class "
                           "numbers start at 0", where="labels")
    return y


def sample_order(n_samples: int, *, shuffle: bool, seed: int, limit: int | None) -> np.ndarray:
    """The sample indices one pass visits: the first ``limit`` of a seeded permutation (or of
    ``0..N-1``). Shared by every split kind, so equal data gives equal batches."""
    n = n_samples if limit is None else min(limit, n_samples)
    return np.random.default_rng(seed).permutation(n_samples)[:n] if shuffle else np.arange(n)


def batch_order(n_samples: int, batch_size: int, *, shuffle: bool, seed: int,
                limit: int | None) -> list[np.ndarray]:
    """:func:`sample_order` cut into batches of ``batch_size``."""
    order = sample_order(n_samples, shuffle=shuffle, seed=seed, limit=limit)
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


#: what a sample is; see :class:`DatasetSplits`
LAYOUTS = ("image", "vector", "sequence", "events")
#: the layout a sample of each rank has unless the dataset declares one
_LAYOUT_OF_RANK = {1: "vector", 2: "sequence", 3: "image"}


@dataclass
class DatasetSplits:
    """What a dataset plugin returns: a train and a test split and their description.

    ``input_shape`` is the per-sample shape (padded, for variable-length sequences).
    ``layout`` says what a sample is:

    - ``"image"``: ``[C, H, W]`` (the default for rank 3);
    - ``"vector"``: ``[D]`` (the default for rank 1);
    - ``"sequence"``: ``[C, L]``, ``C`` channels over ``L`` time steps (the default for
      rank 2); variable lengths are padded to ``L`` (the dataset chooses how: zeros, or each
      series' last value) and the splits carry the lengths;
    - ``"events"``: event frames or streams (the default for any other rank).

    ``time_axis`` is the axis of a sample that is time: ``-1`` for ``"sequence"`` (the last
    one), None for the others unless the dataset declares it (event frames ``[T, C, H, W]``
    would say 0). An encoder that sets T from the data reads it there.
    ``source`` says where the data came from (a path, or the package that ships it).
    Splits are :class:`ArraySplit` or :class:`~workbench.core.data.streaming.StreamSplit`.
    """

    train: Any
    test: Any
    input_shape: tuple[int, ...]
    class_names: list[str] = field(default_factory=list)
    source: str = ""
    layout: str = ""
    time_axis: int | None = None

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(s) for s in self.input_shape)
        rank = len(self.input_shape)
        if not self.layout:
            self.layout = _LAYOUT_OF_RANK.get(rank, "events")
        if self.layout not in LAYOUTS:
            raise DatasetError(f"layout {self.layout!r} is not one of {', '.join(LAYOUTS)}",
                               where=self.source or "layout")
        if self.layout == "sequence" and rank != 2:
            raise DatasetError(f"a sequence sample is [C, L], got {list(self.input_shape)}",
                               where=self.source or "input_shape")
        if self.time_axis is None and self.layout == "sequence":
            self.time_axis = -1
        if self.time_axis is not None and not -rank <= self.time_axis < rank:
            raise DatasetError(f"time_axis {self.time_axis} is not an axis of a "
                               f"{list(self.input_shape)} sample",
                               where=self.source or "time_axis")
        for name, split in (("train", self.train), ("test", self.test)):
            where = f"{self.source}: {name} split" if self.source else f"{name} split"
            # Non-finite inputs are reported here, at load, naming the sample: trained on, a
            # single NaN pixel turns every weight into NaN.
            check = getattr(split, "first_non_finite", None)
            bad = check() if check is not None else None
            if bad is not None:
                raise DatasetError(f"sample {bad} holds NaN or infinite values; clean or drop "
                                   "it (the network cannot learn from it)", where=where)
            if hasattr(split, "name"):
                split.name = where
            shape = split.sample_shape()
            if shape is not None and shape != self.input_shape:  # None: an empty stream
                raise DatasetError(
                    f"{name} inputs have shape {list(shape)}, expected {list(self.input_shape)}",
                    where=where)
        if not self.class_names:
            top = max(self.train.labels().max(initial=-1), self.test.labels().max(initial=-1))
            self.class_names = [str(i) for i in range(int(top) + 1)]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)
