"""``wb_fpga``: a spiking core in Amaranth HDL, checked bit for bit against ``wb_sim`` and
built with YoWASP yosys + nextpnr for the iCE40 UltraPlus UP5K and the ECP5-25F.

Modules: ``plan`` (layer table, widths, memories), ``conv`` (conv geometry and its cycle costs),
``hdl`` (the core and its linear engine), ``hdl_conv`` (the conv engine), ``sim`` (Amaranth
simulation), ``cycles`` (event trace and cycle model), ``fit`` (the fit check), ``targets``
(resources and power models), ``toolchain`` (Verilog, yosys, nextpnr, icepack), ``backend``.
Details: ``docs/fpga.md``.

Importing this module is cheap: the backend is named by a ``"module:attr"`` string, so Amaranth,
numpy and torch are imported only when a deployment runs.
"""

from __future__ import annotations

from workbench.pluginhost import BackendSpec, ParamSpec, hookimpl


@hookimpl
def wb_backends() -> list[BackendSpec]:
    return [
        BackendSpec(
            id="wb_fpga.fpga",
            display_name="FPGA spiking core (iCE40 UP5K, ECP5)",
            factory="wb_fpga.backend:FpgaBackend",
            kind="hardware",
            known_targets=("ice40-up5k", "ecp5-25k"),
            doc="Generates an event-driven spiking core in Amaranth HDL from the integer "
                "network (linear and conv layers, max pooling; ternary spikes, b-bit membrane "
                "codes and spike-train inputs on linear layers), checks it in simulation "
                "against wb_sim bit for bit, synthesises it with YoWASP yosys and nextpnr, "
                "and reports resources, Fmax, cycles, latency and an energy estimate (a named "
                "power model).",
            params=(
                ParamSpec("parallelism", 16, "int", low=1, high=256, unit="lanes",
                          doc="Neurons (linear layers) or output channels (conv layers) "
                              "accumulated in parallel per cycle (P): more lanes, fewer cycles, "
                              "more logic and wider weight and membrane words"),
                ParamSpec("weight_bits", 4, "int", low=2, high=16, unit="bits",
                          doc="Weight width for layers that are not quantised yet (per output "
                              "channel, symmetric); quantised layers keep their own"),
                ParamSpec("input_bits", 8, "int", low=1, high=16, unit="bits",
                          doc="Unsigned width of the integer input (sets the first layer's "
                              "multipliers)"),
                ParamSpec("sim_samples", 50, "int", low=1, high=100_000, unit="samples",
                          doc="Test samples simulated in Amaranth and compared with wb_sim and "
                              "the torch integer reference (predictions and spike counts)"),
                ParamSpec("synthesize", True, "bool",
                          doc="Run yosys, nextpnr and the bitstream packer; off: simulate and "
                              "export Verilog only"),
                ParamSpec("tool_timeout_s", 600, "int", low=10, high=86_400, unit="s",
                          doc="Time limit for each tool run"),
            ),
        )
    ]
