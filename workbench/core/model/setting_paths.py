"""Dotted paths to a project's settings: what a sweep varies and the inspector edits.

One grammar for every setting a user can give a value to:

============================  =====================================================
``time_steps``                the time steps T each sample is presented for
``training.epochs``           epochs (also ``training.batch_size``, ``training.seed``)
``training.rule.params.NAME`` a parameter of the learning rule (``…params.lr``)
``encoder.params.NAME``       a parameter of the encoder
``dataset.params.NAME``       a parameter of the dataset
``nodes.NODE.NAME``           a parameter of the node ``NODE`` (``nodes.fc1.bits``)
============================  =====================================================

Each path has a :class:`~workbench.core.model.specs.ParamSpec` (the plugin's own, or one of
:data:`PROJECT_FIELDS`), so a value is checked the same way wherever it comes from.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from typing import Any

from workbench.core.model.errors import ProjectError
from workbench.core.model.project import SEED_MAX, Component, Project
from workbench.core.model.specs import ParamSpec, SpecLookup

#: the project's own numeric settings, with the ranges the project file accepts
PROJECT_FIELDS: dict[str, ParamSpec] = {
    "time_steps": ParamSpec("time_steps", 4, "int", low=1, high=10_000,
                            label="Time steps (T)", doc="Time steps each sample is presented for"),
    "training.epochs": ParamSpec("epochs", 10, "int", low=1, high=100_000,
                                 doc="Passes over the training data"),
    "training.batch_size": ParamSpec("batch_size", 64, "int", low=1, high=65_536,
                                     doc="Samples per optimiser step"),
    "training.seed": ParamSpec("seed", 0, "int", low=0, high=SEED_MAX,
                               doc="Seeds weights and shuffling"),
}
#: the kinds of parameter a sweep can take several values of
SWEEPABLE_KINDS = ("int", "float", "bool", "choice")
#: components of the project and the paths of their parameters
_COMPONENTS = {"dataset": "dataset.params.", "encoder": "encoder.params.",
               "rule": "training.rule.params."}


@dataclass(frozen=True)
class Setting:
    """One setting: its path, its parameter spec, its current value and where it lives
    ("Training", "Encoder", "node fc1") for people to read."""

    path: str
    param: ParamSpec
    value: Any
    owner: str

    @property
    def title(self) -> str:
        """"Learning rate (Training)", "Weight bits (node fc1)"."""
        return f"{self.param.label_with_unit} ({self.owner})"


def _component(project: Project, key: str) -> Component:
    return {"dataset": project.dataset, "encoder": project.encoder,
            "rule": project.training.rule}[key]


def settings(project: Project, lookup: SpecLookup, *,
             kinds: tuple[str, ...] = SWEEPABLE_KINDS) -> list[Setting]:
    """Every setting of ``project`` whose parameter is of one of ``kinds``, in the inspector's
    order: the project's fields, the dataset, encoder and rule, then each node."""
    found = [Setting(path, spec, get_setting(project, path), _owner(path))
             for path, spec in PROJECT_FIELDS.items() if spec.kind in kinds]
    for key, prefix in _COMPONENTS.items():
        component = _component(project, key)
        spec = lookup.get(component.id)
        for param in spec.params if spec is not None else ():
            if param.kind in kinds:
                found.append(Setting(prefix + param.name, param,
                                     component.params.get(param.name, param.default),
                                     _owner(prefix)))
    for node in project.graph.nodes:
        spec = lookup.get(node.spec)
        for param in spec.params if spec is not None else ():
            if param.kind in kinds:
                found.append(Setting(f"nodes.{node.id}.{param.name}", param,
                                     node.params.get(param.name, param.default),
                                     f"node {node.id}"))
    return found


def _owner(path: str) -> str:
    if path.startswith("training."):
        return "Training"
    if path.startswith("encoder.") or path == "time_steps":
        return "Encoder"
    return "Dataset"


def find_setting(project: Project, lookup: SpecLookup, path: str, *,
                 kinds: tuple[str, ...] = SWEEPABLE_KINDS) -> Setting:
    """The setting at ``path``, or the one setting whose path ends with it (``lr`` for
    ``training.rule.params.lr``); else :class:`ProjectError` naming the closest paths."""
    known = settings(project, lookup, kinds=kinds)
    for setting in known:
        if setting.path == path:
            return setting
    ending = [s for s in known if s.path.endswith("." + path)]
    if len(ending) == 1:
        return ending[0]
    if ending:
        raise ProjectError(f"names {len(ending)} settings; give the whole path: "
                           + ", ".join(s.path for s in ending), where=path)
    paths = [s.path for s in known]
    close = difflib.get_close_matches(path, paths, n=3, cutoff=0.5)
    hint = (f"did you mean {' or '.join(close)}?" if close
            else "`snn-workbench sweep PROJECT --list` lists them")
    raise ProjectError(f"no setting of this project takes several values here; {hint}",
                       where=path)


def get_setting(project: Project, path: str) -> Any:
    """The value at ``path`` (a node parameter left at its default reads as absent: None)."""
    if path.startswith("nodes."):
        node_id, name = _node_path(path)
        return project.graph.node(node_id).params.get(name)
    target: Any = project
    for part in path.split("."):
        target = target[part] if isinstance(target, dict) else getattr(target, part)
    return target


def apply_setting(project: Project, path: str, value: Any) -> None:
    """Set the value at ``path`` of ``project`` in place (the caller checked it)."""
    if path.startswith("nodes."):
        node_id, name = _node_path(path)
        project.graph.node(node_id).params[name] = copy.deepcopy(value)
        return
    *parents, last = path.split(".")
    target: Any = project
    for part in parents:
        target = target[part] if isinstance(target, dict) else getattr(target, part)
    if isinstance(target, dict):
        target[last] = copy.deepcopy(value)
    else:
        setattr(target, last, copy.deepcopy(value))


def _node_path(path: str) -> tuple[str, str]:
    _, _, rest = path.partition(".")
    node_id, _, name = rest.rpartition(".")
    if not node_id or not name:
        raise ProjectError("expected nodes.NODE.PARAMETER", where=path)
    return node_id, name
