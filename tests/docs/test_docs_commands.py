"""The docs name only commands and flags that exist, and quote admin calls that would succeed.

Every ``routeguard ...`` line in a shell block of README.md, docs/*.md, deploy/**/README.md,
bench/README.md and the simulator's README is parsed against the real command tree (typer's
click commands): an unknown subcommand or flag fails the test, so docs cannot drift from code.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from routeguard.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(
    {
        ROOT / "README.md",
        ROOT / "bench" / "README.md",
        ROOT / "src" / "routeguard" / "simulator" / "README.md",
        *ROOT.glob("docs/*.md"),
        *ROOT.glob("deploy/**/README.md"),
    }
)
_FENCE = re.compile(r"^```(\w*)\s*$")
_SHELLS = {"", "bash", "sh", "shell", "console"}
_INVOCATION = re.compile(r"(?:^|[\s;&|(]|\.venv/bin/)routeguard\s+(.*)")


def shell_lines(path: Path) -> list[tuple[int, str]]:
    """Lines inside shell code blocks, continuation backslashes joined."""
    lines: list[tuple[int, str]] = []
    inside = False
    pending = ""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = _FENCE.match(line.strip())
        if fence:
            inside = not inside and fence.group(1) in _SHELLS
            continue
        if not inside:
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        lines.append((number, pending + line))
        pending = ""
    return lines


def invocations() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for number, line in shell_lines(path):
            code = line.split(" #", 1)[0]
            for part in re.split(r"&&|\|\||;|\|(?!\w)", code):
                match = _INVOCATION.search(part.strip())
                if match and not part.strip().startswith(("import", "from")):
                    found.append((f"{path.relative_to(ROOT)}:{number}", match.group(1).strip()))
    return found


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def check(text: str) -> list[str]:
    """Problems with one ``routeguard ARGS`` line: unknown subcommands or flags."""
    command: Any = typer.main.get_command(app)  # a click command; typer may vendor click
    problems = []
    words = _tokens(text)
    index = 0
    while hasattr(command, "commands") and index < len(words):
        word = words[index].strip("[]")
        if word.startswith("-") or not re.fullmatch(r"[a-z][a-z0-9-]*", word):
            break
        sub = command.commands.get(word)
        if sub is None:
            problems.append(f"no command {word!r}")
            return problems
        command, index = sub, index + 1
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    options.add("--help")
    for word in words[index:]:
        for piece in re.split(r"[\[\]|]", word):
            flag = piece.split("=", 1)[0]
            if flag.startswith("--") and len(flag) > 2 and flag not in options:
                problems.append(f"{command.name}: no option {flag}")
    return problems


CASES = invocations()


def test_the_docs_quote_routeguard_commands() -> None:
    # The README alone shows serve, check-config, simulate and demo; fewer means the parser broke.
    assert len(CASES) >= 6, CASES


@pytest.mark.parametrize(("where", "command"), CASES, ids=[where for where, _ in CASES])
def test_documented_command_exists(where: str, command: str) -> None:
    assert check(command) == [], f"{where}: routeguard {command}"


def test_the_checker_catches_a_wrong_flag_and_command() -> None:
    assert check("serve --config x.yaml --wokers 2") == ["serve: no option --wokers"]
    assert check("simluate --port 1") == ["no command 'simluate'"]
    assert check("simulate --port 9000 --words 5 --api-key k") == []


def test_admin_calls_in_the_docs_carry_a_token() -> None:
    """RouteGuard's admin API is deny-by-default, so a quoted admin curl without a token would
    get 401 as written."""
    missing = []
    for path in DOCS:
        for number, line in shell_lines(path):
            if "curl" in line and "/admin/" in line and "authorization" not in line.lower():
                missing.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert missing == []
