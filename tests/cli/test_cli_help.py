"""Help a newcomer can use: every command says what it does and shows examples; compress and
deploy list what the installed plugins offer. And faults said once: the FPGA fit problems, the
NIR importer's node."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from cli_helpers import assert_input_error, run

from workbench.cli import main
from workbench.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[2]


def help_text(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return out.getvalue()


def commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return list(sub.choices)


@pytest.mark.parametrize("command", commands())
def test_every_command_has_a_description_and_examples(command):
    text = help_text(command)
    description = text.split("\n\n")[1]  # after the usage: what the command does
    assert len(description.split()) >= 8, description
    examples = text.split("examples:\n", 1)[1].splitlines()
    shown = [line.strip() for line in examples if line.startswith("  snn-workbench")]
    assert 1 <= len(shown) <= 3
    assert all(line.split()[1] == command for line in shown if len(line.split()) > 1
               and not line.split()[1].startswith("#"))
    # each example parses: it is a command line this program accepts
    for line in shown:
        argv = line.split("#")[0].split()[1:]
        build_parser().parse_args(argv)


def test_compress_and_deploy_help_list_what_the_plugins_offer(plugin_host):
    registry = plugin_host.registry
    text = help_text("compress")
    methods = registry.of_kind("compression")
    assert methods
    for spec in methods:
        assert f"  {spec.id}  {spec.display_name}" in text
        for p in spec.params:
            assert f"      {p.name}=" in text
    assert "ratio=0.5 (str, 0..1)" in text  # default, type and range beside each name

    text = help_text("deploy")
    for spec in registry.of_kind("backend"):
        assert f"  {spec.id}  {spec.display_name}" in text
        # the listed targets are the backend's own (the help names them without building it)
        assert spec.known_targets == tuple(spec.create(**spec.defaults()).targets())
        assert f"targets: {', '.join(spec.known_targets)}" in text
    assert "targets: ice40-up5k, ecp5-25k (the first is the default)" in text
    assert "parallelism=16 (int, 1..256, lanes)" in text


def test_deploy_help_imports_no_torch():
    body = ("import contextlib, io, json, sys\n"
            "from workbench.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
            "    main(['deploy', '--help'])\n"
            "print(json.dumps({'listed': 'wb_fpga.fpga' in out.getvalue(),\n"
            "                  'heavy': sorted(m for m in sys.modules\n"
            "                                  if m.split('.')[0] in ('torch', 'PySide6'))}))\n")
    done = subprocess.run([sys.executable, "-c", body], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"listed": True, "heavy": []}


def test_a_network_that_does_not_fit_is_told_once(trained_digits_mlp, tmp_path, capsys):
    project = tmp_path / "digits_mlp"
    shutil.copytree(trained_digits_mlp, project, ignore=shutil.ignore_patterns("runs"))
    code, _, text, err = run(["deploy", str(project), "--backend", "wb_fpga.fpga",
                              "--target", "ice40-up5k", "--param", "parallelism=128",
                              "--out", str(tmp_path / "build"), "--limit", "20"], capsys)
    assert_input_error(code, err, "digits_mlp does not fit ice40-up5k: 2 problems (the first "
                                  "at node 'hidden1'), listed above")
    problems = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(problems) == 2
    assert problems[0].startswith("error: node 'hidden1': does not fit ice40-up5k: its 256 x 64")
    assert "LUTs" in problems[1]
    both = text + err
    for problem in problems:  # each problem printed once, in full
        assert both.count(problem.removeprefix("error: ")) == 1
    assert "does not fit ice40-up5k: does not fit" not in both


def test_the_nir_importer_names_an_unsupported_node_once(tmp_path, capsys):
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([4])}),
        "fc": nir.Affine(weight=np.ones((3, 4), np.float32), bias=np.zeros(3, np.float32)),
        "wait": nir.Delay(delay=np.ones(3, np.float32)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }, edges=[("input", "fc"), ("fc", "wait"), ("wait", "output")])
    nir.write(tmp_path / "delay.nir", graph)
    code, _, _, err = run(["import-nir", str(tmp_path / "delay.nir"), str(tmp_path / "p")],
                          capsys)
    assert_input_error(code, err, "node 'wait': cannot import this NIR node (Delay): synaptic "
                                  "delays have no workbench block")
    assert err.count("wait") == 1
