"""The man pages in packaging/man: they render without a warning, each entry's tag stays on its own line, they carry
the project's version, and they name every command and option that --help shows."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAN = REPO / "packaging" / "man"
PAGES = sorted(MAN.glob("*.[1-8]"))
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def render(page: Path, *options: str) -> str:
    """The page as plain text (no bold, no underline), hyphens and minus signs as ASCII '-'."""
    p = subprocess.run(["groff", "-man", "-Tutf8", "-P-cbou", "-ww", *options, page], capture_output=True,
                       text=True, timeout=60, check=True)
    return p.stdout.replace("\u2010", "-").replace("\u2212", "-")


def test_every_page_is_here() -> None:
    assert [page.name for page in PAGES] == ["otp-admin.8", "otp-radiusd.8", "otp-web.8", "otp.toml.5"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_groff_renders_the_page_without_a_warning(page: Path, require_tool: Callable[[str], str]) -> None:
    p = subprocess.run([require_tool("groff"), "-man", "-Tutf8", "-ww", "-z", page], capture_output=True, text=True,
                       timeout=60)
    assert (p.returncode, p.stderr) == (0, "")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_man_renders_the_page_without_a_warning(page: Path, require_tool: Callable[[str], str]) -> None:
    """As lintian checks a page, at 80 columns and narrower (where a line that cannot be broken shows up)."""
    for width in ("80", "60"):
        env = {**os.environ, "LC_ALL": "C.UTF-8", "MANROFFSEQ": "", "MANWIDTH": width}
        p = subprocess.run([require_tool("man"), "--warnings", "-E", "UTF-8", "-l", page], capture_output=True,
                           text=True, env=env, timeout=60)
        assert (p.returncode, p.stderr) == (0, ""), width
        assert p.stdout.count("\n") > 20


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_entry_tag_stays_on_one_line(page: Path) -> None:
    """A .TP tag written over several source lines runs into its description ("NAME] [--json] The audit trail"):
    rendered without line breaking, each line then opens a bracket it does not close, or the reverse."""
    text = render(page, "-rLL=5000n", "-rHY=0")
    unbalanced = [line.strip() for line in text.splitlines()
                  if line.count("[") != line.count("]") or line.count("(") != line.count(")")]
    assert not unbalanced, "\n".join(unbalanced)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_the_page_carries_the_project_version(page: Path) -> None:
    header = next(line for line in page.read_text().splitlines() if line.startswith(".TH "))
    assert f'"otp-server {VERSION}"' in header


def help_text(main: Callable[[list[str]], object], argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def options_by_command(main: Callable[[list[str]], object], capsys: pytest.CaptureFixture[str],
                       argv: tuple[str, ...] = ()) -> dict[tuple[str, ...], set[str]]:
    """{subcommand path: its long options}, walking the COMMAND/VERB lists of --help."""
    text = help_text(main, list(argv), capsys)
    usage = text.split("\n\n", 1)[0]
    found = {argv: set(re.findall(r"--[a-z][a-z-]+", text)) - {"--help"}}
    if re.search(r"\b(COMMAND|VERB) \.\.\.", usage):
        for sub in re.findall(r"^    ([a-z][a-z-]*)\s", text, re.MULTILINE):
            found.update(options_by_command(main, capsys, (*argv, sub)))
    return found


@pytest.mark.parametrize(("page", "module"), [("otp-admin.8", "otpadmin.main"), ("otp-radiusd.8", "radiusd.main"),
                                             ("otp-web.8", "otpweb.main")])
def test_the_man_pages_name_every_command_and_option(page: str, module: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    man = render(MAN / page, "-rLL=5000n", "-rHY=0")
    main = importlib.import_module(module).main
    commands = options_by_command(main, capsys)
    assert len(commands) > 1 or module in ("radiusd.main", "otpweb.main")
    assert "--version" in commands[()]
    for argv, options in commands.items():
        if argv:
            assert re.search(r"\b" + r"\s+".join(argv) + r"\b", man), f"add `{' '.join(argv)}` to packaging/man/{page}"
        for option in options:
            assert option in man, f"add `{' '.join(argv)} {option}` to packaging/man/{page}"


def section(text: str, title: str) -> str:
    """A section of rendered text: from its title (at the margin) to the next title."""
    match = re.search(rf"^{title}\n(.*?)^\S", text, re.MULTILINE | re.DOTALL)
    assert match, f"no {title} section"
    return match.group(1)


def test_otp_radiusd_documents_every_signal_it_handles_and_every_exit_status() -> None:
    source = (REPO / "radiusd" / "main.py").read_text()
    handled = set(re.findall(r"\bsignal\.(SIG[A-Z0-9]+)\b", source)) - {"SIGCHLD", "SIGKILL"}  # not the admin's
    assert {"SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1"} <= handled
    text = render(MAN / "otp-radiusd.8", "-rLL=5000n", "-rHY=0")
    assert sorted(set(re.findall(r"^ {7}(SIG[A-Z0-9]+)", section(text, "SIGNALS"), re.MULTILINE))) == sorted(handled)
    assert re.findall(r"^ {7}(\d)\s", section(text, "EXIT STATUS"), re.MULTILINE) == ["0", "1", "2"]
