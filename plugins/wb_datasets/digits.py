"""The 8×8 handwritten digits that ship inside scikit-learn: the workbench's offline default.

1 797 images, 10 classes, no download: every installation can train something at once.
"""

from __future__ import annotations

import numpy as np

from workbench.pluginhost import ArraySplit, DatasetError, DatasetSplits

SOURCE = "scikit-learn load_digits (embedded)"


def declared_shape(*, test_fraction: float = 0.2, seed: int = 0) -> tuple[tuple[int, ...], int]:
    """``(input_shape, n_classes)`` of :func:`load_digits`, without importing scikit-learn
    (``snn-workbench info`` describes a network from it)."""
    return (1, 8, 8), 10


def load_digits(*, test_fraction: float = 0.2, seed: int = 0) -> DatasetSplits:
    """Load scikit-learn's digits and split them into train and test sets.

    Parameters
    ----------
    test_fraction
        Share of the images held out for testing.
    seed
        Seed of the split; the same seed always gives the same split.

    Returns
    -------
    DatasetSplits
        ``x`` float32 ``[N, 1, 8, 8]`` with the raw pixel values 0..16 and ``scale = 1/16``, so
        the network sees 0..1; labels 0..9.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    x, y = sk_load_digits(return_X_y=True)
    # Keep the raw 0..16 grey levels (exact in float32) and let ``scale`` map them to 0..1, as
    # the uint8 datasets do with 1/255: the stored data stays what the package shipped.
    x = x.astype(np.float32).reshape(-1, 1, 8, 8)
    y = y.astype(np.int64)
    try:
        # Stratified so that every class is in both splits, even for a small test fraction.
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=float(test_fraction), stratify=y, random_state=int(seed)
        )
    except ValueError as exc:
        raise DatasetError(f"cannot split the digits ({exc})", where=SOURCE) from None
    return DatasetSplits(
        train=ArraySplit(x_train, y_train, scale=1.0 / 16.0),
        test=ArraySplit(x_test, y_test, scale=1.0 / 16.0),
        input_shape=(1, 8, 8),
        class_names=[str(i) for i in range(10)],
        source=SOURCE,
    )
