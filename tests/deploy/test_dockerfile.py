"""The container image, proven without a registry or a Docker daemon.

CI cannot pull ``python:3.12-slim`` or build images, so this parses the Dockerfile and checks
what can be checked offline (pinned bases, non-root USER, exec-form ENTRYPOINT/HEALTHCHECK, no
secrets, no remote ADD, nothing of the source tree in the final stage), checks that
``.dockerignore`` keeps tests, caches and keys out of the build context, and then runs the
image's own steps in a fresh virtualenv: the build stage's ``pip wheel`` on exactly the files
the context would hold, the final stage's ``venv`` + offline ``pip install``, the ENTRYPOINT
command against a real simulator, and the HEALTHCHECK command against it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from support import REPO, free_port, serve_process

from routeguard.simulator import Simulator


@dataclass(frozen=True)
class Instruction:
    stage: int
    name: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped, tagged by stage."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    instructions, stage = [], -1
    for line in logical:
        name, _, args = line.partition(" ")
        if name.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(stage, name.upper(), args.strip()))
    return instructions


DOCKERFILE = parse_dockerfile((REPO / "Dockerfile").read_text(encoding="utf-8"))
FINAL = max(i.stage for i in DOCKERFILE)


def final(name: str) -> list[Instruction]:
    return [i for i in DOCKERFILE if i.stage == FINAL and i.name == name]


def exec_form(args: str) -> list[str]:
    parsed = json.loads(args)
    assert isinstance(parsed, list), args
    assert all(isinstance(a, str) for a in parsed), args
    return parsed


def test_bases_are_pinned_and_the_final_stage_has_no_toolchain() -> None:
    bases = [i.args for i in DOCKERFILE if i.name == "FROM"]
    assert len(bases) == 2, "multi-stage: build, then runtime"
    for base in bases:
        image = base.split()[0]
        assert re.search(r"@sha256:[0-9a-f]{64}$|:\d+\.\d+\.\d+-slim", image), image
    assert bases[1].split()[0] == bases[0].split()[0], "both stages on the same Python"
    final_runs = " ".join(i.args for i in final("RUN"))
    for tool in ("gcc", "build-essential", "apt-get install", "git "):
        assert tool not in final_runs
    assert not final("COPY"), "the final stage gets wheels through a bind mount, no source"


def test_runs_as_a_fixed_non_root_user() -> None:
    users = final("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].args.split(":")[0]
    assert user.isdigit(), "numeric, so runAsNonRoot can verify it"
    assert int(user) >= 10000
    deployment_user = 10001
    assert int(user) == deployment_user


def test_entrypoint_healthcheck_and_stop_signal() -> None:
    (entry,) = final("ENTRYPOINT")
    assert exec_form(entry.args) == [
        "routeguard",
        "serve",
        "--config",
        "/etc/routeguard/router.yaml",
    ]
    assert not final("CMD"), "the config path is part of the entrypoint"
    (stop,) = final("STOPSIGNAL")
    assert stop.args == "SIGTERM"
    (health,) = final("HEALTHCHECK")
    assert "/health" in health.args
    exec_form(health.args.split(" CMD ", 1)[1])
    assert "8080" in " ".join(i.args for i in final("EXPOSE"))


def test_no_secrets_and_no_remote_add() -> None:
    assert not [i for i in DOCKERFILE if i.name == "ADD"], "COPY only: ADD fetches URLs and unpacks"
    secretish = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)\w*\s*=", re.IGNORECASE)
    for instruction in DOCKERFILE:
        if instruction.name in ("ENV", "ARG", "LABEL"):
            assert not secretish.search(instruction.args), instruction


def test_oci_labels() -> None:
    labels = " ".join(i.args for i in final("LABEL"))
    for key in ("org.opencontainers.image.source", "org.opencontainers.image.version"):
        assert key in labels


# -- .dockerignore --------------------------------------------------------------------------


def dockerignore_rules() -> list[tuple[bool, str]]:
    rules = []
    for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        rule = line.strip()
        if rule and not rule.startswith("#"):
            negate = rule.startswith("!")
            rules.append((negate, rule.lstrip("!").strip("/")))
    return rules


def in_context(relative: str, rules: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for negate, pattern in rules:
        if pattern.startswith("**/"):
            tail = pattern[3:]
            hit = any(fnmatch.fnmatchcase(part, tail) for part in parts)
        else:
            hit = any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes)
        if hit:
            included = negate
    return included


def context_files(root: Path) -> list[str]:
    rules = dockerignore_rules()
    files = []
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and in_context(relative, rules):
            files.append(relative)
    return sorted(files)


def test_dockerignore_keeps_tests_caches_and_secrets_out(tmp_path: Path) -> None:
    tree = [
        "pyproject.toml",
        "README.md",
        "src/routeguard/__init__.py",
        "src/routeguard/examples/router.yaml",
        "src/routeguard/__pycache__/x.cpython-312.pyc",
        "tests/conftest.py",
        ".venv/bin/python",
        ".git/config",
        "bench/results/run.json",
        ".env",
        "deploy/compose/router.yaml",
        "server.key",
        "DECISIONS.log",
        "src/routeguard.egg-info/PKG-INFO",
        ".mypy_cache/x",
        "docs/deploy.md",
    ]
    for relative in tree:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x")
    assert context_files(tmp_path) == [
        "README.md",
        "pyproject.toml",
        "src/routeguard/__init__.py",
        "src/routeguard/examples/router.yaml",
    ]


# -- the image's steps, in a fresh virtualenv ----------------------------------------------


def run_step(command: str, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", "-ec", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"


def test_image_steps_install_and_serve(tmp_path: Path, loop_thread) -> None:  # type: ignore[no-untyped-def]
    # The build context, exactly as .dockerignore leaves it.
    context = tmp_path / "context"
    for relative in context_files(REPO):
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target)
    wheels, prefix = tmp_path / "wheels", tmp_path / "opt-routeguard"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)

    def localize(args: str) -> str:
        args = re.sub(r"^--mount=\S+\s+", "", args)
        return args.replace("/wheels", str(wheels)).replace("/opt/routeguard", str(prefix))

    build_runs = [i.args for i in DOCKERFILE if i.stage == 0 and i.name == "RUN"]
    assert len(build_runs) == 1
    run_step(localize(build_runs[0]), context, env)  # pip wheel --wheel-dir /wheels .
    assert list(wheels.glob("routeguard-*.whl"))
    install = next(i.args for i in final("RUN") if "pip install" in i.args)
    assert "--no-index" in install, "the final stage installs offline, from the wheels only"
    run_step(localize(install), tmp_path, env)

    sim = Simulator(seed=3)
    loop_thread.run(sim.start())
    try:
        port = free_port()
        config = tmp_path / "router.yaml"
        config.write_text(
            f"server: {{host: 127.0.0.1, port: {port}, access_log: false}}\n"
            f"admin: {{audit_log: {tmp_path / 'DECISIONS.log'}}}\n"
            "deployments:\n"
            f'  a: {{provider: openai, model: gpt-4-turbo, api_base: "{sim.url("a")}", api_key: k}}\n'
            "weights: {gpt-4-turbo: {a: 1}}\n"
        )
        image_env = {"PATH": f"{prefix / 'bin'}:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
        (entry,) = final("ENTRYPOINT")
        argv = [
            a.replace("/etc/routeguard/router.yaml", str(config)) for a in exec_form(entry.args)
        ]
        assert shutil.which(argv[0], path=image_env["PATH"]) == str(prefix / "bin" / "routeguard")
        with serve_process(argv, port, env=image_env):
            (health,) = final("HEALTHCHECK")
            check = [
                a.replace(":8080/", f":{port}/")
                for a in exec_form(health.args.split(" CMD ", 1)[1])
            ]
            result = subprocess.run(
                check, env={**os.environ, **image_env}, capture_output=True, timeout=30, check=False
            )
            assert result.returncode == 0, result.stderr
            assert shutil.which(check[0], path=image_env["PATH"]) == str(prefix / "bin" / "python")
        # Stopped (SIGTERM, drained), the same check reports unhealthy.
        after = subprocess.run(
            check, env={**os.environ, **image_env}, capture_output=True, timeout=30, check=False
        )
        assert after.returncode != 0
    finally:
        loop_thread.run(sim.stop())
    # The installed tree holds the package, not the tests.
    site = next(prefix.glob("lib/python*/site-packages"))
    assert (site / "routeguard" / "examples" / "router.yaml").exists()
    assert not (site / "tests").exists()
    print(
        f"image steps: {len(list(wheels.glob('*.whl')))} wheels; {shlex.join(argv[:2])} served /health"
    )
