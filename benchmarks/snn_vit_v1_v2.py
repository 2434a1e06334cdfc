"""How often SSSA's two forms select the same tokens when ``M_w`` is not diagonal.

Random trials: binary Q, K (firing probability 0.3), T = 4, B = 5, N = 8, D = 16, 2 heads;
``M_w`` with a uniform diagonal in [0.5, 1.5] and Gaussian strictly-lower entries of the given
std; per step a free threshold drawn uniformly between the extremes of ``H[t]`` (or, one time
in five, below 0). Prints the share of mask entries on which ``train_v1`` and ``v2`` agree, per
step and overall (docs/snn_vit.md, "V1 and V2 with a full M_w").

    python benchmarks/snn_vit_v1_v2.py [--trials 20] [--stds 1 0.3 0.1]
"""

from __future__ import annotations

import argparse

import torch

T, B, N, D, HEADS = 4, 5, 8, 16, 2


def agreement(norm: str, std: float, trials: int) -> list[float]:
    """Mean agreement per step over ``trials`` random draws."""
    from wb_core.neurons import lif
    from wb_snn_vit.attention import sssa

    gen = torch.Generator().manual_seed(0)
    total = torch.zeros(T, dtype=torch.float64)
    for _ in range(trials):
        attn = sssa([(N, D)], lif, heads=HEADS, salience_norm=norm, threshold_units="salience",
                    threshold_rule="median").to(torch.float64).eval()
        sac = attn.saccade
        q, k, v = ((torch.rand(T, B, N, D, generator=gen) < 0.3).to(torch.float64)
                   for _ in range(3))
        with torch.no_grad():
            sac.A.copy_(std * torch.randn(T, T, generator=gen, dtype=torch.float64))
            diag = 0.5 + torch.rand(T, generator=gen, dtype=torch.float64)
            sac.a.copy_(torch.log(torch.expm1(diag - 1e-3)))
            h = sac.potential(attn.attend(q, k, v)[2]).reshape(T, -1)
            lo, hi = h.amin(1), h.amax(1)
            u = torch.rand(T, generator=gen, dtype=torch.float64)
            sac.set_threshold(torch.where(u < 0.2, -u, lo + (hi - lo) * u))
        masks = []
        for mode in ("train_v1", "v2"):
            attn.mode = mode
            masks.append(attn.attend(q, k, v)[1])
        total += (masks[0] == masks[1]).to(torch.float64).mean((1, 2, 3))
    return (total / trials).tolist()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--stds", type=float, nargs="+", default=[1.0, 0.3, 0.1])
    args = parser.parse_args()
    print(f"{args.trials} trials each; agreement of train_v1 and v2 masks")
    print(f"{'salience':<10}{'lower std':>10}{'overall':>9}   per step 0..{T - 1}")
    for norm in ("rate", "count"):
        for std in args.stds:
            per_step = agreement(norm, std, args.trials)
            print(f"{norm:<10}{std:>10g}{sum(per_step) / T:>9.3f}   "
                  + " ".join(f"{a:.3f}" for a in per_step))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
