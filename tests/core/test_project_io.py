"""Project files: round trip, atomic saves, migrations, and the bad-input corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.model import project as project_mod
from workbench.core.model.errors import ProjectError
from workbench.core.model.project import FORMAT_VERSION, bind_specs
from workbench.core.persistence.examples import list_examples
from workbench.core.persistence.project_files import load_project, save_project
from workbench.testing.fixtures import make_tiny_project


def test_round_trip_keeps_graph_params_and_settings(tmp_path):
    original = make_tiny_project(tmp_path / "p", epochs=3)
    original.graph.nodes[1].position = (10.0, 20.0)
    original.energy.table = "custom"
    original.energy.custom = {"e_mac_pj": 1.0, "e_ac_pj": 0.1, "source": "lab"}
    save_project(original)
    loaded = load_project(tmp_path / "p")
    assert loaded.to_dict() == original.to_dict()
    assert loaded.graph.nodes[1].position == (10.0, 20.0)
    assert loaded.training.epochs == 3
    assert loaded.folder == tmp_path / "p"


def test_examples_load(plugin_host):
    names = [p.name for p in list_examples()]
    assert {"digits_conv", "digits_mlp"} <= set(names)
    for folder in list_examples():
        project = load_project(folder)
        assert bind_specs(project, plugin_host.registry) == []


def test_save_is_atomic(tmp_path, monkeypatch):
    project = make_tiny_project(tmp_path / "p")
    before = (tmp_path / "p" / "project.json").read_text()
    project.name = "changed"
    real_write = Path.write_bytes

    def crash_half_way(self, data):
        real_write(self, data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", crash_half_way)
    with pytest.raises(ProjectError, match="disk full"):  # an input problem: exit 2, one line
        save_project(project)
    monkeypatch.undo()
    assert (tmp_path / "p" / "project.json").read_text() == before
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["project.json"]


def _write(tmp_path, content: bytes):
    folder = tmp_path / "bad"
    folder.mkdir(exist_ok=True)
    (folder / "project.json").write_bytes(content)
    return folder


def _valid_dict(tmp_path):
    return make_tiny_project(tmp_path / "good").to_dict()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format_version=FORMAT_VERSION + 1), "newer SNN Workbench"),
        (lambda d: d["training"].update(epochs="ten"), "training.epochs: expected an integer"),
        (lambda d: d["encoder"].update(time_steps=0), "encoder.time_steps"),
        (lambda d: d["graph"]["nodes"][0].pop("spec"), "graph.nodes[0].spec"),
        (lambda d: d["graph"].update(edges=[["flat", "nowhere"]]), "does not exist"),
        (lambda d: d["energy"].update(sop_counting="guess"), "energy.sop_counting"),
        (lambda d: d.update(format="something-else"), "not an SNN Workbench project"),
    ],
)
def test_invalid_fields_name_file_and_field(tmp_path, mutate, message):
    data = _valid_dict(tmp_path)
    mutate(data)
    folder = _write(tmp_path, json.dumps(data).encode())
    with pytest.raises(ProjectError) as err:
        load_project(folder)
    assert message in str(err.value)
    assert str(folder / "project.json") in str(err.value)


def test_truncated_and_non_utf8_files(tmp_path):
    text = json.dumps(_valid_dict(tmp_path))
    folder = _write(tmp_path, text[: len(text) // 2].encode())
    with pytest.raises(ProjectError, match="not valid JSON at line 1.*truncated"):
        load_project(folder)
    folder = _write(tmp_path, b'{"name": "caf\xe9"}')
    with pytest.raises(ProjectError, match="not UTF-8"):
        load_project(folder)
    with pytest.raises(ProjectError, match="no such project"):
        load_project(tmp_path / "missing")


def test_older_format_is_migrated(tmp_path, monkeypatch):
    data = _valid_dict(tmp_path)
    data["format_version"] = 0
    data["title"] = data.pop("name")  # pretend version 0 called the name "title"

    def v0_to_v1(d):
        d["name"] = d.pop("title")
        return d

    monkeypatch.setitem(project_mod.MIGRATIONS, 0, v0_to_v1)
    project = load_project(_write(tmp_path, json.dumps(data).encode()))
    assert project.name == "tiny"


def test_unknown_plugin_becomes_a_placeholder_that_survives_saving(tmp_path, plugin_host):
    data = _valid_dict(tmp_path)
    data["graph"]["nodes"][1] = {"id": "hidden", "spec": "wb_future.quantum_lif",
                                 "spec_version": 3, "params": {"qubits": 7}}
    folder = _write(tmp_path, json.dumps(data).encode())
    project = load_project(folder)
    notes = bind_specs(project, plugin_host.registry)
    assert project.graph.node("hidden").placeholder
    assert "wb_future.quantum_lif" in notes[0]
    save_project(project)
    saved = json.loads((folder / "project.json").read_text())
    assert saved["graph"]["nodes"][1]["params"] == {"qubits": 7}
    assert saved["graph"]["nodes"][1]["spec_version"] == 3


def test_spec_versions_migrate_and_newer_ones_are_refused(tmp_path):
    from workbench.core.model.specs import BlockSpec, ParamSpec

    spec = BlockSpec(id="wb_core.thing", display_name="Thing", factory="x:y", spec_version=2,
                     params=(ParamSpec("width", 4, "int"),),
                     migrate=lambda params, version: {"width": params.pop("size")})

    class Lookup:
        def get(self, spec_id):
            return spec if spec_id == "wb_core.thing" else None

    project = make_tiny_project(tmp_path / "p")
    node = project.graph.nodes[0]
    node.spec, node.spec_version, node.params = "wb_core.thing", 1, {"size": 9}
    notes = bind_specs(project, Lookup())
    assert node.params == {"width": 9} and node.spec_version == 2
    assert "migrated" in notes[0]
    node.spec_version = 5
    with pytest.raises(ProjectError, match="newer than the installed version 2"):
        bind_specs(project, Lookup())
