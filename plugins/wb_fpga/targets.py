"""The FPGA targets: resources, tool options and power models, with their sources.

Resource counts: Lattice, *iCE40 UltraPlus Family Data Sheet* (FPGA-DS-02008), UP5K: 5280
LUT4 + FF, 30 EBR blocks of 4 kbit (sysMEM, 256x16 .. 2048x2), 4 SPRAM blocks of 256 kbit
(16K x 16), 8 DSP (SB_MAC16); Lattice, *ECP5 and ECP5-5G Family Data Sheet* (FPGA-DS-02012),
LFE5U-25F: 24k LUT4, 56 EBR blocks of 18 kbit (DP16KD, 16Kx1 .. 512x36), 28 18x18 multipliers.
nextpnr's report gives the counts it places against, which the deploy report shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PowerModel:
    """``P = V * (I_static + f_MHz * (I_clock + I_lc * LCs))``, an estimate, never a measurement.

    ``source`` names where the figures come from; ``kind`` is ``"estimate"``."""

    name: str
    volts: float
    static_ua: float
    clock_ua_per_mhz: float
    lc_ua_per_mhz: float
    source: str
    notes: str = ""

    def watts(self, f_mhz: float, logic_cells: int) -> float:
        current_ua = self.static_ua + f_mhz * (self.clock_ua_per_mhz
                                               + self.lc_ua_per_mhz * logic_cells)
        return self.volts * current_ua * 1e-6

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": "estimate", "volts": self.volts,
                "static_ua": self.static_ua, "clock_ua_per_mhz": self.clock_ua_per_mhz,
                "lc_ua_per_mhz": self.lc_ua_per_mhz, "source": self.source, "notes": self.notes}


# tinyvision-ai-inc/ice40_power (README, "Results"): iCE40UP5K-SG48 on the Lattice iCE40
# UltraPlus breakout board, each rail measured with a Joulescope JS110, core rail 1.219 V.
# halted clock, 28-LC design: 92.1 uA; external 12 MHz + 32-LC counter: 613.5 uA
#   -> (613.5 - 92.1) / 12 = 43.45 uA/MHz for the clock network and a minimal design;
# HFOSC 12 MHz with a 180-LC multiplier toggling every cycle: 996 uA vs 645 uA without it
#   -> (996 - 645) / 180 / 12 = 0.1625 uA per MHz per logic cell (a busy datapath).
ICE40_UP5K_POWER = PowerModel(
    name="iCE40 UP5K core rail (measured board figures, linear in f and logic cells)",
    volts=1.219, static_ua=92.1, clock_ua_per_mhz=43.45, lc_ua_per_mhz=0.1625,
    source="tinyvision-ai-inc/ice40_power README (iCE40UP5K-SG48, Joulescope JS110 "
           "measurements of the 1.219 V core rail): 92.1 uA static, 43.45 uA/MHz clock, "
           "0.1625 uA/MHz per busy logic cell",
    notes="Every placed logic cell is taken as toggling like the measured multiplier (an upper "
          "estimate for a sparse, event-driven design); block RAM, SPRAM and I/O power are not "
          "in the model.")

# ButterStick hardware issue #2 (butterstick-fpga/butterstick-hardware): the ECP5 1.1 V VCC
# regulator budget "ranges from 77mA on the 12F to 212mA on the 85F". Interpolated by LUT
# count (12k .. 84k) to the 25F (24k): 77 + (24 - 12) / (84 - 12) * (212 - 77) = 99.5 mA.
ECP5_25K_POWER = PowerModel(
    name="ECP5-25F core-rail current budget (constant, upper bound)",
    volts=1.1, static_ua=99_500.0, clock_ua_per_mhz=0.0, lc_ua_per_mhz=0.0,
    source="butterstick-fpga/butterstick-hardware issue #2: ECP5 VCC (1.1 V) current budget "
           "77 mA (LFE5U-12F) .. 212 mA (LFE5U-85F), interpolated by LUT count to 99.5 mA for "
           "the LFE5U-25F",
    notes="A regulator-sizing budget, not a measurement of this design: read the energy as an "
          "upper bound. Lattice's Power Calculator (Diamond/Radiant) gives a design-specific "
          "figure.")


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    family: str  # "ice40" or "ecp5"
    yosys_synth: str
    nextpnr_args: tuple[str, ...]
    luts: int
    ffs: int
    bram_blocks: int
    bram_bits: int  # bits per block
    bram_shapes: tuple[tuple[int, int], ...]  # (depth, width) configurations of one block
    spram_blocks: int  # iCE40 SPRAM (16K x 16); 0 elsewhere
    dsps: int
    report_cells: dict[str, tuple[str, ...]] = field(default_factory=dict)
    power: PowerModel = ICE40_UP5K_POWER
    nominal_mhz: float = 12.0  # the clock used when no Fmax is known (no synthesis)
    bram_name: str = "EBR"
    sources: str = ""

    def bram_for(self, depth: int, width: int) -> int:
        """Blocks for one ``depth x width`` memory: the cheapest block configuration."""
        if depth <= 0 or width <= 0:
            return 0
        return min(-(-width // w) * -(-depth // d) for d, w in self.bram_shapes)

    def spram_for(self, depth: int, width: int) -> int:
        """SPRAM blocks (16K x 16) for one memory; a huge number where there is no SPRAM."""
        if not self.spram_blocks:
            return 1 << 30
        return -(-width // 16) * -(-depth // 16384)


TARGETS: dict[str, Target] = {
    "ice40-up5k": Target(
        name="ice40-up5k",
        description="Lattice iCE40 UltraPlus UP5K (SG48): 5280 LUT4, 30 x 4 kbit EBR, "
                    "4 x 256 kbit SPRAM, 8 DSP",
        family="ice40",
        yosys_synth="synth_ice40",
        nextpnr_args=("--up5k", "--package", "sg48"),
        luts=5280, ffs=5280, bram_blocks=30, bram_bits=4096,
        bram_shapes=((256, 16), (512, 8), (1024, 4), (2048, 2)),
        spram_blocks=4, dsps=8,
        report_cells={"LC": ("ICESTORM_LC",), "BRAM": ("ICESTORM_RAM",),
                      "SPRAM": ("ICESTORM_SPRAM",), "DSP": ("ICESTORM_DSP",),
                      "IO": ("SB_IO",)},
        power=ICE40_UP5K_POWER, nominal_mhz=12.0,
        sources="iCE40 UltraPlus Family Data Sheet, FPGA-DS-02008"),
    "ecp5-25k": Target(
        name="ecp5-25k",
        description="Lattice ECP5 LFE5U-25F (CABGA256): 24k LUT4, 56 x 18 kbit DP16KD, "
                    "28 multipliers 18x18",
        family="ecp5",
        yosys_synth="synth_ecp5",
        nextpnr_args=("--25k", "--package", "CABGA256"),
        luts=24288, ffs=24288, bram_blocks=56, bram_bits=18432,
        bram_shapes=((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
        spram_blocks=0, dsps=28,
        report_cells={"LUT": ("TRELLIS_COMB",), "FF": ("TRELLIS_FF",), "BRAM": ("DP16KD",),
                      "DSP": ("MULT18X18D",), "IO": ("TRELLIS_IO",)},
        power=ECP5_25K_POWER, nominal_mhz=25.0,
        sources="ECP5 and ECP5-5G Family Data Sheet, FPGA-DS-02012"),
}


def get_target(name: str) -> Target:
    from workbench.pluginhost import DeployError

    try:
        return TARGETS[name]
    except KeyError:
        raise DeployError(f"unknown target {name!r}; wb_fpga offers: " + ", ".join(TARGETS),
                          where="target") from None
