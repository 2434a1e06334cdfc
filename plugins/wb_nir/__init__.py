"""``wb_nir``: exchange networks with other SNN tools through NIR files (docs/nir.md).

One backend, ``wb_nir.nir`` (kind ``exchange``, format ``nir``): deploying writes the trained
network as a NIR graph, running reads that file back and evaluates it beside the original, and
the CLI's ``export-nir`` / ``import-nir`` call its ``export_file`` / ``import_file``.

Importing this module is cheap: the factory is a ``"module:attr"`` string, so torch, nir and
h5py are imported only when the backend is used.
"""

from __future__ import annotations

from workbench.pluginhost import BackendSpec, ParamSpec, hookimpl


@hookimpl
def wb_backends() -> list[BackendSpec]:
    return [
        BackendSpec(
            id="wb_nir.nir",
            display_name="NIR file (Neuromorphic Intermediate Representation)",
            factory="wb_nir.backend:NirBackend",
            kind="exchange",
            formats=("nir",),
            known_targets=("nir-file",),
            doc="Writes the network as a NIR graph that snnTorch, Norse, Sinabs/Speck, "
                "Rockpool/Xylo, Lava/Loihi and SpiNNaker2 read; the run reads it back and "
                "checks it against the original.",
            params=(
                ParamSpec("dt", 0.0, low=0.0, high=1.0, unit="s",
                          doc="Euler step the NIR time constants assume (tau = dt / (1 - leak)). "
                              "Writing: 0 means 1e-4, what snnTorch's NIR import and export "
                              "use. Reading: 0 means the step the file records, else 1e-4 "
                              "with a warning (Norse writes 0.001 unless told otherwise, and "
                              "records none)"),
                ParamSpec("import_dataset", "", "str",
                          doc="Dataset of projects made by importing a NIR file; empty: the one "
                              "recorded in the file, else the embedded digits"),
            ),
        ),
    ]
