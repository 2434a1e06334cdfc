"""MNIST and Fashion-MNIST from their idx files, parsed here with numpy.

The idx format is tiny (a big-endian magic number, the dimensions, then raw bytes), so parsing it
directly avoids depending on torchvision and lets every check name the file that is wrong.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from wb_datasets._common import check_labels, require_folder
from workbench.pluginhost import ArraySplit, DatasetError, DatasetSplits

#: The four files of both datasets, in the order (train images, train labels, test ...).
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
#: Magic numbers: two zero bytes, the element type (0x08 = unsigned byte), the number of dims.
MAGIC_IMAGES = 0x00000803
MAGIC_LABELS = 0x00000801

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
MNIST_CLASSES = [str(i) for i in range(10)]

LAYOUT = "a folder holding " + ", ".join(FILES) + " (each may end in .gz)"


def load_mnist(*, path: str = "") -> DatasetSplits:
    """Load MNIST from a folder holding the four idx files.

    Parameters
    ----------
    path
        The folder; each file may be gzipped (``.gz`` suffix).

    Returns
    -------
    DatasetSplits
        ``x`` uint8 ``[N, 1, 28, 28]``, ``scale = 1/255``; 60 000 train and 10 000 test images.
    """
    return _load("MNIST", path, MNIST_CLASSES)


def load_fashion_mnist(*, path: str = "") -> DatasetSplits:
    """Load Fashion-MNIST from a folder holding the four idx files (same layout as MNIST).

    Parameters
    ----------
    path
        The folder; each file may be gzipped (``.gz`` suffix).

    Returns
    -------
    DatasetSplits
        ``x`` uint8 ``[N, 1, 28, 28]``, ``scale = 1/255``; class names "T-shirt/top" ... .
    """
    return _load("Fashion-MNIST", path, FASHION_CLASSES)


def _load(name: str, path: str, class_names: list[str]) -> DatasetSplits:
    folder = require_folder(
        path, what=f"the folder holding the four {name} idx files ({LAYOUT})", layout=LAYOUT
    )
    found: dict[str, Path] = {}
    missing = []
    for base in FILES:
        file = _find(folder, base)
        if file is None:
            missing.append(base)
        else:
            found[base] = file
    if missing:
        raise DatasetError(
            f"missing {', '.join(missing)} (with or without .gz); expected {LAYOUT}",
            where=str(folder),
        )
    train_x = read_idx(found[FILES[0]], MAGIC_IMAGES)
    train_y = read_idx(found[FILES[1]], MAGIC_LABELS)
    test_x = read_idx(found[FILES[2]], MAGIC_IMAGES)
    test_y = read_idx(found[FILES[3]], MAGIC_LABELS)
    for images, labels, ifile, lfile in (
        (train_x, train_y, found[FILES[0]], found[FILES[1]]),
        (test_x, test_y, found[FILES[2]], found[FILES[3]]),
    ):
        # A mismatch means files from two different downloads; ArraySplit would catch it too,
        # but without saying which files disagree.
        if len(images) != len(labels):
            raise DatasetError(
                f"{len(images)} images but {lfile.name} holds {len(labels)} labels",
                where=str(ifile),
            )
        check_labels(labels, class_names, where=str(lfile))
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DatasetError(
            f"test images are {test_x.shape[1]}×{test_x.shape[2]} but training images are "
            f"{train_x.shape[1]}×{train_x.shape[2]}",
            where=str(found[FILES[2]]),
        )
    height, width = train_x.shape[1:]
    return DatasetSplits(
        # Add the channel axis as a view: no copy of the 47 MB training images.
        train=ArraySplit(train_x[:, None], train_y, scale=1.0 / 255.0),
        test=ArraySplit(test_x[:, None], test_y, scale=1.0 / 255.0),
        input_shape=(1, height, width),
        class_names=list(class_names),
        source=f"{name} idx files in {folder}",
    )


def _find(folder: Path, base: str) -> Path | None:
    """Return ``folder/base`` or ``folder/base.gz``, whichever exists (plain first)."""
    for candidate in (folder / base, folder / f"{base}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(file: Path, magic: int) -> np.ndarray:
    """Read one unsigned-byte idx file, gzipped or not.

    Parameters
    ----------
    file
        The file; a ``.gz`` suffix means gzip-compressed.
    magic
        The expected magic number: :data:`MAGIC_IMAGES` (3 dims) or :data:`MAGIC_LABELS` (1 dim).

    Returns
    -------
    numpy.ndarray
        uint8 array of the shape the header gives (``[N, H, W]`` or ``[N]``).

    Raises
    ------
    DatasetError
        When the file cannot be read, the magic number is wrong, or the payload is shorter or
        longer than the header announces.
    """
    kind = "images" if magic == MAGIC_IMAGES else "labels"
    try:
        if file.suffix == ".gz":
            with gzip.open(file, "rb") as handle:
                data = handle.read()
        else:
            data = file.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        # gzip raises BadGzipFile (an OSError) for a non-gzip file and EOFError for a cut one.
        raise DatasetError(f"cannot read idx {kind} file ({exc})", where=str(file)) from None
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(data) < 4:
        raise DatasetError(
            f"file is {len(data)} bytes long, too short for an idx header; expected idx {kind} "
            f"(magic 0x{magic:08X})",
            where=str(file),
        )
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DatasetError(
            f"magic number is 0x{found:08X}, expected 0x{magic:08X} (idx {kind}, unsigned bytes, "
            f"{ndim} dimension{'s' if ndim > 1 else ''})",
            where=str(file),
        )
    if len(data) < header_size:
        raise DatasetError(
            f"header is truncated: {len(data)} bytes, expected at least {header_size}",
            where=str(file),
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header_size + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        shape = "×".join(str(d) for d in dims)
        state = "truncated" if len(data) < expected else "longer than its header says"
        raise DatasetError(
            f"file is {state}: {len(data)} bytes, expected {expected} for {kind} of shape {shape}",
            where=str(file),
        )
    if dims[0] == 0:
        raise DatasetError(f"file holds no {kind}", where=str(file))
    # A bytearray gives a writable array: torch warns about wrapping read-only numpy memory.
    return np.frombuffer(bytearray(data), dtype=np.uint8, offset=header_size).reshape(dims)
