"""Commands that write a new project folder never replace a project silently: ``compress
--out`` and ``import-nir`` refuse an occupied folder without ``--force`` (exit 2, one line naming
the folder and the option, nothing on disk changed), and never replace the source project."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_helpers import assert_input_error, run

from workbench.core.persistence.project_files import load_project
from workbench.core.persistence.project_store import commit_project
from workbench.testing.fixtures import make_tiny_project

METHOD = ["--method", "wb_qp_snn.uniform", "--param", "bits=4", "--param", "finetune_epochs=0"]


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def occupied(tmp_path) -> Path:
    """Another project, with its weights and a run record, where the output is pointed."""
    folder = tmp_path / "other"
    project = make_tiny_project(folder)
    project.name = "other"
    commit_project(project, weights=b"the other project's weights")
    (folder / "runs").mkdir()
    (folder / "runs" / "train-1.jsonl").write_text("{}\n")
    return folder


@pytest.fixture
def trained(tmp_path, trained_digits_mlp) -> Path:
    folder = tmp_path / "mlp"
    shutil.copytree(trained_digits_mlp, folder)
    return folder


def test_compress_refuses_an_occupied_folder_without_force(tmp_path, occupied, capsys):
    source = make_tiny_project(tmp_path / "src").folder
    before, before_source = files(occupied), files(source)
    code, _, _, err = run(["compress", str(source), *METHOD, "--out", str(occupied)], capsys)
    assert_input_error(code, err, str(occupied), "already holds a project", "--force")
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "thesis.txt").write_text("mine")
    code, _, _, err = run(["compress", str(source), *METHOD, "--out", str(documents)], capsys)
    assert_input_error(code, err, str(documents), "not empty and holds no project", "--force")
    assert files(occupied) == before and files(source) == before_source
    assert files(documents) == {"thesis.txt": b"mine"}
    assert not (source / "runs").exists()  # refused before a run started


def test_compress_never_replaces_its_source_even_with_force(tmp_path, capsys):
    source = make_tiny_project(tmp_path / "src").folder
    before = files(source)
    for out in (source, tmp_path / "elsewhere" / ".." / "src"):
        code, _, _, err = run(["compress", str(source), *METHOD, "--out", str(out), "--force"],
                              capsys)
        assert_input_error(code, err, "source project itself")
    assert files(source) == before


def test_compress_with_force_replaces_the_whole_project(trained, occupied, capsys):
    old_weights = load_project(occupied).weights_file
    assert old_weights is not None
    code, _, _, err = run(["compress", str(trained), *METHOD, "--limit", "40",
                           "--out", str(occupied), "--force"], capsys)
    assert code == 0, err
    variant = load_project(occupied)
    assert variant.compression[-1]["method"] == "wb_qp_snn.uniform"
    left = sorted(files(occupied))
    assert left == ["project.json", str(Path("runs") / "train-1.jsonl"), variant.weights_file]
    assert old_weights not in left


def test_import_nir_refuses_an_occupied_folder_unless_forced(trained, occupied, tmp_path,
                                                             capsys):
    nir = tmp_path / "mlp.nir"
    code, _, _, err = run(["export-nir", str(trained), str(nir)], capsys)
    assert code == 0, err
    old_weights = load_project(occupied).weights_file
    before = files(occupied)
    code, _, _, err = run(["import-nir", str(nir), str(occupied)], capsys)
    assert_input_error(code, err, str(occupied), "already holds a project", "--force")
    assert files(occupied) == before
    code, _, _, err = run(["import-nir", str(nir), str(occupied), "--force"], capsys)
    assert code == 0, err
    imported = load_project(occupied)
    assert imported.name != "other" and imported.weights_path.exists()
    assert sorted(files(occupied)) == sorted(["project.json", str(Path("runs") / "train-1.jsonl"),
                                              imported.weights_file,
                                              *(str(p.relative_to(occupied)) for p in
                                                (occupied / "runs").glob("import-*"))])
    assert old_weights not in files(occupied)


def test_import_nir_refuses_a_folder_inside_a_project(trained, tmp_path, capsys):
    nir = trained / "exported.nir"  # a NIR file saved into its own project
    code, _, _, err = run(["export-nir", str(trained), str(nir)], capsys)
    assert code == 0, err
    before = files(trained)
    nested = trained / "exported"
    code, _, _, err = run(["import-nir", str(nir), str(nested)], capsys)
    assert_input_error(code, err, str(nested), "inside the project folder", "outside it")
    assert files(trained) == before and not nested.exists()
    code, _, _, err = run(["import-nir", str(nir), str(tmp_path / "beside")], capsys)
    assert code == 0, err
    assert load_project(tmp_path / "beside").weights_path.exists()
