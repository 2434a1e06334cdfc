"""Any dataset saved as a numpy ``.npz`` archive: the escape hatch for data no other loader reads.

Expected arrays: ``x_train``, ``y_train``, ``x_test``, ``y_test`` and, optionally,
``class_names``. Inputs ``[N, C, L]`` are signals (layout "sequence": C channels over L time
steps); for series of different lengths, padded to L, the optional ``lengths_train`` and
``lengths_test`` give each sample's own length. The file is opened with ``allow_pickle=False``: an ``.npz`` from the internet
must not be able to run code when it is loaded.
"""

from __future__ import annotations

import zipfile

import numpy as np

from wb_datasets._common import require_path
from workbench.pluginhost import ArraySplit, DatasetError, DatasetSplits, regular_file

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("class_names", "lengths_train", "lengths_test")
LAYOUT = (
    "an .npz file (numpy.savez) holding x_train, y_train, x_test, y_test and optionally "
    "class_names (and lengths_train, lengths_test for signals [N, C, L] of different lengths); "
    "inputs [N, ...] numeric, labels [N] integers"
)


def load_npz(*, path: str = "", scale: float = 1.0) -> DatasetSplits:
    """Load train and test arrays from an ``.npz`` file.

    Parameters
    ----------
    path
        The ``.npz`` file.
    scale
        Factor applied to the stored inputs when batches are made (e.g. ``1/255`` for uint8
        images); the arrays themselves are kept in their stored dtype.

    Returns
    -------
    DatasetSplits
        The arrays as stored; ``input_shape`` is ``x_train.shape[1:]``. Inputs ``[N, C, L]``
        have layout "sequence", with per-sample lengths when the file gives them.
    """
    file = require_path(path, what=LAYOUT, layout=LAYOUT)
    where = str(file)
    if file.is_dir():
        raise DatasetError(f"{path} is a folder, not a file; expected {LAYOUT}", where=where)
    regular_file(file, DatasetError, what=".npz file")  # a FIFO or a device: said, not read
    try:
        archive = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # A pickle, a text file or a cut download all end here.
        raise DatasetError(
            f"cannot read as .npz ({exc}); expected {LAYOUT}", where=where
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(
            f"is a single .npy array, not an .npz archive; expected {LAYOUT}", where=where
        )
    with archive:
        found = sorted(archive.files)
        missing = [key for key in REQUIRED if key not in found]
        if missing:
            raise DatasetError(
                f"missing {', '.join(missing)}; found {', '.join(found) or 'no arrays'}, "
                f"expected {', '.join(REQUIRED)} (and optionally class_names)",
                where=where,
            )
        arrays = {k: _array(archive, k, where) for k in (*REQUIRED, *OPTIONAL) if k in found}

    x_train, x_test = (_inputs(arrays[k], k, where) for k in ("x_train", "x_test"))
    y_train, y_test = (_labels(arrays[k], k, where) for k in ("y_train", "y_test"))
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise DatasetError(
                f"x_{split} has {len(x)} samples but y_{split} has {len(y)} labels", where=where
            )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"x_train samples have shape {list(x_train.shape[1:])} but x_test samples "
            f"{list(x_test.shape[1:])}",
            where=where,
        )
    # Without class_names, DatasetSplits names the classes 0..max label.
    class_names = _names(arrays["class_names"], where) if "class_names" in arrays else []
    for key, y in (("y_train", y_train), ("y_test", y_test)):
        _check_range(y, key, len(class_names) or None, where)
    n_train, n_test = (_lengths(arrays, split, x, where)
                       for split, x in (("train", x_train), ("test", x_test)))
    return DatasetSplits(
        train=ArraySplit(x_train, y_train, scale=float(scale), lengths=n_train),
        test=ArraySplit(x_test, y_test, scale=float(scale), lengths=n_test),
        input_shape=x_train.shape[1:],
        class_names=class_names,
        source=f"npz file {file}",
    )


def _array(archive: np.lib.npyio.NpzFile, key: str, where: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        # numpy refuses object arrays when allow_pickle=False ("Object arrays cannot be loaded").
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DatasetError(
                f"{key} is an object array; object arrays are not accepted (they need pickle, "
                "which can run code): save plain numeric arrays, and class_names as a string array",
                where=where,
            ) from None
        raise DatasetError(f"cannot read {key} ({exc})", where=where) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"cannot read {key} ({exc})", where=where) from None


def _inputs(x: np.ndarray, key: str, where: str) -> np.ndarray:
    if x.dtype.kind not in "biuf":
        raise DatasetError(
            f"{key} has dtype {x.dtype}; inputs must be numeric (bool, int, uint or float)",
            where=where,
        )
    if x.ndim < 2:
        raise DatasetError(
            f"{key} has shape {list(x.shape)}; inputs must be [N, ...] with at least one "
            "feature axis (reshape a vector of scalars to [N, 1])",
            where=where,
        )
    if len(x) == 0:
        raise DatasetError(f"{key} holds no samples", where=where)
    return x


def _labels(y: np.ndarray, key: str, where: str) -> np.ndarray:
    if y.ndim != 1:
        raise DatasetError(f"{key} has shape {list(y.shape)}; labels must be [N]", where=where)
    if y.dtype.kind in "iu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        # Labels saved as floats (a common by-product of pandas) are fine when they are whole.
        whole = np.isfinite(y) & (y == np.round(y))
        if whole.all():
            return y.astype(np.int64)
        bad = y[~whole][0].item()
        raise DatasetError(
            f"{key} holds non-integer label {bad!r}; labels must be class indices 0, 1, 2, ...",
            where=where,
        )
    raise DatasetError(
        f"{key} has dtype {y.dtype}; labels must be integer class indices", where=where
    )


def _lengths(arrays: dict[str, np.ndarray], split: str, x: np.ndarray,
             where: str) -> np.ndarray | None:
    """``lengths_<split>``: each series' own length, 1..L, for signals ``x[N, C, L]``."""
    key = f"lengths_{split}"
    other = f"lengths_{'test' if split == 'train' else 'train'}"
    if key not in arrays:
        if other in arrays:
            raise DatasetError(f"has {other} but no {key}; give the lengths of both splits",
                               where=where)
        return None
    lengths = arrays[key]
    if x.ndim != 3:
        raise DatasetError(f"{key} is given but x_{split} has shape {list(x.shape)}; lengths "
                           "belong to signals [N, C, L]", where=where)
    if lengths.shape != (len(x),) or lengths.dtype.kind not in "iu":
        raise DatasetError(f"{key} has dtype {lengths.dtype} and shape {list(lengths.shape)}; "
                           f"expected {len(x)} integers, one per sample", where=where)
    bad = np.flatnonzero((lengths < 1) | (lengths > x.shape[-1]))
    if bad.size:
        i = int(bad[0])
        raise DatasetError(f"{key}[{i}] is {int(lengths[i])}; a length is 1..{x.shape[-1]} "
                           f"(the padded length of x_{split})", where=where)
    return lengths.astype(np.int64)


def _names(names: np.ndarray, where: str) -> list[str]:
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise DatasetError(
            f"class_names has dtype {names.dtype} and shape {list(names.shape)}; expected a 1-D "
            "string array",
            where=where,
        )
    if names.dtype.kind == "S":
        return [n.decode("utf-8", errors="replace") for n in names]
    return [str(n) for n in names]


def _check_range(y: np.ndarray, key: str, n_classes: int | None, where: str) -> None:
    """Labels index the classifier's outputs: negative ones, or ones past the names, are bugs."""
    if len(y) == 0:
        return
    low, high = int(y.min()), int(y.max())
    if low < 0:
        raise DatasetError(f"{key} holds label {low}; labels must be 0 or more", where=where)
    if n_classes is not None and high >= n_classes:
        raise DatasetError(
            f"{key} holds label {high} but class_names lists only {n_classes} classes "
            f"(0..{n_classes - 1})",
            where=where,
        )
