"""The launcher's checks before Qt starts: no display, or Qt's X11 libraries missing, is one line
with the fix and exit status 2, never a Qt abort. Fake environments and a fake ldd: no Qt."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.cli import main
from workbench.gui import preflight
from workbench.gui.preflight import LaunchProblem, check

PLUGIN = Path("/fake/PySide6/Qt/plugins/platforms/libqxcb.so")
# what ldd printed for libqxcb.so on a Debian 12 machine with only libxcb-cursor0 installed
LDD = """\
\tlinux-vdso.so.1 (0x00007ffc)
\tlibGL.so.1 => /lib/x86_64-linux-gnu/libGL.so.1 (0x00007f26)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f26)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibX11.so.6 => /lib/x86_64-linux-gnu/libX11.so.6 (0x00007f26)
"""


def fake_ldd(output: str | None):
    seen = []

    def ldd(path: Path) -> str | None:
        seen.append(path)
        return output

    ldd.seen = seen
    return ldd


@pytest.mark.parametrize("env", [{}, {"QT_QPA_PLATFORM": "xcb"}, {"DISPLAY": ""}])
def test_no_display_points_to_the_cli_and_offscreen(env):
    with pytest.raises(LaunchProblem) as caught:
        check(env, platform="linux", ldd=fake_ldd(""), plugin=PLUGIN)
    text = str(caught.value)
    assert "no display" in text and "DISPLAY" in text and "WAYLAND_DISPLAY" in text
    assert "snn-workbench train PROJECT" in text and "QT_QPA_PLATFORM=offscreen" in text
    assert "\n" not in text


def test_missing_xcb_libraries_name_each_and_the_exact_apt_command():
    ldd = fake_ldd(LDD)
    with pytest.raises(LaunchProblem) as caught:
        check({"DISPLAY": ":0"}, platform="linux", ldd=ldd, plugin=PLUGIN)
    text = str(caught.value)
    assert ldd.seen == [PLUGIN]
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1, libxkbcommon-x11.so.0 not found" in text
    assert ("`sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0`"
            in text)
    assert "libxcb-cursor" not in text and "\n" not in text


def test_a_complete_machine_and_other_platforms_pass():
    complete = fake_ldd(LDD.replace("not found", "/lib/x86_64-linux-gnu/x.so"))
    check({"DISPLAY": ":0"}, platform="linux", ldd=complete, plugin=PLUGIN)
    never = fake_ldd(LDD)  # the xcb plugin is not what Qt loads here: its libraries don't matter
    check({"QT_QPA_PLATFORM": "offscreen"}, platform="linux", ldd=never, plugin=PLUGIN)
    check({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, platform="linux", ldd=never,
          plugin=PLUGIN)
    check({"QT_QPA_PLATFORM": "wayland"}, platform="linux", ldd=never, plugin=PLUGIN)
    check({}, platform="darwin", ldd=never, plugin=PLUGIN)
    assert never.seen == []


def test_without_ldd_the_usual_three_are_looked_up():
    found = {"xcb-cursor": "libxcb-cursor.so.0"}
    missing = preflight.missing_libraries(PLUGIN, fake_ldd(None), found.get)
    assert missing == {"libxcb-icccm": "libxcb-icccm4", "libxcb-keysyms": "libxcb-keysyms1"}


def test_package_names_follow_the_debian_rule():
    assert preflight.package_of("libxcb-render-util.so.0") == "libxcb-render-util0"
    assert preflight.package_of("libdbus-1.so.3") == "libdbus-1-3"
    assert preflight.package_of("libpng16.so.16") == "libpng16-16"
    assert preflight.package_of("libGL.so.1") == "libgl1"


def test_the_launcher_exits_2_with_one_line_before_qt(monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(preflight.sys, "platform", "linux")
    assert main([]) == 2
    assert main(["gui", "digits_mlp"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("snn-workbench: error: no display")
                                 for line in err)
