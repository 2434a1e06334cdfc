"""The compression and deployment runs of the core, driven by a throw-away plugin, and the CLI
commands over them. The real methods and backends are tested with their plugins."""

from __future__ import annotations

import io
import json
import shutil

import pytest
import torch

from workbench.cli import main
from workbench.core.build.info import describe
from workbench.core.build.quantized import QuantizedTensor, pack_codes, unpack_codes
from workbench.core.model.errors import WorkbenchError
from workbench.core.persistence.project_files import load_project, save_project
from workbench.core.persistence.weights import load_weights, save_weights
from workbench.core.runs import catalog
from workbench.core.runs.events import EnergySample, RunFinished, StepStarted
from workbench.core.runs.session import Session
from workbench.pluginhost.manager import PluginHost

TOY = '''
from workbench.pluginhost import BackendSpec, CompressionSpec, ParamSpec, hookimpl

@hookimpl
def wb_compressions():
    return [CompressionSpec(id="toy.int", display_name="Toy integer quantiser",
                            factory="{mod}_impl:quantize", kind="quantize",
                            params=(ParamSpec("bits", 4, "int", low=2, high=16),))]

@hookimpl
def wb_backends():
    return [BackendSpec(id="toy.sim", display_name="Toy simulator", factory="{mod}_impl:Backend",
                        params=(ParamSpec("max_params", 10**9, "int", low=1),))]
'''

TOY_IMPL = '''
import torch
from workbench.core.runs.compress import CompressionResult
from workbench.core.runs.deploy import FitIssue
from workbench.core.build.quantized import QuantizedTensor, attach

def quantize(ctx, bits):
    layers = [m for m in ctx.model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    for i, m in enumerate(layers):
        ctx.check_cancel()
        w = m.weight.detach()
        top = 2 ** (bits - 1) - 1
        scale = w.flatten(1).abs().amax(1).clamp_min(1e-12) / top
        q = torch.round(w / scale.reshape(-1, *[1] * (w.dim() - 1)))
        attach(m, QuantizedTensor.from_ints(q, scale, bits, q_zero=-top))
        yield ctx.progress(i + 1, len(layers), "quantising")
    return CompressionResult(ctx.model, report={"layers": len(layers)})

class Backend:
    def __init__(self, max_params):
        self.max_params = max_params
    def targets(self):
        return {"cpu": "toy", "tiny-chip": "too small for anything"}
    def check(self, ctx):
        limit = 10 if ctx.target == "tiny-chip" else self.max_params
        return [FitIssue(name, f"{sum(p.numel() for p in m.parameters())} parameters, "
                               f"the target holds {limit}")
                for name, m in ctx.model.layers.items()
                if sum(p.numel() for p in m.parameters()) > limit]
    def deploy(self, ctx):
        yield ctx.progress(1, 2, "converting")
        yield ctx.progress(2, 2, "writing")
        (ctx.out_dir / "model.txt").write_text("ok")
        return {"layers": len(ctx.model.layers)}
    def run(self, ctx):
        x, y = ctx.test_arrays()
        for i in range(0, len(y), 10):
            ctx.check_cancel()
            with torch.no_grad():
                out = ctx.model(ctx.encode(torch.as_tensor(x[i:i + 10])))
            pred = out.mean(0).argmax(-1).numpy()
            yield ctx.live_energy([1.0] * len(pred), list(pred == y[i:i + 10]),
                                  kind="estimate", source="toy: 1 pJ per sample")
        return {"samples": len(y)}
'''


@pytest.fixture
def toy_host(plugin_module):
    name = plugin_module("toy", TOY.replace("{mod}", "toy"))
    plugin_module("toy_impl", TOY_IMPL)
    host = PluginHost(strict=True)
    host.load(modules=[name])
    return host, name


@pytest.fixture
def trained(tmp_path, trained_digits_mlp):
    folder = tmp_path / "mlp"
    shutil.copytree(trained_digits_mlp, folder)
    return folder


def finished(events):
    events = list(events)
    last = events[-1]
    assert isinstance(last, RunFinished)
    return last, events


def test_pack_roundtrip_and_size():
    codes = torch.randint(0, 8, (7, 5, 3))
    packed = pack_codes(codes, 3)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-codes.numel() * 3 // 8)
    assert torch.equal(unpack_codes(packed, 3, codes.numel()).reshape(codes.shape), codes)
    q = QuantizedTensor.from_ints(torch.tensor([[-3.0, -1, 1, 3]]), torch.tensor([0.25]), 2,
                                  q_step=2)
    assert q.codes.tolist() == [[0, 1, 2, 3]]
    assert q.dequantize().tolist() == [[-0.75, -0.25, 0.25, 0.75]]
    with pytest.raises(ValueError, match="bits"):
        QuantizedTensor(torch.zeros(1, 1, dtype=torch.int64), 33, torch.ones(1))


def test_compress_packs_weights_and_records_the_pass(toy_host, trained, tmp_path):
    host, _ = toy_host
    session = Session(load_project(trained), host.registry)
    out = tmp_path / "variant"
    last, events = finished(catalog.compress(session, method="toy.int", params={"bits": 4},
                                             out=out))
    assert last.status == "ok", last.error
    before, after = last.summary["before"], last.summary["after"]
    assert after["model_size_bytes"] < before["model_size_bytes"] / 6
    # the weights at 4 bits, the bias stays at 32 (the size rule of docs/wb_core.md)
    assert after["bits"]["hidden1"] == 4 and before["bits"]["hidden1"] == 32
    assert abs(after["accuracy"] - before["accuracy"]) < 0.1
    # the file really is small, and reloads to the same numbers
    assert load_project(out).weights_path.stat().st_size < \
        load_project(trained).weights_path.stat().st_size / 5
    variant = load_project(out)
    assert variant.compression[-1]["method"] == "toy.int"
    assert variant.compression[-1]["params"] == {"bits": 4}
    assert variant.compression[-1]["after"]["accuracy"] == after["accuracy"]
    reloaded = Session(variant, host.registry)
    model = reloaded.build()
    assert reloaded.weights_loaded
    assert describe(model)["bytes"] == after["model_size_bytes"]
    assert torch.equal(model.layers["hidden1"].fc.weight,
                       session.compressed[1].layers["hidden1"].fc.weight)
    # saving again keeps the packing
    again = tmp_path / "again.safetensors"
    save_weights(model, again)
    fresh = Session(variant, host.registry).build(load_saved_weights=False)
    load_weights(fresh, again)
    assert fresh.layers["hidden1"].fc.weight_bits == 4
    assert torch.equal(fresh.layers["hidden1"].fc.weight, model.layers["hidden1"].fc.weight)


def test_compress_refuses_bad_input(toy_host, tmp_path, trained):
    host, _ = toy_host
    untrained = tmp_path / "untrained"
    shutil.copytree(trained, untrained)
    load_project(untrained).weights_path.unlink()
    last, _ = finished(catalog.compress(Session(load_project(untrained), host.registry),
                                        method="toy.int"))
    assert last.status == "failed" and last.error_kind == "input"
    assert "not trained" in last.error
    last, _ = finished(catalog.compress(Session(load_project(trained), host.registry),
                                        method="toy.int", params={"bits": 33}))
    assert last.status == "failed" and last.error_kind == "input"
    assert "bits" in last.error and "33" in last.error
    # a method that is not installed is refused before any run starts, naming the ones that are
    with pytest.raises(WorkbenchError, match="toy.int") as caught:
        catalog.compress(Session(load_project(trained), host.registry), method="nope.x")
    assert caught.value.where == "method" and "nope.x" in str(caught.value)


def test_compress_cancel(toy_host, trained):
    host, _ = toy_host
    from workbench.core.runs.cancel import CancelToken

    token = CancelToken()
    session = Session(load_project(trained), host.registry)
    seen = []
    for event in catalog.compress(session, method="toy.int", cancel=token):
        seen.append(event)
        if event.name == "progress":
            token.set()
    assert seen[-1].status == "cancelled"


def test_deploy_checks_fit_then_streams_energy(toy_host, trained, tmp_path):
    host, _ = toy_host
    spec = host.registry.get("toy.sim")
    session = Session(load_project(trained), host.registry)
    last, events = finished(catalog.deploy(session, backend=spec.id, out=tmp_path / "out",
                                           limit=30))
    assert last.status == "ok", last.error
    live = [e for e in events if isinstance(e, EnergySample) and e.report.get("live")]
    assert [e.report["samples"] for e in live] == [10, 20, 30]
    assert live[-1].report["total_pj"] == 30.0
    assert last.summary["report"] == {"layers": 4}
    assert last.summary["estimate"]["kind"] == "estimate"
    assert json.loads((tmp_path / "out" / "deploy_report.json").read_text())["target"] == "cpu"
    # every driver lists the same steps: one StepStarted before each backend step
    assert [e.step for e in events if isinstance(e, StepStarted)] == ["converting", "writing"]

    last, events = finished(catalog.deploy(Session(load_project(trained), host.registry),
                                           backend=spec.id, target="tiny-chip",
                                           out=tmp_path / "out2"))
    assert last.status == "failed"
    assert "node 'hidden1'" in last.error and "does not fit tiny-chip" in last.error
    assert not (tmp_path / "out2" / "model.txt").exists()  # nothing ran after the check

    last, _ = finished(catalog.deploy(Session(load_project(trained), host.registry),
                                      backend=spec.id, target="fpga", out=tmp_path / "out3"))
    assert last.status == "failed" and last.error_kind == "input"
    assert "unknown target 'fpga'" in last.error


def cli(argv, capsys):
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue(), capsys.readouterr().err


def test_cli_compress_and_deploy(toy_host, trained, tmp_path, capsys):
    _, module = toy_host
    code, text, err = cli(["compress", str(trained), "--method", "toy.int", "--param", "bits=6",
                           "--out", str(tmp_path / "v"), "--json", "--plugin", module], capsys)
    assert code == 0, err
    summary = json.loads(text.splitlines()[-1])
    for side in ("before", "after"):
        assert {"accuracy", "model_size_bytes", "params", "bits",
                "total_pj_per_sample"} <= set(summary[side])
    assert summary["after"]["bits"]["fc"] == 6

    code, text, err = cli(["compress", str(trained), "--method", "toy.int", "--out",
                           str(tmp_path / "v2"), "--plugin", module], capsys)
    assert code == 0, err
    assert "before" in text and "model size" in text and "compressed project saved" in text

    # replay the recorded pass on the parent
    code, text, err = cli(["compress", str(trained), "--replay", str(tmp_path / "v"), "--out",
                           str(tmp_path / "v3"), "--json", "--plugin", module], capsys)
    assert code == 0, err
    assert load_project(tmp_path / "v3").compression[-1]["params"] == {"bits": 6}

    code, _, err = cli(["compress", str(trained), "--method", "toy.int", "--param", "bits=0",
                        "--out", str(tmp_path / "bad"), "--plugin", module], capsys)
    assert code == 2 and "bits" in err and "Traceback" not in err
    code, _, err = cli(["compress", str(trained), "--method", "nope.x", "--out",
                        str(tmp_path / "bad"), "--plugin", module], capsys)
    assert code == 2 and "nope.x" in err and "toy.int" in err

    code, text, err = cli(["deploy", str(trained), "--backend", "toy.sim", "--out",
                           str(tmp_path / "d"), "--limit", "20", "--plugin", module], capsys)
    assert code == 0, err
    assert "converting" in text and "report:" in text and "estimate" in text
    code, _, err = cli(["deploy", str(trained), "--backend", "toy.sim", "--target", "tiny-chip",
                        "--plugin", module], capsys)
    assert code == 2 and "hidden1" in err
    # without --backend: the project's recorded deploy target, or a clear message
    code, _, err = cli(["deploy", str(trained), "--plugin", module], capsys)
    assert code == 2 and "--backend is required" in err
    project = load_project(trained)
    project.deploy = {"backend": "toy.sim", "target": "tiny-chip", "params": {}}
    save_project(project)
    code, _, err = cli(["deploy", str(trained), "--plugin", module], capsys)
    assert code == 2 and "does not fit tiny-chip" in err
    code, _, err = cli(["deploy", str(trained), "--target", "cpu", "--limit", "10", "--out",
                        str(tmp_path / "d2"), "--plugin", module], capsys)
    assert code == 0, err


def test_training_a_compressed_variant_keeps_the_training(toy_host, trained, tmp_path):
    """Training moves quantised weights off their grid: the layers are then saved in float,
    never as the stale packed codes (which would silently undo the training)."""
    host, _ = toy_host
    out = tmp_path / "variant"
    last, _ = finished(catalog.compress(Session(load_project(trained), host.registry),
                                        method="toy.int", params={"bits": 4}, out=out))
    assert last.status == "ok", last.error
    session = Session(load_project(out), host.registry)
    events = list(session.train(epochs=1))
    assert events[-1].status == "ok"
    assert any(e.name == "log" and "off their grid" in e.message for e in events)
    assert events[0].name == "run_started"
    trained_weight = session.model.layers["hidden1"].fc.weight.detach().clone()
    session.save_weights()
    again = Session(load_project(out), host.registry)
    model = again.build()
    assert torch.equal(model.layers["hidden1"].fc.weight, trained_weight)
    assert describe(model)["layers"][1]["weight_bits"] == 32
    # a stale record on a module is never packed either
    module = model.layers["fc"]
    module.weight_quant = QuantizedTensor.from_ints(torch.ones_like(module.weight),
                                                    torch.ones(module.weight.shape[0]), 2)
    save_weights(model, tmp_path / "w.safetensors")
    fresh = Session(load_project(out), host.registry).build(load_saved_weights=False)
    load_weights(fresh, tmp_path / "w.safetensors")
    assert torch.equal(fresh.layers["fc"].weight, model.layers["fc"].weight)


def test_cli_info_counts_a_variant_at_its_bit_width(toy_host, trained, tmp_path, capsys):
    _, module = toy_host
    code, _, err = cli(["compress", str(trained), "--method", "toy.int", "--param", "bits=4",
                        "--out", str(tmp_path / "v"), "--plugin", module], capsys)
    assert code == 0, err
    code, text, err = cli(["info", str(tmp_path / "v"), "--json", "--plugin", module], capsys)
    assert code == 0, err
    info = json.loads(text.splitlines()[-1])
    assert {layer["name"]: layer["weight_bits"] for layer in info["layers"]
            if layer["params"]} == {"hidden1": 4, "hidden2": 4, "fc": 4}
    assert info["bytes"] == load_project(tmp_path / "v").compression[-1]["after"][
        "model_size_bytes"]


def test_replay_runs_the_recorded_passes_as_one_run(toy_host, trained, tmp_path):
    host, _ = toy_host
    first, second = tmp_path / "v1", tmp_path / "v2"
    last, _ = finished(catalog.compress(Session(load_project(trained), host.registry),
                                        method="toy.int", params={"bits": 6}, out=first))
    assert last.status == "ok", last.error
    last, _ = finished(catalog.compress(Session(load_project(first), host.registry),
                                        method="toy.int", params={"bits": 4}, out=second))
    assert last.status == "ok", last.error

    parent = Session(load_project(trained), host.registry)
    run = catalog.replay(parent, variant=second, out=tmp_path / "again")
    last, events = finished(run)
    assert last.status == "ok", last.error
    assert [e.name for e in events].count("run_started") == 1  # the passes are one run's steps
    assert {e.run_id for e in events} == {run.id}
    assert last.summary["passes"] == 2 and last.summary["params"] == {"bits": 4}
    replayed = load_project(tmp_path / "again")
    assert [p["params"] for p in replayed.compression] == [{"bits": 6}, {"bits": 4}]
    assert replayed.compression[-1]["after"]["bits"]["hidden1"] == 4
    # the run recorded itself in the parent project
    assert (trained / "runs" / f"{run.id}.jsonl").is_file()
    # a variant with no pass beyond the project's is refused before the run starts
    with pytest.raises(WorkbenchError, match="no compression pass"):
        catalog.replay(Session(load_project(second), host.registry), variant=second)
