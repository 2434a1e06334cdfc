"""``wb_sim``: the integer, event-driven simulator, the golden model of a deployed network.

A trained chain of spiking layers is converted to integers (``convert.to_integer``), run event
by event (``simulate.simulate``) and checked bit for bit against a dense torch run of the same
arithmetic (``reference.torch_integer_forward``). The integer network format (``ir.py``) is
what ``wb_fpga`` turns into hardware. Details: ``docs/sim.md``.

Importing this module is cheap: the backend is named by a ``"module:attr"`` string, so numpy and
torch are imported only when a deployment runs.
"""

from __future__ import annotations

from workbench.pluginhost import BackendSpec, ParamSpec, hookimpl


@hookimpl
def wb_backends() -> list[BackendSpec]:
    return [
        BackendSpec(
            id="wb_sim.simulator",
            display_name="Integer event-driven simulator",
            factory="wb_sim.backend:SimBackend",
            kind="simulator",
            known_targets=("cpu",),
            doc="Converts the trained network to integers and runs it event by event on the CPU "
                "(numpy); the golden model the FPGA must match bit for bit. Time-to-first-spike "
                "networks run from a priority queue of spike times in integer ticks. Energy is an "
                "estimate: counted events × the INT8 45 nm table.",
            params=(
                ParamSpec("weight_bits", 8, "int", low=2, high=16, unit="bits",
                          doc="Weight width for layers that are not quantised yet (per output "
                              "channel, symmetric); quantised layers keep their own"),
                ParamSpec("frac_bits", 8, "int", low=0, high=24, unit="bits",
                          doc="Fraction bits of the membrane potential: bias, threshold and leak "
                              "are exact to 2^-frac_bits of a channel's input step"),
                ParamSpec("input_bits", 8, "int", low=1, high=16, unit="bits",
                          doc="Unsigned width of the integer input"),
                ParamSpec("time_bits", 8, "int", low=0, high=24, unit="bits",
                          doc="Time-to-first-spike networks: firing times are whole ticks of "
                              "2^-time_bits time units (8: 256 ticks per unit of the encoder's "
                              "t_max)"),
                # Each simulate() call has a fixed cost per layer and step: chunks of 8 streamed
                # the digits MLP at 50-65 % of one batch's speed; chunks of 64 ran at one
                # batch's speed (within the noise of 2 shared cores) and still updated every
                # 5-10 ms (digits_mlp) to 50-80 ms (digits_conv).
                ParamSpec("chunk", 64, "int", low=1, high=4096, unit="samples",
                          doc="Samples simulated between two live energy updates (64: as fast "
                              "as one batch, and still several updates a second)"),
            ),
        )
    ]
