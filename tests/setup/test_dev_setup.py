"""The README's two commands: the setup script decides sudo-or-not correctly, and CI runs the
README's test command exactly as written.

The decision is exercised both ways by running the real script with ``--print`` (it prints the
commands instead of running them) under a PATH whose ``id``, ``sudo`` and ``dpkg-query`` say
what a root shell, a sudoer's shell and a shell with neither would say.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "dev-setup"


def shim_path(tmp_path: Path, *, uid: int, sudo: bool, installed: bool) -> str:
    """A PATH with stand-ins for the three facts the script asks about, then the real tools."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    status = "install ok installed" if installed else "unknown ok not-installed"
    tools = {
        "id": f'#!/bin/sh\n[ "$1" = "-u" ] && echo {uid} && exit 0\nexec /usr/bin/id "$@"\n',
        "dpkg-query": f"#!/bin/sh\nprintf '%s' '{status}'\n",
    }
    if sudo:
        tools["sudo"] = '#!/bin/sh\nexec "$@"\n'
    for name, text in tools.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    # Only the basics after the shims, so a real sudo on this machine cannot leak in.
    return f"{bin_dir}:/usr/bin:/bin"


def run_setup(tmp_path: Path, *args: str, uid: int, sudo: bool, installed: bool = False):
    env = {**os.environ, "PATH": shim_path(tmp_path, uid=uid, sudo=sudo, installed=installed)}
    return subprocess.run(
        ["bash", str(SCRIPT), "--print", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_root_without_sudo_installs_directly(tmp_path: Path) -> None:
    result = run_setup(tmp_path, uid=0, sudo=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "apt-get update"
    assert re.match(
        r"env DEBIAN_FRONTEND=noninteractive apt-get install -y .*redis-server", lines[1]
    )
    assert not any(line.startswith("sudo") for line in lines)
    assert lines[-1].endswith("pip install --quiet --disable-pip-version-check -e .[test]")


def test_user_with_sudo_goes_through_sudo(tmp_path: Path) -> None:
    result = run_setup(tmp_path, uid=1000, sudo=True)
    assert result.returncode == 0, result.stderr
    apt = [line for line in result.stdout.splitlines() if "apt-get" in line]
    assert apt
    assert all(line.startswith("sudo ") for line in apt)


def test_user_without_sudo_is_told_what_is_needed(tmp_path: Path) -> None:
    result = run_setup(tmp_path, uid=1000, sudo=False)
    assert result.returncode == 1
    assert "needs root" in result.stderr
    assert "apt-get" in result.stderr


def test_nothing_missing_needs_neither_root_nor_apt(tmp_path: Path) -> None:
    result = run_setup(tmp_path, uid=1000, sudo=False, installed=True)
    assert result.returncode == 0, result.stderr
    assert "apt-get" not in result.stdout


def test_runtime_only_installs_the_package_without_test_extras(tmp_path: Path) -> None:
    result = run_setup(tmp_path, "--runtime", uid=0, sudo=False)
    assert result.returncode == 0, result.stderr
    install = [line for line in result.stdout.splitlines() if "apt-get install" in line]
    assert install == ["env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv"]
    assert result.stdout.splitlines()[-1].endswith("--disable-pip-version-check .")


def readme_commands() -> list[str]:
    """The fenced one-line commands of the README's "Try it" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Try it", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_has_exactly_the_two_setup_commands() -> None:
    serve, tests = readme_commands()
    assert serve == "scripts/dev-setup --runtime && .venv/bin/routeguard serve"
    assert tests.startswith("scripts/dev-setup && .venv/bin/pytest")
    assert "sudo" not in serve + tests  # the script decides, so both work in any shell


def test_ci_runs_the_readme_test_command_with_no_shim() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "sudo()" not in ci
    assert "export -f" not in ci
    # Run CI's own extraction line (test_command=$(awk ...)) and compare with the README.
    extraction = next(line for line in ci.splitlines() if line.startswith("test_command="))
    extracted = subprocess.run(
        ["bash", "-c", f'{extraction}; printf "%s" "$test_command"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert extracted == readme_commands()[1]


def test_unknown_flag_is_refused() -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "usage" in result.stderr
