"""Helpers of the ``wb_fpga`` tests: a plugin step's generator run to its end, and the pins of
the pin-limited wrapper (``wb_fpga.hdl.SerialTop``) driven from an Amaranth testbench."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any


def drain(gen: Generator[Any, None, Any]) -> Any:
    """Run a plugin step's generator to its end, dropping its events; its return value."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


class SerialPins:
    """A ``SerialTop`` seen from the board: a command word shifted in on ``sdi`` (every core
    input, LSB first, in the wrapper's ``inputs()`` order), ``apply`` for one cycle; every
    core output captured and shifted out on ``sdo`` (in ``outputs()`` order)."""

    def __init__(self, top: Any) -> None:
        self.top = top
        self.inputs, self.outputs = top.inputs(), top.outputs()

    def word(self, **values: int) -> tuple[int, int]:
        """``(bits, width)`` of the command setting the inputs named (the others 0)."""
        bits, offset = 0, 0
        for sig in self.inputs:
            bits |= (values.get(sig.name, 0) & ((1 << len(sig)) - 1)) << offset
            offset += len(sig)
        return bits, offset

    def field(self, value: int, name: str, signed: bool = False) -> int:
        """Output ``name`` out of a read-back word (two's complement when ``signed``)."""
        offset = 0
        for sig in self.outputs:
            if sig.name == name:
                raw = (value >> offset) & ((1 << len(sig)) - 1)
                return raw - (1 << len(sig)) if signed and raw >> (len(sig) - 1) else raw
            offset += len(sig)
        raise KeyError(name)

    async def command(self, ctx: Any, apply: bool = True, **values: int) -> None:
        """Shift a command in; ``apply`` drives the core from it for one cycle (the strobes
        act only then)."""
        top = self.top
        bits, width = self.word(**values)
        ctx.set(top.shift, 1)
        for i in range(width):
            ctx.set(top.sdi, (bits >> i) & 1)
            await ctx.tick()
        ctx.set(top.shift, 0)
        if apply:
            ctx.set(top.apply, 1)
            await ctx.tick()
            ctx.set(top.apply, 0)

    async def readback(self, ctx: Any) -> int:
        """Capture every output and shift the word out."""
        top = self.top
        ctx.set(top.capture, 1)
        await ctx.tick()
        ctx.set(top.capture, 0)
        value = 0
        ctx.set(top.shift, 1)
        for i in range(sum(len(s) for s in self.outputs)):
            value |= ctx.get(top.sdo) << i
            await ctx.tick()
        ctx.set(top.shift, 0)
        return value

    async def read(self, ctx: Any, name: str, signed: bool = False) -> int:
        """One output, read back."""
        return self.field(await self.readback(ctx), name, signed)
