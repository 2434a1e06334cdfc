"""``snn-workbench sweep`` on the command line: --list, a sweep here with its table and JSON
summary, and one message for each bad option. The sweep itself is tested in
tests/core/test_sweep.py; on a Ray cluster in tests/plugins/test_ray_runner.py."""

from __future__ import annotations

from cli_helpers import assert_input_error, run

from workbench.core.persistence.project_files import load_project
from workbench.testing.fixtures import make_tiny_project


def test_list_names_every_setting_with_its_value(tmp_path, capsys):
    make_tiny_project(tmp_path / "tiny")
    code, _, text, _ = run(["sweep", str(tmp_path / "tiny"), "--list"], capsys)
    assert code == 0
    rows = {line.split()[0]: line.split()[1] for line in text.splitlines()[1:]}
    assert rows["training.rule.params.lr"] == "0.005" and rows["time_steps"] == "2"


def test_a_sweep_prints_a_line_per_trial_and_a_table_best_first(tmp_path, capsys):
    make_tiny_project(tmp_path / "tiny")
    code, _, text, _ = run(["sweep", str(tmp_path / "tiny"), "--over", "lr=0.001,0.05",
                            "--over", "time_steps=1", "--epochs", "1", "--limit", "32"], capsys)
    assert code == 0, text
    assert "trial 1 of 2: lr=0.001, time_steps=1" in text
    table = text[text.index("\nok\n") + 4:].splitlines()
    assert table[0].split() == ["trial", "accuracy", "energy/sample", "time", "values"]
    accuracy = [float(line.split()[1].rstrip("%")) for line in table[1:3]]
    assert accuracy == sorted(accuracy, reverse=True)
    best = table[3].removeprefix("best: ")
    assert best.startswith(str(tmp_path / "tiny" / "variants" / "sweep-lr-time_steps-t0"))
    assert load_project(best).time_steps == 1

    code, lines, _, _ = run(["sweep", str(tmp_path / "tiny"), "--over", "lr=0.01",
                             "--epochs", "1", "--limit", "32", "--json"], capsys)
    summary = lines[-1]
    assert code == 0 and summary["event"] == "summary" and summary["status"] == "ok"
    assert [t["trial"] for t in summary["trials"]] == ["sweep-lr-t01"]
    assert summary["best_values"] == {"training.rule.params.lr": 0.01}


def test_bad_options_are_one_line_each(tmp_path, capsys):
    make_tiny_project(tmp_path / "tiny")
    tiny = str(tmp_path / "tiny")
    cases = [(["--over", "lr"], "expected SETTING=V1,V2"),
             ([], "give at least one --over"),
             (["--over", "lr=0.1,,0.2"], "between commas"),
             (["--over", "nope=1"], "`snn-workbench sweep PROJECT --list` lists them"),
             (["--over", "lr=0.1", "--parallel", "2"], "several at once need a runner"),
             (["--over", "lr=0.1", "--ray", "127.0.0.1:8265"], "http://HOST:8265")]
    for extra, needle in cases:
        code, _, _, err = run(["sweep", tiny, *extra], capsys)
        assert_input_error(code, err, needle)
    assert not (tmp_path / "tiny" / "variants").exists()
