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
                ParamSpec("dt", 1e-4, low=1e-9, high=1.0, unit="s",
                          doc="Euler step the NIR time constants assume (tau = dt / (1 - leak)); "
                              "snnTorch's NIR import and export use 1e-4"),
                ParamSpec("import_dataset", "", "str",
                          doc="Dataset of projects made by importing a NIR file; empty: the one "
                              "recorded in the file, else the embedded digits"),
            ),
        ),
    ]
