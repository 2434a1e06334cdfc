"""UEA/UCR ``.ts`` time-series files, read with aeon's loader after a light check of our own.

A ``.ts`` file is a header of ``@tags`` (``@classLabel true a b c`` lists the classes), an
``@data`` line, then one sample per line: the channels separated by ``:``, the values of a
channel by ``,``, the class label last::

    @problemName Example
    @univariate false
    @equalLength false
    @classLabel true up down
    @data
    0.1,0.2,0.4:1.0,0.9,0.7:up

aeon does the parsing. Its errors name a "case" at best, never a line, so the data section is
scanned here first for the mistakes people make by hand — a missing value, a sample with another
number of channels, a label the header does not list, a series too short — and each is reported
with its line number in the file. Only those checks are made here; everything else is aeon's.
aeon is imported when a file is read, never when the plugin is discovered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wb_datasets.signals import INSTALL_HINT
from workbench.pluginhost import DatasetError, regular_file

#: the largest magnitude float32 holds; a larger value would become infinity
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: the header tags whose value is true or false (aeon's list)
_BOOLEAN_TAGS = ("timestamps", "missing", "univariate", "equallength", "targetlabel",
                 "classlabel")


@dataclass(frozen=True)
class TsSeries:
    """The samples of one ``.ts`` file, each at its own length.

    ``series[i]`` is float32 ``[C, L_i]``; ``labels[i]`` indexes ``class_names``, which are
    spelled and ordered as the file's ``@classLabel`` line (number ``class_line``) lists them;
    ``lines[i]`` is the sample's line number in the file (1-based), for messages about it later.
    """

    path: Path
    series: list[np.ndarray]
    labels: np.ndarray
    class_names: list[str]
    class_line: int
    lines: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """``int64[N]``: each series' number of time steps."""
        return np.array([s.shape[1] for s in self.series], dtype=np.int64)

    @property
    def n_channels(self) -> int:
        return int(self.series[0].shape[0])


@dataclass
class _Header:
    """What the checks need from a file's header; line numbers are 1-based."""

    flags: dict[str, bool] = field(default_factory=dict)
    flag_lines: dict[str, int] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    data_line: int = 0


def read_ts(path: str | Path, *, min_length: int = 1) -> TsSeries:
    """Read a classification ``.ts`` file.

    Parameters
    ----------
    path
        The file.
    min_length
        The fewest time steps a series may have (at least 1).

    Returns
    -------
    TsSeries
        The series as float32, the labels as indices 0..K-1 in the order of the file's
        ``@classLabel`` list.

    Raises
    ------
    DatasetError
        One line naming the file, and the line number when one line is to blame: a missing
        value (``?`` or NaN), an infinite or too large value, a sample with a different number of
        channels than the first, a label outside the ``@classLabel`` list, a series shorter than
        ``min_length``; any error of aeon's, naming the file.
    """
    file = regular_file(Path(path).expanduser(), DatasetError, what=".ts file")
    header, lines = _scan(file, max(1, int(min_length)))
    series, names = _load_with_aeon(file, lines)
    index = {name.lower(): i for i, name in enumerate(header.class_names)}
    unknown = next((i for i, name in enumerate(names) if name not in index), None)
    if unknown is not None:  # the check above passed this label: aeon must have changed it
        raise DatasetError(f"aeon read the label as {names[unknown]!r}, which the @classLabel "
                           "list does not hold", where=f"{file}, line {lines[unknown]}")
    labels = np.array([index[name] for name in names], dtype=np.int64)
    return TsSeries(file, series, labels, list(header.class_names),
                    header.flag_lines["classlabel"], np.array(lines, dtype=np.int64))


# -- the check before aeon -----------------------------------------------------------------------
def _scan(file: Path, min_length: int) -> tuple[_Header, list[int]]:
    """Check the header and every data line; return the header and the samples' line numbers."""
    where = str(file)
    try:
        with file.open(encoding="utf-8-sig") as handle:  # -sig: a byte-order mark is no tag
            numbered = enumerate(handle, start=1)
            header = _read_header(numbered, where)
            lines = _check_data(numbered, header, min_length, where)
    except UnicodeDecodeError:
        raise DatasetError("is not UTF-8 text; a .ts file is text: save it as UTF-8",
                           where=where) from None
    except OSError as exc:
        raise DatasetError(f"cannot read the .ts file: {exc.strerror or exc}",
                           where=where) from None
    if not lines:
        raise DatasetError(f"has no samples after @data (line {header.data_line})", where=where)
    return header, lines


def _read_header(numbered: Iterator[tuple[int, str]], where: str) -> _Header:
    header = _Header()
    for number, raw in numbered:
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        at = f"{where}, line {number}"
        if not text.startswith("@"):
            raise DatasetError("data before the @data line; the header (@tags) comes first, "
                               "then @data, then one sample per line", where=at)
        tokens = text.split()
        tag = tokens[0][1:].lower()
        if tag == "data":
            if len(tokens) > 1:
                raise DatasetError("@data takes no value; the samples start on the next line",
                                   where=at)
            header.data_line = number
            break
        if tag in _BOOLEAN_TAGS:
            value = tokens[1].lower() if len(tokens) > 1 else ""
            if value not in ("true", "false"):
                raise DatasetError(f"{tokens[0]} needs true or false", where=at)
            header.flags[tag] = value == "true"
            header.flag_lines[tag] = number
            if tag == "classlabel":
                header.class_names = tokens[2:]
    if not header.data_line:
        raise DatasetError("has no @data line; a .ts file is a header of @tags, then @data, "
                           "then one sample per line", where=where)
    _check_header(header, where)
    return header


def _check_header(header: _Header, where: str) -> None:
    """Refuse what the workbench cannot train on, naming the header line."""

    def at(tag: str) -> str:
        return f"{where}, line {header.flag_lines[tag]}"

    if header.flags.get("timestamps"):
        raise DatasetError("timestamped series (@timeStamps true) are not read; write the "
                           "values alone, evenly spaced", where=at("timestamps"))
    if header.flags.get("targetlabel"):
        raise DatasetError("is a regression file (@targetLabel true); only classification "
                           "files (@classLabel true and the class names) are read",
                           where=at("targetlabel"))
    if "classlabel" not in header.flag_lines or not header.flags["classlabel"]:
        where_tag = at("classlabel") if "classlabel" in header.flag_lines else where
        raise DatasetError("lists no classes; add '@classLabel true' and the class names "
                           "before @data", where=where_tag)
    if not header.class_names:
        raise DatasetError("@classLabel true must list the class names after it",
                           where=at("classlabel"))
    seen: dict[str, str] = {}
    for name in header.class_names:
        # aeon reads labels in lower case: 'A' and 'a' would be one class
        if name.lower() in seen:
            raise DatasetError(f"class {name!r} is listed twice (labels are read without case: "
                               f"{seen[name.lower()]!r} is the same)", where=at("classlabel"))
        seen[name.lower()] = name


def _check_data(numbered: Iterator[tuple[int, str]], header: _Header, min_length: int,
                where: str) -> list[int]:
    """The checks of each sample's line (see the module docstring); returns the line numbers."""
    classes = {name.lower() for name in header.class_names}
    class_line = header.flag_lines["classlabel"]
    equal = header.flags.get("equallength", True)
    univariate = header.flags.get("univariate", True)
    lines: list[int] = []
    first_channels = first_length = 0
    for number, raw in numbered:
        text = raw.strip()
        at = f"{where}, line {number}"
        if not text:
            raise DatasetError("blank line in the data section; remove it (every line after "
                               "@data is one sample)", where=at)
        *channels, label = text.split(":")
        if not channels:
            raise DatasetError("no values before the label; a sample is its channels' values "
                               "(',' between values, ':' between channels), then ':' and the "
                               "label", where=at)
        if label.strip().lower() not in classes:
            raise DatasetError(f"label {label.strip()!r} is not in the @classLabel list on line "
                               f"{class_line} ({' '.join(header.class_names)}); add it there "
                               "or fix the label", where=at)
        if not lines:
            first_channels = len(channels)
            if univariate and first_channels > 1:
                raise DatasetError(f"{first_channels} channels but {_says(header, 'univariate')}"
                                   "; add '@univariate false' to the header", where=at)
        elif len(channels) != first_channels:
            raise DatasetError(f"{len(channels)} channels (':'-separated) but the first sample "
                               f"(line {lines[0]}) has {first_channels}; every sample needs the "
                               "same channels", where=at)
        _check_values(text, channels, at)
        counts = [channel.count(",") + 1 if channel.strip() else 0 for channel in channels]
        if min(counts) != max(counts):
            short = counts.index(min(counts))
            raise DatasetError(f"channel {short + 1} has {counts[short]} values but channel 1 "
                               f"has {counts[0]}; the channels of a sample must be equally long",
                               where=at)
        if counts[0] < min_length:
            raise DatasetError(f"the series has {counts[0]} time steps, fewer than min_length "
                               f"{min_length}; drop the sample or lower min_length", where=at)
        if not lines:
            first_length = counts[0]
        elif equal and counts[0] != first_length:
            raise DatasetError(f"the series has {counts[0]} time steps but the first (line "
                               f"{lines[0]}) has {first_length}, and "
                               f"{_says(header, 'equallength')}; add '@equalLength false' to "
                               "the header", where=at)
        lines.append(number)
    return lines


def _says(header: _Header, tag: str) -> str:
    """Where a true-by-default tag holds: its line, or aeon's default when the file omits it."""
    spelled = {"univariate": "@univariate", "equallength": "@equalLength"}[tag]
    if tag in header.flag_lines:
        return f"the header says {spelled} true (line {header.flag_lines[tag]})"
    return f"the header has no {spelled} line (true when omitted)"


def _check_values(text: str, channels: list[str], at: str) -> None:
    """Missing or infinite values, by channel. Searched in the whole line first: one C-level
    scan per line keeps a 9 MB file's check well under a second."""
    lowered = text.lower()
    if "?" not in text and "nan" not in lowered and "inf" not in lowered:
        return
    for c, channel in enumerate(channels, start=1):
        values = [v.strip().lower() for v in channel.split(",")]
        bad = next((v for v in values if v in ("?", "nan") or "inf" in v), None)
        if bad is None:
            continue
        if "inf" in bad:
            raise DatasetError(f"infinite value in channel {c}; the network cannot learn from "
                               "it: replace or drop the sample", where=at)
        raise DatasetError(f"missing value ({bad!r}) in channel {c}; fill the gap (e.g. "
                           "interpolate) or drop the sample", where=at)


# -- aeon ----------------------------------------------------------------------------------------
def _load_with_aeon(file: Path, lines: list[int]) -> tuple[list[np.ndarray], list[str]]:
    """The series (float32 ``[C, L_i]``) and their labels as aeon reads them, in lower case."""
    try:
        from aeon.datasets import load_from_ts_file
    except ImportError as exc:
        raise DatasetError(f"reading .ts files needs aeon ({exc}); {INSTALL_HINT}",
                           where=str(file)) from None
    try:
        data, labels = load_from_ts_file(str(file))
    except Exception as exc:  # noqa: BLE001 - aeon raises OSError, ValueError, IndexError...
        raise DatasetError(f"aeon cannot read it: {_one_line(exc)}",
                           where=_where_case(file, exc, lines)) from None
    if len(data) != len(lines):  # the check above and aeon must agree on what a sample is
        raise DatasetError(f"aeon read {len(data)} samples but there are {len(lines)} lines "
                           "after @data", where=str(file))
    series = []
    for number, values in zip(lines, data):
        values = np.asarray(values, dtype=np.float64)
        if values.size and np.abs(values).max() > _FLOAT32_MAX:
            raise DatasetError("a value is too large for 32-bit floats (beyond ±3.4e38); "
                               "rescale the data", where=f"{file}, line {number}")
        series.append(values.astype(np.float32))
    # aeon lower-cases each line and writes its "nan" as "NaN", labels included ("baNaNa")
    return series, [str(label).strip().lower() for label in labels]


def _where_case(file: Path, exc: Exception, lines: list[int]) -> str:
    """aeon counts samples as "case N" in its messages: turned into the file's line."""
    found = re.search(r"case (\d+)", str(exc))
    if found and 1 <= int(found.group(1)) <= len(lines):
        return f"{file}, line {lines[int(found.group(1)) - 1]}"
    return str(file)


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
