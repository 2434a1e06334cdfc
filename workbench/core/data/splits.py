"""In-memory datasets as the runs consume them.

Dataset plugins return :class:`DatasetSplits`: numpy arrays kept in their stored dtype (uint8
images stay uint8) and converted to float tensors one batch at a time, so a 50 000-image CIFAR
training set costs 150 MB, not 600 MB.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

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

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise DatasetError(f"{len(self.x)} inputs but {len(self.y)} labels")
        self.y = np.asarray(self.y, dtype=np.int64)
        if self.lengths is not None:
            self.lengths = np.asarray(self.lengths, dtype=np.int64)
            if self.lengths.shape != self.y.shape:
                raise DatasetError(f"{len(self.lengths)} lengths for {len(self.y)} samples")

    def length_of(self, index: int) -> int | None:
        """The sample's own length (variable-length sequences), else None."""
        return None if self.lengths is None else int(self.lengths[index])

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, index: np.ndarray):
        """Return ``(x, y)`` tensors for the given sample indices."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(self.x[index])).to(torch.float32)
        if self.scale != 1.0:
            x = x * self.scale
        if self.offset != 0.0:
            x = x + self.offset
        return x, torch.from_numpy(self.y[index])

    def batches(
        self, batch_size: int, *, shuffle: bool = False, seed: int = 0, limit: int | None = None
    ) -> Iterator:
        """Yield ``(x, y)`` tensor batches; ``limit`` caps the number of samples."""
        n = len(self) if limit is None else min(limit, len(self))
        order = np.random.default_rng(seed).permutation(len(self))[:n] if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            yield self.batch(order[start : start + batch_size])

    def n_batches(self, batch_size: int, limit: int | None = None) -> int:
        n = len(self) if limit is None else min(limit, len(self))
        return -(-n // batch_size)


@dataclass
class DatasetSplits:
    """What a dataset plugin returns: a train and a test split and their description.

    ``input_shape`` is the per-sample shape (``[C, H, W]`` for images, ``[D]`` for vectors).
    ``source`` says where the data came from (a path, or the package that ships it).
    """

    train: ArraySplit
    test: ArraySplit
    input_shape: tuple[int, ...]
    class_names: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(s) for s in self.input_shape)
        for name, split in (("train", self.train), ("test", self.test)):
            if tuple(split.x.shape[1:]) != self.input_shape:
                raise DatasetError(
                    f"{name} inputs have shape {list(split.x.shape[1:])}, "
                    f"expected {list(self.input_shape)}",
                    where=self.source,
                )
        if not self.class_names:
            n = int(max(self.train.y.max(initial=-1), self.test.y.max(initial=-1))) + 1
            self.class_names = [str(i) for i in range(n)]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)
