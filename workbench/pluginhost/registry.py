"""The contributions of all loaded plugins, by id and by kind."""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.core.model.specs import Spec

#: Display order and titles of the kinds (the GUI palette groups by these).
KIND_TITLES = {
    "neuron": "Neurons",
    "encoder": "Encoders",
    "block": "Blocks",
    "attention": "Attention",
    "compression": "Compression",
    "learning_rule": "Learning rules",
    "dataset": "Datasets",
    "backend": "Backends",
    "energy_model": "Energy models",
    "runner": "Runners",
    "view": "Views",
}


@dataclass
class ContributionRegistry:
    """id -> spec, with the providing plugin; old ids listed in ``replaces`` still resolve."""

    _specs: dict[str, Spec] = field(default_factory=dict)
    _providers: dict[str, str] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)

    def add(self, plugin: str, spec: Spec) -> None:
        if spec.id in self._specs:
            raise ValueError(f"id {spec.id!r} is already provided by {self._providers[spec.id]!r}")
        self._specs[spec.id] = spec
        self._providers[spec.id] = plugin
        for old in spec.replaces:
            self._aliases.setdefault(old, spec.id)

    def get(self, spec_id: str) -> Spec | None:
        return self._specs.get(spec_id) or self._specs.get(self._aliases.get(spec_id, ""))

    def __contains__(self, spec_id: str) -> bool:
        return self.get(spec_id) is not None

    def __len__(self) -> int:
        return len(self._specs)

    def provider(self, spec_id: str) -> str:
        spec = self.get(spec_id)
        return self._providers[spec.id] if spec else ""

    def of_kind(self, kind: str) -> list[Spec]:
        return [s for s in self._specs.values() if s.KIND == kind]

    def backend_for_format(self, fmt: str) -> Spec | None:
        """The first backend that reads and writes files of ``fmt`` (e.g. ``"nir"``)."""
        for spec in self.of_kind("backend"):
            if fmt in getattr(spec, "formats", ()):
                return spec
        return None

    def kinds(self) -> list[str]:
        present = {s.KIND for s in self._specs.values()}
        return [k for k in KIND_TITLES if k in present]
