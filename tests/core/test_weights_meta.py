"""A weights file's ``quantized`` metadata is untrusted: every size and type in it is checked
against the file before anything is allocated from it, and each malformed value is a
WeightsError naming the file and the tensor, quickly and in little memory."""

from __future__ import annotations

import json
import resource
import sys
import time

import pytest
import torch
from safetensors.torch import save_file

from workbench.core.build.quantized import QuantizedTensor, attach
from workbench.core.model.errors import WeightsError
from workbench.core.persistence.weights import load_weights

GOOD = {"weight": {"bits": 4, "shape": [4, 3], "q_step": 1, "q_zero": -8}}


def _net() -> torch.nn.Module:
    return torch.nn.Linear(3, 4)


def _tensors(codes: int = 6) -> dict[str, torch.Tensor]:
    """A Linear(3, 4) stored packed: 12 four-bit codes in 6 bytes, one scale per output."""
    return {"weight.q_codes": torch.arange(codes, dtype=torch.uint8),
            "weight.q_scale": torch.full((4,), 0.5), "bias": torch.zeros(4)}


def _write(path, quantized, tensors=None):
    raw = quantized if isinstance(quantized, str) else json.dumps(quantized)
    save_file(tensors or _tensors(), str(path),
              metadata={"format": "snn-workbench-weights", "quantized": raw})
    return path


def _max_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024


def _with(**record):
    return {"weight": {**GOOD["weight"], **record}}


def _without(key):
    return {"weight": {k: v for k, v in GOOD["weight"].items() if k != key}}


#: name -> (quantized metadata, what the message says)
BAD = {
    "huge shape": (_with(shape=[2**40, 2**40]), "packed bytes"),
    "eight huge dims": (_with(shape=[10**6] * 8), "packed bytes"),
    "too many dims": (_with(shape=[1] * 9), "'shape' must be a list of 1 to 8"),
    "empty shape": (_with(shape=[]), "'shape' must be a list"),
    "shape as text": (_with(shape="4x3"), "'shape' must be a list"),
    "nested shape": (_with(shape=[[4], [3]]), "'shape' must be a whole number"),
    "negative shape": (_with(shape=[-4, -3]), "outside"),
    "float size": (_with(shape=[4.0, 3]), "whole number"),
    "bits 0": (_with(bits=0), "'bits' is 0, outside [1, 32]"),
    "bits 64": (_with(bits=64), "outside [1, 32]"),
    "huge bits": (_with(bits=10**9), "outside [1, 32]"),
    "bits as text": (_with(bits="4"), "'bits' must be a whole number"),
    "bits true": (_with(bits=True), "'bits' must be a whole number"),
    "q_step 0": (_with(q_step=0), "'q_step' is 0"),
    "huge q_zero": (_with(q_zero=-(2**70)), "a 71-bit integer"),
    "missing bits": (_without("bits"), "no 'bits'"),
    "missing shape": (_without("shape"), "no 'shape'"),
    "record a list": ({"weight": [4, 3]}, "its record is a list"),
    "metadata a list": ([1, 2], "a JSON list"),
    "not JSON": ("{'weight':", "not valid JSON"),
    "deep nesting": ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
    "5000-digit bits": ('{"weight": {"bits": ' + "9" * 5000 + "}}", "not valid JSON"),
    "too long": (json.dumps({"weight": GOOD["weight"], "pad": "x" * (5 << 20)}), "long"),
    "unknown tensor": ({"other": GOOD["weight"]}, "no tensor 'other.q_codes'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_metadata_is_a_weights_error_naming_file_and_tensor(tmp_path, case):
    quantized, needle = BAD[case]
    path = _write(tmp_path / "w.safetensors", quantized)
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    started, rss = time.perf_counter(), _max_rss_mb()
    with pytest.raises(WeightsError) as err:
        load_weights(net, path)
    assert time.perf_counter() - started < 2
    assert _max_rss_mb() - rss < 128
    message = str(err.value)
    assert message.startswith(str(path)) and needle in message, message
    if isinstance(quantized, dict) and isinstance(quantized.get("weight"), dict):
        assert "'weight'" in message
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_the_packed_tensors_must_match_the_record(tmp_path):
    cases = {
        "codes too short": (_tensors(codes=5), "needs 6 packed bytes, the file holds 5"),
        "codes as floats": ({**_tensors(), "weight.q_codes": torch.zeros(6)}, "1-D uint8"),
        "scale too short": ({**_tensors(), "weight.q_scale": torch.ones(3)}, "expected 4"),
        "scale of ints": ({**_tensors(), "weight.q_scale": torch.ones(4, dtype=torch.int32)},
                          "floating-point"),
        "no scale": ({k: v for k, v in _tensors().items() if k != "weight.q_scale"},
                     "no tensor 'weight.q_scale'"),
    }
    for name, (tensors, needle) in cases.items():
        path = _write(tmp_path / f"{name}.safetensors", GOOD, tensors)
        with pytest.raises(WeightsError, match="'weight'") as err:
            load_weights(_net(), path)
        assert str(path) in str(err.value) and needle in str(err.value), (name, err.value)


def test_a_well_formed_packed_file_still_loads(tmp_path):
    from workbench.core.persistence.weights import save_weights

    net = _net()
    quant = QuantizedTensor.from_ints(torch.randint(-8, 8, (4, 3)), torch.full((4,), 0.25), 4)
    attach(net, quant)
    save_weights(net, tmp_path / "w.safetensors")
    other = _net()
    load_weights(other, tmp_path / "w.safetensors")
    assert torch.equal(other.weight, net.weight)
    assert torch.equal(other.weight_quant.codes, quant.codes)
