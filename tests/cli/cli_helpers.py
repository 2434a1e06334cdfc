"""Running ``snn-workbench`` in-process the way the tests read it."""

from __future__ import annotations

import io
import json

from workbench.cli import main


def run(argv, capsys):
    """``(exit code, JSON lines, stdout text, stderr text)``."""
    out = io.StringIO()
    code = main(argv, out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return code, lines, out.getvalue(), capsys.readouterr().err


def assert_input_error(code, err, *needles):
    """Exit 2 with exactly one ``error:`` line naming every needle, and no traceback."""
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("snn-workbench: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], err
