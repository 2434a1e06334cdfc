"""Images sorted into one folder per class (the layout most hand-made datasets have).

Two layouts are accepted::

    path/train/<class>/*.png      path/<class>/*.png
    path/test/<class>/*.png       (split here, stratified and seeded)

Every image is decoded with Pillow, converted to RGB or greyscale and resized to size×size, so
images of mixed sizes and modes still stack into one array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wb_datasets._common import require_folder
from workbench.pluginhost import ArraySplit, DatasetError, DatasetSplits

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
LAYOUT = (
    "either train/<class>/ and test/<class>/ subfolders, or one <class>/ subfolder per class, "
    f"holding image files ({' '.join(EXTENSIONS)})"
)


def load_image_folder(
    *,
    path: str = "",
    size: int = 32,
    grayscale: bool = False,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DatasetSplits:
    """Load a folder of class subfolders of images.

    Parameters
    ----------
    path
        The dataset folder (see the module docstring for the two layouts).
    size
        Every image is resized to ``size`` × ``size`` pixels.
    grayscale
        Convert to one grey channel instead of three RGB channels.
    test_fraction
        Share held out for testing when the folder is not already split into train/ and test/.
    seed
        Seed of that split; the same seed gives the same split.

    Returns
    -------
    DatasetSplits
        ``x`` uint8 ``[N, C, size, size]`` (C = 1 or 3), ``scale = 1/255``; class names are the
        sorted subfolder names.
    """
    folder = require_folder(path, what=f"a folder with {LAYOUT}", layout=LAYOUT)
    size = int(size)
    if size < 1:
        raise DatasetError(f"size must be at least 1, got {size}", where="params.size")
    train_dir, test_dir = folder / "train", folder / "test"
    if train_dir.is_dir() and test_dir.is_dir():
        class_names = _class_dirs(train_dir)
        train_files, train_y = _list_images(train_dir, class_names, require_all=True)
        extra = sorted(set(_class_dirs(test_dir, allow_empty=True)) - set(class_names))
        if extra:
            # A test class unseen in training cannot be given a label the network can output.
            raise DatasetError(
                f"test/ has class folders that train/ lacks: {', '.join(extra)}",
                where=str(test_dir),
            )
        test_files, test_y = _list_images(test_dir, class_names, require_all=False)
        if not test_files:
            raise DatasetError(f"test/ holds no images; expected {LAYOUT}", where=str(test_dir))
    elif train_dir.is_dir() != test_dir.is_dir():
        have, lack = ("train", "test") if train_dir.is_dir() else ("test", "train")
        raise DatasetError(
            f"found {have}/ but no {lack}/; expected {LAYOUT} (class folders named "
            "'train' or 'test' are taken for this split layout)",
            where=str(folder),
        )
    else:
        class_names = _class_dirs(folder)
        files, labels = _list_images(folder, class_names, require_all=True)
        train_files, train_y, test_files, test_y = _split(
            files, labels, class_names, float(test_fraction), int(seed), folder
        )
    channels = 1 if grayscale else 3
    train_x = _decode(train_files, size, grayscale)
    test_x = _decode(test_files, size, grayscale)
    return DatasetSplits(
        train=ArraySplit(train_x, train_y, scale=1.0 / 255.0),
        test=ArraySplit(test_x, test_y, scale=1.0 / 255.0),
        input_shape=(channels, size, size),
        class_names=class_names,
        source=f"image folder {folder}",
    )


def _class_dirs(folder: Path, *, allow_empty: bool = False) -> list[str]:
    """Sorted class subfolder names; hidden ones (.git, .ipynb_checkpoints) are not classes."""
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names and not allow_empty:
        raise DatasetError(f"no class subfolders found; expected {LAYOUT}", where=str(folder))
    return names


def _list_images(
    folder: Path, class_names: list[str], *, require_all: bool
) -> tuple[list[Path], np.ndarray]:
    """List the image files of each class folder, in a stable (sorted) order.

    ``require_all`` makes an empty class folder an error: in a training set it would be a class
    the network can never learn, most likely a folder of files with another extension.
    """
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(class_names):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        images = sorted(
            p
            for p in class_dir.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in EXTENSIONS
        )
        if not images and require_all:
            raise DatasetError(
                f"class folder holds no images ({' '.join(EXTENSIONS)})", where=str(class_dir)
            )
        files.extend(images)
        labels.extend([label] * len(images))
    return files, np.asarray(labels, dtype=np.int64)


def _split(
    files: list[Path],
    labels: np.ndarray,
    class_names: list[str],
    test_fraction: float,
    seed: int,
    folder: Path,
) -> tuple[list[Path], np.ndarray, list[Path], np.ndarray]:
    """Stratified, seeded split of the file list (before decoding, so nothing is read twice)."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels, minlength=len(class_names))
    if counts.min() < 2:
        # Checked here because scikit-learn's message does not say which class is short.
        name = class_names[int(counts.argmin())]
        raise DatasetError(
            f"class {name!r} has {int(counts.min())} image; a stratified train/test split needs "
            "at least 2 per class (or split it yourself into train/ and test/)",
            where=str(folder / name),
        )
    index = np.arange(len(files))
    try:
        train_i, test_i = train_test_split(
            index, test_size=test_fraction, stratify=labels, random_state=seed
        )
    except ValueError as exc:
        raise DatasetError(f"cannot split the images ({exc})", where=str(folder)) from None
    # Sorted so the images of a split are in folder order, whatever the shuffle did.
    train_i, test_i = np.sort(train_i), np.sort(test_i)
    return (
        [files[i] for i in train_i],
        labels[train_i],
        [files[i] for i in test_i],
        labels[test_i],
    )


def _decode(files: list[Path], size: int, grayscale: bool) -> np.ndarray:
    """Decode, convert and resize every file into one ``[N, C, size, size]`` uint8 array."""
    from PIL import Image

    mode = "L" if grayscale else "RGB"
    out = np.empty((len(files), 1 if grayscale else 3, size, size), dtype=np.uint8)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as image:
                # convert() handles palette, alpha and 16-bit images alike; only the first frame
                # of an animated GIF or WebP is used.
                resized = image.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
                pixels = np.asarray(resized)
        except Exception as exc:  # noqa: BLE001 - any decoder failure means a bad file
            raise DatasetError(
                f"cannot read image ({type(exc).__name__}: {exc})", where=str(file)
            ) from None
        out[i] = pixels[None] if grayscale else pixels.transpose(2, 0, 1)
    return out
