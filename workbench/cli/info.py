"""``snn-workbench info``: layers, shapes, parameters, bit widths and model size.

Not a run: it compiles the graph and loads the saved weights (they say which layers are
quantised). When the dataset declares its shape (``DatasetSpec.shape``) the data is not loaded.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from workbench.cli._common import emit, load_session, log


def run(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.build.info import describe
    from workbench.core.model.errors import WeightsError

    session = load_session(args)
    shape = session.declared_shape()
    if shape is None:  # the dataset cannot say without loading
        data = session.data()
        shape = (tuple(data.input_shape), data.n_classes)
    try:  # the saved weights say which layers are quantised, so the sizes are the real ones
        model = session.build(shape=shape)
    except WeightsError as exc:
        log.warning("%s; sizes are those of the graph at full precision", exc)
        model = session.build(load_saved_weights=False, shape=shape)
    project = session.project
    input_shape, classes = shape
    summary = {
        "name": project.name,
        "folder": str(project.folder) if project.folder else None,
        "dataset": project.dataset.id,
        "input_shape": list(input_shape),
        "classes": classes,
        "encoder": project.encoder.id,
        # T as the runs use it: an encoder such as TAE sets it from the data (T = L)
        "time_steps": session.encoding().time_steps(tuple(input_shape)),
        "has_weights": bool(project.weights_path and project.weights_path.exists()),
        **describe(model),
    }
    if args.json:
        emit(summary, out)
        return 0
    print(f"{project.name}: {project.description}".rstrip(": "), file=out)
    print(f"dataset {summary['dataset']} {summary['input_shape']} -> {summary['classes']} classes; "
          f"encoder {summary['encoder']}, T = {summary['time_steps']}"
          f"{'' if summary['time_steps'] == project.time_steps else ' (set by the encoder)'}",
          file=out)
    # columns as wide as their longest entry: plugin ids can be long
    names = max([14, *(len(layer["name"]) + 2 for layer in summary["layers"])])
    specs = max([26, *(len(layer["spec"]) + 2 for layer in summary["layers"])])
    print(f"{'layer':<{names}}{'spec':<{specs}}{'output':<16}{'params':>9}{'bits':>7}", file=out)
    for layer in summary["layers"]:
        bits = ",".join(str(b) for b in layer["bits"]) or "-"
        print(f"{layer['name']:<{names}}{layer['spec']:<{specs}}{str(layer['out_shape']):<16}"
              f"{layer['params']:>9}{bits:>7}", file=out)
    print(f"{summary['params']} parameters, {summary['size_mb']:.4f} MB "
          f"({summary['bytes']:.0f} bytes)", file=out)
    print(f"trained: yes ({project.weights_path.name})" if summary["has_weights"]
          else "trained: no (run `snn-workbench train` first)", file=out)
    return 0
