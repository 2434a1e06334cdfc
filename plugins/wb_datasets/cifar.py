"""CIFAR-10 and CIFAR-100, binary versions ("CIFAR-10 binary version (suitable for C programs)").

The binary files are flat records (label bytes, then 3 072 image bytes in channel, row, column
order), which numpy reads in one call. The Python versions are pickles and are not accepted:
unpickling a downloaded file can run arbitrary code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wb_datasets._common import check_labels, read_names, require_folder
from workbench.pluginhost import ArraySplit, DatasetError, DatasetSplits

IMAGE_BYTES = 3 * 32 * 32

CIFAR10_SUBDIR = "cifar-10-batches-bin"
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = "test_batch.bin"
CIFAR10_META = "batches.meta.txt"
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
CIFAR10_LAYOUT = (
    f"a folder (or a parent of {CIFAR10_SUBDIR}/) holding data_batch_1.bin ... data_batch_5.bin "
    f"(at least one) and {CIFAR10_TEST}, optionally {CIFAR10_META}"
)

CIFAR100_SUBDIR = "cifar-100-binary"
CIFAR100_TRAIN = "train.bin"
CIFAR100_TEST = "test.bin"
CIFAR100_LAYOUT = (
    f"a folder (or a parent of {CIFAR100_SUBDIR}/) holding {CIFAR100_TRAIN} and {CIFAR100_TEST}, "
    "optionally fine_label_names.txt and coarse_label_names.txt"
)
# The names the binary archive ships in its .txt files, used when those files were not kept.
CIFAR100_FINE = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch "
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo "
    "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse "
    "mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy "
    "porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper "
    "snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television "
    "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()
CIFAR100_COARSE = (
    "aquatic_mammals fish flowers food_containers fruit_and_vegetables "
    "household_electrical_devices household_furniture insects large_carnivores "
    "large_man-made_outdoor_things large_natural_outdoor_scenes large_omnivores_and_herbivores "
    "medium_mammals non-insect_invertebrates people reptiles small_mammals trees vehicles_1 "
    "vehicles_2"
).split()


def load_cifar10(*, path: str = "") -> DatasetSplits:
    """Load the binary CIFAR-10.

    Parameters
    ----------
    path
        The ``cifar-10-batches-bin`` folder, or a folder that contains it.

    Returns
    -------
    DatasetSplits
        ``x`` uint8 ``[N, 3, 32, 32]``, ``scale = 1/255``; the training split is every
        ``data_batch_*.bin`` present, concatenated in order.
    """
    folder = _dataset_folder(
        path, CIFAR10_SUBDIR, "the CIFAR-10 binary folder (cifar-10-batches-bin)", CIFAR10_LAYOUT
    )
    batches = [folder / name for name in CIFAR10_TRAIN if (folder / name).is_file()]
    if not batches:
        raise DatasetError(
            f"none of the training batches is there (missing {', '.join(CIFAR10_TRAIN)}); "
            f"expected {CIFAR10_LAYOUT}",
            where=str(folder),
        )
    test_file = _required(folder, CIFAR10_TEST, CIFAR10_LAYOUT)
    meta = folder / CIFAR10_META
    class_names = read_names(meta) if meta.is_file() else list(CIFAR10_CLASSES)
    parts = [_read_records(file, label_bytes=1, label_index=0) for file in batches]
    test_x, test_y = _read_records(test_file, label_bytes=1, label_index=0)
    labels_from = meta if meta.is_file() else None
    for file, (_, y) in [*zip(batches, parts), (test_file, (test_x, test_y))]:
        _check(y, class_names, file, labels_from)
    train_x = parts[0][0] if len(parts) == 1 else np.concatenate([x for x, _ in parts])
    train_y = np.concatenate([y for _, y in parts])
    return _splits(train_x, train_y, test_x, test_y, class_names, f"CIFAR-10 binary in {folder}")


def load_cifar100(*, path: str = "", labels: str = "fine") -> DatasetSplits:
    """Load the binary CIFAR-100.

    Parameters
    ----------
    path
        The ``cifar-100-binary`` folder, or a folder that contains it.
    labels
        ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).

    Returns
    -------
    DatasetSplits
        ``x`` uint8 ``[N, 3, 32, 32]``, ``scale = 1/255``.
    """
    if labels not in ("fine", "coarse"):
        raise DatasetError(
            f"labels must be 'fine' or 'coarse', got {labels!r}", where="params.labels"
        )
    folder = _dataset_folder(
        path, CIFAR100_SUBDIR, "the CIFAR-100 binary folder (cifar-100-binary)", CIFAR100_LAYOUT
    )
    train_file = _required(folder, CIFAR100_TRAIN, CIFAR100_LAYOUT)
    test_file = _required(folder, CIFAR100_TEST, CIFAR100_LAYOUT)
    names_file = folder / f"{labels}_label_names.txt"
    if names_file.is_file():
        class_names = read_names(names_file)
    else:
        class_names = list(CIFAR100_FINE if labels == "fine" else CIFAR100_COARSE)
    # Each record starts with the coarse label, then the fine one.
    index = 1 if labels == "fine" else 0
    train_x, train_y = _read_records(train_file, label_bytes=2, label_index=index)
    test_x, test_y = _read_records(test_file, label_bytes=2, label_index=index)
    labels_from = names_file if names_file.is_file() else None
    _check(train_y, class_names, train_file, labels_from)
    _check(test_y, class_names, test_file, labels_from)
    return _splits(
        train_x, train_y, test_x, test_y, class_names, f"CIFAR-100 binary ({labels}) in {folder}"
    )


def _dataset_folder(path: str, subdir: str, what: str, layout: str) -> Path:
    """The folder itself, or its ``subdir`` when the user pointed at the extraction parent."""
    folder = require_folder(path, what=what, layout=layout)
    nested = folder / subdir
    return nested if nested.is_dir() else folder


def _required(folder: Path, name: str, layout: str) -> Path:
    file = folder / name
    if not file.is_file():
        raise DatasetError(f"missing {name}; expected {layout}", where=str(folder))
    return file


def _read_records(
    file: Path, *, label_bytes: int, label_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read one binary batch into ``(x[N, 3, 32, 32] uint8, y[N])``.

    Raises
    ------
    DatasetError
        When the file cannot be read, is empty, or its size is not a whole number of records
        (the usual sign of a cut download, or of CIFAR-100 files given to CIFAR-10).
    """
    record = label_bytes + IMAGE_BYTES
    try:
        raw = np.fromfile(file, dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"cannot read CIFAR batch ({exc})", where=str(file)) from None
    if raw.size == 0 or raw.size % record:
        raise DatasetError(
            f"file is {raw.size} bytes, not a whole number of {record}-byte records "
            f"({label_bytes} label byte{'s' if label_bytes > 1 else ''} + "
            f"{IMAGE_BYTES} image bytes)",
            where=str(file),
        )
    rows = raw.reshape(-1, record)
    # Copy the images out of the records so the label bytes between them are not kept alive
    # and the array is contiguous for fast batching.
    x = np.ascontiguousarray(rows[:, label_bytes:]).reshape(-1, 3, 32, 32)
    return x, rows[:, label_index].astype(np.int64)


def _check(y: np.ndarray, class_names: list[str], file: Path, names_from: Path | None) -> None:
    try:
        check_labels(y, class_names, where=str(file))
    except DatasetError as exc:
        if names_from is None:
            raise
        # The names file is as likely the culprit as the batch: say where the count came from.
        raise DatasetError(
            f"{exc.message} (class names from {names_from.name})", where=exc.where
        ) from None


def _splits(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    class_names: list[str],
    source: str,
) -> DatasetSplits:
    return DatasetSplits(
        train=ArraySplit(train_x, train_y, scale=1.0 / 255.0),
        test=ArraySplit(test_x, test_y, scale=1.0 / 255.0),
        input_shape=(3, 32, 32),
        class_names=class_names,
        source=source,
    )
