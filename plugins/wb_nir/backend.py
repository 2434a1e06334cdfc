"""The ``wb_nir.nir`` exchange backend: deploy = write the NIR file, run = read it back and
evaluate it (see docs/nir.md)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import torch

from wb_nir.export import export_problems, file_name, raise_unsupported, write_nir
from wb_nir.importer import build_model, from_nir, read_graph, read_project
from wb_nir.neurons import DEFAULT_DT
from workbench.pluginhost import (
    DeployContext,
    DeployError,
    EnergyMeter,
    FitIssue,
    RunEvent,
    class_scores,
)

TARGETS = {
    "nir-file": "NIR graph file (snnTorch, Norse, Sinabs/Speck, Rockpool/Xylo, Lava/Loihi, "
                "SpiNNaker2)",
}
#: samples per step of the run: each finished chunk yields one live energy event
_CHUNK = 10


class NirBackend:
    """Exchange backend for NIR files; ``dt`` is the Euler step of the time constants: the one
    written (0: 1e-4), and the one a file is read with (0: the file's, else 1e-4)."""

    def __init__(self, dt: float = 0.0, import_dataset: str = "") -> None:
        self.dt = float(dt)
        self.import_dataset = import_dataset

    @property
    def write_dt(self) -> float:
        return self.dt or DEFAULT_DT

    def targets(self) -> dict[str, str]:
        """The one target: a NIR file."""
        return dict(TARGETS)

    def check(self, ctx: DeployContext) -> list[FitIssue]:
        """Every node NIR cannot express (errors) and caveats for peer tools (warnings)."""
        return [FitIssue(p.node, p.message, p.severity)
                for p in export_problems(ctx.model, ctx.project)]

    def _path(self, ctx: DeployContext) -> Path:
        return Path(ctx.out_dir) / file_name(ctx.project.name)

    def deploy(self, ctx: DeployContext) -> Generator[RunEvent, None, dict[str, Any]]:
        """Write ``<out>/<project>.nir``; the report counts nodes by type and gives the size."""
        path = self._path(ctx)
        yield ctx.progress(0, 1, "converting to NIR")
        report = write_nir(ctx.model, ctx.project, path, dt=self.write_dt)
        nodes = ", ".join(f"{n} {kind}" for kind, n in report["nodes"].items())
        yield ctx.log(f"wrote {path.name}: {nodes}; {report['edges']} edges, "
                      f"{report['bytes']} bytes")
        yield ctx.progress(1, 1, "written")
        return report

    def run(self, ctx: DeployContext) -> Generator[RunEvent, None, dict[str, Any]]:
        """Read the written file back into a fresh network and evaluate it beside the original."""
        path = self._path(ctx)
        if not path.exists():
            raise DeployError("the NIR file is missing; run the deployment step first",
                              where=str(path))
        lookup = ctx.session.lookup
        input_shape = tuple(ctx.model.input_shape)
        graph, state = from_nir(read_graph(path), lookup, input_shape, dt=self.dt or None)
        reread = build_model(graph, state, lookup, input_shape)
        yield ctx.log(f"read {path.name} back: {len(graph.nodes)} node(s)")
        table = ctx.session.cost_table()
        settings = ctx.project.energy
        source = f"{table.name} cost table ({table.source}), counted on the re-imported model"
        x, y = ctx.test_arrays()
        torch.manual_seed(ctx.project.training.seed)  # the rate encoder draws random spikes
        correct = agree = 0
        max_diff = 0.0
        for start in range(0, len(y), _CHUNK):
            ctx.check_cancel()
            labels = y[start:start + _CHUNK]
            encoded = ctx.encode(torch.as_tensor(x[start:start + _CHUNK]))
            energies, hits = [], []
            with torch.no_grad():
                original = ctx.model(encoded)
                for i in range(len(labels)):  # one sample at a time: energy per sample
                    with EnergyMeter(reread, encode_once=settings.encode_once,
                                     sop_counting=settings.sop_counting) as meter:
                        out = reread(encoded[:, i:i + 1])
                    energies.append(meter.report(table).total_pj_per_sample)
                    pred = int(class_scores(out).argmax(-1)[0])
                    hits.append(pred == int(labels[i]))
                    agree += pred == int(class_scores(original[:, i:i + 1]).argmax(-1)[0])
                    max_diff = max(max_diff, float((out - original[:, i:i + 1]).abs().max()))
            correct += sum(hits)
            yield ctx.live_energy(energies, hits, kind="estimate", source=source)
            yield ctx.progress(min(start + _CHUNK, len(y)), len(y), "running the NIR graph")
        n = len(y)
        return {"accuracy": correct / max(n, 1), "samples": n,
                "agreement_with_original": agree / max(n, 1),
                "max_abs_output_difference": max_diff, "file": str(path)}

    # -- exchange ------------------------------------------------------------------------------
    def export_file(self, session: Any, path: str | Path) -> dict[str, Any]:
        """Write the session's network (built from the project if needed) to ``path``."""
        model = session.model if session.model is not None else session.build()
        model.eval()
        raise_unsupported(export_problems(model, session.project))
        return write_nir(model, session.project, path, dt=self.write_dt)

    def read_file(self, path: str | Path, ctx: Any) -> tuple[Any, Any]:
        """The project and network in the NIR file ``path`` (the core saves them)."""
        return read_project(path, ctx, dataset=self.import_dataset, dt=self.dt or None)
