"""Special files named as input are refused by name, never read: opening a FIFO blocks until a
writer comes, so each would hang the command. Every case runs against a deadline; a regression
unblocks the reader (by opening the FIFO for writing) and fails instead of hanging the suite."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
from cli_helpers import assert_input_error, run

from workbench.core.model.errors import DatasetError
from workbench.core.persistence.examples import examples_dir

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")

DEADLINE_S = 30


def _release(fifo) -> None:
    """Give a reader blocked on ``fifo`` its end of file."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # nobody is reading
    os.close(fd)


def _run_with_deadline(argv, capsys, fifo):
    result: list = []
    worker = threading.Thread(target=lambda: result.append(run(argv, capsys)), daemon=True)
    worker.start()
    worker.join(DEADLINE_S)
    if worker.is_alive():
        _release(fifo)
        worker.join(10)
        pytest.fail(f"{' '.join(argv)} blocked on the FIFO {fifo}")
    return result[0]


def _project_copy(tmp_path):
    folder = tmp_path / "project"
    shutil.copytree(examples_dir() / "digits_mlp", folder, ignore=shutil.ignore_patterns("runs"))
    return folder


def test_a_fifo_as_the_project_file(tmp_path, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    os.mkfifo(folder / "project.json")
    code, _, _, err = _run_with_deadline(["info", str(folder)], capsys, folder / "project.json")
    assert_input_error(code, err, str(folder / "project.json"), "is a FIFO")


def test_a_fifo_as_the_weights_file(tmp_path, capsys):
    folder = _project_copy(tmp_path)
    weights = folder / "weights.safetensors"  # the file a project without "weights" names
    weights.unlink(missing_ok=True)
    os.mkfifo(weights)
    code, _, _, err = _run_with_deadline(["evaluate", str(folder), "--limit", "4"], capsys,
                                         weights)
    assert_input_error(code, err, str(weights), "is a FIFO")


def test_a_fifo_as_the_replay_record(tmp_path, capsys):
    folder = _project_copy(tmp_path)
    record = tmp_path / "variant.json"
    os.mkfifo(record)
    code, _, _, err = _run_with_deadline(
        ["compress", str(folder), "--replay", str(record), "--out", str(tmp_path / "out")],
        capsys, record)
    assert_input_error(code, err, str(record), "is a FIFO")
    assert not (tmp_path / "out").exists()


def test_a_fifo_as_the_nir_file(tmp_path, capsys):
    source = tmp_path / "net.nir"
    os.mkfifo(source)
    code, _, _, err = _run_with_deadline(["import-nir", str(source), str(tmp_path / "out")],
                                         capsys, source)
    assert_input_error(code, err, str(source), "is a FIFO")
    assert not (tmp_path / "out").exists()


def test_a_dataset_plugin_refuses_a_fifo_by_name(tmp_path):
    from wb_datasets.npz import load_npz

    source = tmp_path / "data.npz"
    os.mkfifo(source)
    with pytest.raises(DatasetError, match="is a FIFO") as err:
        load_npz(path=str(source))
    assert err.value.where == str(source)


def test_regular_file_names_each_kind_of_special_file(tmp_path):
    from workbench.core.model.errors import WeightsError
    from workbench.pluginhost import regular_file

    os.mkfifo(tmp_path / "fifo")
    for path, needle in ((tmp_path / "fifo", "is a FIFO"), (tmp_path, "is a directory"),
                         (tmp_path / "absent", "no such weights file"),
                         (tmp_path / ("x" * 5000), "cannot read the weights file")):
        with pytest.raises(WeightsError, match=needle) as err:
            regular_file(path, WeightsError, what="weights file")
        assert err.value.where == str(path)
    if os.path.exists("/dev/null"):
        with pytest.raises(WeightsError, match="is a character device"):
            regular_file("/dev/null", WeightsError, what="weights file")
    (tmp_path / "plain").write_text("{}", encoding="utf-8")
    assert regular_file(tmp_path / "plain") == tmp_path / "plain"
