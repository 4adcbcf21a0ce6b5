"""The deployment files in deploy/ agree with the program they deploy.

Every ``copyguard ...`` command line in them (systemd units, the wrapper, the image, the compose
file, deploy/README.md) is parsed by the real CLI; every ``COPYGUARD_*`` variable is a real
setting; the stages are real and each stage left to workers has one; the daemon and its workers
see the same settings and the same evidence store; the stop timeouts outlast the daemon's
shutdown; the image carries the runtime packages of scripts/system-deps.sh and every package of
the project; the ops ports agree. Nothing here needs docker, systemd or the network.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import typer.main
import yaml
from typer.core import TyperGroup

from config import Settings, load_settings
from config.settings import DaemonSettings
from monitor.cli import app
from monitor.daemon.jobs import STAGES

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
DOCKER = DEPLOY / "docker"
DAEMON_UNIT = SYSTEMD / "copyguard-daemon.service"
WORKER_UNIT = SYSTEMD / "copyguard-worker@.service"
COPYGUARD_SERVICES = ("daemon", "worker-crawl", "worker-identify")
# After daemon.shutdown_timeout_seconds the daemon kills its children and waits this much more
# (monitor/daemon/run.py, _shutdown): a supervisor must not kill it before.
KILL_GRACE_SECONDS = 10.0
# What the compose file's ${...} variables are taken as here (the others take their defaults).
COMPOSE_ENV = {"POSTGRES_PASSWORD": "test-password"}


# -- reading the files -------------------------------------------------------------------------

def _unit(path: Path) -> dict[str, list[str]]:
    """A systemd unit's settings (sections merged: the keys used here are unique to one)."""
    found: dict[str, list[str]] = {}
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def _unit_environment(unit: Mapping[str, list[str]]) -> dict[str, str]:
    pairs = (item.split("=", 1) for value in unit.get("Environment", [])
             for item in shlex.split(value))
    return {key: value for key, value in pairs}


def _env_file(path: Path) -> dict[str, str]:
    """KEY="value" lines, as systemd's EnvironmentFile= and sh both read them."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = "".join(shlex.split(value))
    return found


def _exec_start(path: Path, instance: str) -> list[str]:
    """ExecStart= of a unit as systemd runs it: %i is the instance, ${VAR} one argument."""
    unit = _unit(path)
    env = _unit_environment(unit)
    [line] = unit["ExecStart"]
    argv = []
    for token in shlex.split(line.replace("%i", instance)):
        whole = re.fullmatch(r"\$\{(\w+)\}", token)
        if whole:
            assert whole[1] in env, f"{path.name}: ${{{whole[1]}}} has no Environment= default"
            token = env[whole[1]]
        assert "$" not in token, f"{path.name}: unexpanded {token!r}"
        argv.append(token)
    return argv


def _duration_seconds(text: str) -> float:
    """A systemd time span or a compose duration: "120", "120s", "2min", "1m30s"."""
    units = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text)
    assert parts, text
    return sum(float(number) * units[unit] for number, unit in parts)


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile instruction, continuation lines joined."""
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in joined.splitlines() if line.strip()]


def _docker(instruction: str) -> list[str]:
    return [args for name, args in _dockerfile() if name == instruction]


def _image_env() -> dict[str, str]:
    env = {}
    for args in _docker("ENV"):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            env[key] = value
    return env


_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def _interpolated(value: Any) -> Any:
    """``value`` with compose's ${NAME}, ${NAME:-default} and ${NAME:?error} resolved."""
    if isinstance(value, dict):
        return {key: _interpolated(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolated(item) for item in value]
    if not isinstance(value, str):
        return value

    def resolve(match: re.Match[str]) -> str:
        name, op = match["name"], match["op"] or ""
        if name in COMPOSE_ENV:
            return COMPOSE_ENV[name]
        assert op.endswith("-"), f"compose.yaml: ${{{name}}} is required; add it to COMPOSE_ENV"
        return match["arg"]

    return _VARIABLE.sub(resolve, value).replace("$$", "$")


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    result: dict[str, Any] = _interpolated(loaded)
    return result


def _service_settings(service: Mapping[str, Any], tmp_path: Path) -> Settings:
    """The settings a copyguard container sees: the image's environment, then the service's."""
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    return load_settings(empty, environ={**_image_env(), **service.get("environment", {})})


def _systemd_settings(unit: Path) -> Settings:
    config = _flag_value(_exec_start(unit, "identify"), "--config")
    assert config == "/etc/copyguard/copyguard.toml"
    env = {**_env_file(SYSTEMD / "env.example"), **_unit_environment(_unit(unit))}
    return load_settings(SYSTEMD / "copyguard.toml", environ=env)


def _flag_value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _shell_lines(markdown: str) -> Iterator[list[str]]:
    """The simple commands of the README's ```sh blocks (split at && ; |), as words."""
    for block in re.findall(r"```sh\n(.*?)```", markdown, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words: list[str] = []
            for word in lexer:
                if word in {"&&", "||", ";", "|"}:
                    yield words
                    words = []
                else:
                    words.append(word)
            yield words


# -- what the CLI makes of a command line -------------------------------------------------------

def _parse(args: list[str]) -> tuple[str, dict[str, Any]]:
    """The command ``copyguard ARGS`` names ("worker", "targets add") and its parameters, as the
    real CLI parses them, without running anything. A usage error (an unknown command or
    option, a missing or bad value) raises."""
    command = typer.main.get_command(app)
    ctx = None
    path: list[str] = []
    rest = list(args)
    while isinstance(command, TyperGroup):
        takes_value = {opt: not getattr(param, "is_flag", False)
                       for param in command.params for opt in param.opts if opt.startswith("-")}
        i = 0
        while i < len(rest) and rest[i].startswith("-"):
            option = rest[i].split("=", 1)[0]
            assert option in takes_value, f"no option {option} before {' '.join(path)} command"
            i += 2 if takes_value[option] and "=" not in rest[i] else 1
        assert i < len(rest), f"no command in copyguard {' '.join(args)}"
        ctx = command.make_context(path[-1] if path else "copyguard", [*rest[:i], rest[i]],
                                   parent=ctx)
        sub = command.get_command(ctx, rest[i])
        assert sub is not None, f"no command {' '.join([*path, rest[i]])!r}"
        command, path, rest = sub, [*path, rest[i]], rest[i + 1:]
    leaf = command.make_context(path[-1], rest, parent=ctx)
    return " ".join(path), dict(leaf.params)


def _command_lines() -> list[tuple[str, list[str]]]:
    """(where, arguments after the executable) of every copyguard command line in deploy/."""
    found = [(DAEMON_UNIT.name, _exec_start(DAEMON_UNIT, ""))]
    found += [(f"{WORKER_UNIT.name} as {stage}", _exec_start(WORKER_UNIT, stage))
              for stage in STAGES]
    wrapper = (SYSTEMD / "copyguard").read_text(encoding="utf-8")
    [line] = [line for line in wrapper.splitlines() if line.startswith("exec ")]
    words = shlex.split(line)  # exec runuser -u copyguard -- .../copyguard ... "$@"
    assert words[-1] == "$@" and "--" in words
    found.append(("the wrapper", [*words[words.index("--") + 1:-1], "status"]))
    entrypoint = json.loads(_docker("ENTRYPOINT")[0])
    found.append(("the image", [*entrypoint, *json.loads(_docker("CMD")[0])]))
    services = _compose()["services"]
    found += [(f"compose {name}", [*entrypoint, *services[name]["command"]])
              for name in COPYGUARD_SERVICES]
    for words in _shell_lines((DEPLOY / "README.md").read_text(encoding="utf-8")):
        if words[:1] == ["sudo"]:
            words = words[3:] if words[1:2] == ["-u"] else words[1:]
        if words[:2] == ["docker", "compose"] and "exec" in words:
            words = words[words.index("exec") + 2:]
        if words and (words[0] == "copyguard" or words[0].endswith("/bin/copyguard")):
            found.append(("deploy/README.md", words))
    for where, argv in found:
        assert argv[0] == "copyguard" or argv[0].endswith("/bin/copyguard"), (where, argv)
    return [(where, argv[1:]) for where, argv in found]


# -- the tests ------------------------------------------------------------------------------

def test_every_command_line_is_one_the_cli_accepts() -> None:
    lines = _command_lines()
    parsed = [(where, *_parse(args)) for where, args in lines]
    commands = {command for _, command, _ in parsed}
    assert {"daemon", "worker", "status", "targets add"} <= commands
    assert sum(where == "deploy/README.md" for where, _ in lines) >= 4
    for where, command, params in parsed:
        if command == "daemon":
            # A leader that loses the lock exits and is restarted: it must then wait, not fail.
            assert params["standby"], f"{where}: the daemon runs without --standby"
        if command == "worker":
            assert params["stage"] in STAGES, where
            # The command refuses more processes for another stage (at run time, not parse).
            assert params["processes"] == 1 or params["stage"] == "identify", where


def test_the_executable_is_the_project_script_at_one_install_path() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"]
    executables = {_exec_start(DAEMON_UNIT, "")[0], _exec_start(WORKER_UNIT, "crawl")[0],
                   json.loads(_docker("ENTRYPOINT")[0])[0]}
    wrapper = (SYSTEMD / "copyguard").read_text(encoding="utf-8")
    assert executables == {"/opt/copyguard/.venv/bin/copyguard"}
    assert "/opt/copyguard/.venv/bin/copyguard --config /etc/copyguard/copyguard.toml" in wrapper
    assert Path(executables.pop()).name in scripts


def test_every_copyguard_variable_names_a_real_setting() -> None:
    sections = {name: field.annotation for name, field in Settings.model_fields.items()
                if name != "targets"}
    short_forms = {"COPYGUARD_CONFIG", "COPYGUARD_HOME", "COPYGUARD_DATABASE_URL"}
    seen = set()
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        for name in re.findall(r"COPYGUARD_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8")):
            seen.add(name)
            if name in short_forms:
                continue
            section, sep, key = name.removeprefix("COPYGUARD_").lower().partition("__")
            model = sections.get(section)
            assert sep and model is not None, f"{path.name}: {name} names no settings section"
            assert key in model.model_fields, f"{path.name}: {name}: no setting {section}.{key}"
    assert {"COPYGUARD_DAEMON__WORKER_STAGES", "COPYGUARD_DATABASE_URL"} <= seen


def test_compose_services_see_one_configuration_and_one_evidence_store(tmp_path: Path) -> None:
    services = _compose()["services"]
    settings = {name: _service_settings(services[name], tmp_path) for name in COPYGUARD_SERVICES}
    daemon = settings["daemon"]
    assert daemon.database_url.startswith("postgresql") and daemon.matching.index == "database"
    assert daemon.crawl.redis_url and daemon.general.log_format == "json"
    for name, seen in settings.items():
        assert seen == daemon, f"{name} sees other settings than the daemon"
        mounts = {}  # where -> volume name
        for volume in services[name]["volumes"]:
            source, where = volume.split(":")[:2]
            mounts[where] = source
        assert mounts.get(str(seen.evidence_dir)) == "evidence", f"{name}: evidence not shared"
        assert mounts.get(str(seen.home)) == "home", f"{name}: home not shared"
    stages = {_flag_value(services[name]["command"], "--stage")
              for name in COPYGUARD_SERVICES if name != "daemon"}
    assert set(daemon.daemon.worker_stages) <= stages, "a stage left to workers has none"
    assert stages <= set(daemon.daemon.worker_stages) | {"identify"}, "a worker would idle"


def test_the_readme_names_real_compose_services() -> None:
    services = _compose()["services"]
    named = []
    for words in _shell_lines((DEPLOY / "README.md").read_text(encoding="utf-8")):
        if words[:2] == ["docker", "compose"]:
            assert words[2:4] == ["-f", "deploy/docker/compose.yaml"], words
            for before, word in pairwise(words):
                if before in {"--scale", "exec"}:
                    named.append(word.split("=", 1)[0])
    assert named and set(named) <= set(services), named


def test_compose_starts_things_in_order_and_restarts_them() -> None:
    services = _compose()["services"]
    assert _docker("HEALTHCHECK") and "healthcheck" in services["postgres"]
    assert services["daemon"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in COPYGUARD_SERVICES[1:]:
        # The daemon is healthy once it has migrated the ledger and synced the targets.
        assert services[name]["depends_on"]["daemon"]["condition"] == "service_healthy", name
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
    assert services["worker-identify"]["deploy"]["replicas"] >= 1


def test_systemd_units_share_one_configuration() -> None:
    daemon, worker = _systemd_settings(DAEMON_UNIT), _systemd_settings(WORKER_UNIT)
    assert daemon == worker
    assert daemon.database_url.startswith("postgresql") and daemon.matching.index == "database"
    assert daemon.daemon.worker_stages and daemon.crawl.redis_url
    wrapper = (SYSTEMD / "copyguard").read_text(encoding="utf-8")
    for path in (DAEMON_UNIT, WORKER_UNIT):
        unit = _unit(path)
        assert "/etc/copyguard/env" in unit["EnvironmentFile"], path.name
        assert not any(k.startswith("COPYGUARD_") for k in _unit_environment(unit)), path.name
    assert "\n. /etc/copyguard/env\n" in wrapper
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    enabled = set(re.findall(r"copyguard-worker@(\w+)", readme))
    assert enabled <= set(STAGES), f"no such stage: {enabled - set(STAGES)}"
    assert set(daemon.daemon.worker_stages) <= enabled, "a stage left to workers is not enabled"


def test_systemd_hardening_leaves_what_the_program_needs() -> None:
    home = str(_systemd_settings(DAEMON_UNIT).home)
    for path in (DAEMON_UNIT, WORKER_UNIT):
        unit = _unit(path)
        assert unit["Restart"] == ["always"] and unit["KillSignal"] == ["SIGTERM"], path.name
        # SIGTERM to the main process only: it stops its children itself (an ffmpeg decoder
        # killed with the rest of the cgroup would fail the file in hand).
        assert unit["KillMode"] == ["mixed"], path.name
        assert unit["ProtectSystem"] == ["strict"] and home in unit["ReadWritePaths"], path.name
        assert unit["WorkingDirectory"] == [home], path.name
        families = set(" ".join(unit["RestrictAddressFamilies"]).split())
        assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= families, path.name
        # setrlimit (@resources) sets the decoders' memory limit; numba's JIT needs W+X memory;
        # RemoveIPC would take the semaphores of other units running as the same user.
        assert not any("@resources" in value and "~" in value
                       for value in unit.get("SystemCallFilter", [])), path.name
        assert unit.get("MemoryDenyWriteExecute", ["no"]) == ["no"], path.name
        assert unit.get("RemoveIPC", ["no"]) == ["no"], path.name


def test_stop_timeouts_outlast_the_daemons_shutdown() -> None:
    needed = DaemonSettings().shutdown_timeout_seconds + KILL_GRACE_SECONDS
    for path in (DAEMON_UNIT, WORKER_UNIT):
        [timeout] = _unit(path)["TimeoutStopSec"]
        assert _duration_seconds(timeout) > needed, path.name
    services = _compose()["services"]
    for name in COPYGUARD_SERVICES:
        assert _duration_seconds(services[name]["stop_grace_period"]) > needed, name


def test_image_has_the_runtime_packages_and_the_whole_project() -> None:
    script = (ROOT / "scripts" / "system-deps.sh").read_text(encoding="utf-8")
    listed = re.search(r"^packages=\((.*?)\)", script, re.M | re.S)
    assert listed is not None
    runtime = {word for line in listed[1].splitlines()
               for word in line.split("#", 1)[0].split()}
    assert {"ffmpeg", "libchromaprint1"} <= runtime
    installed: set[str] = set()
    for args in _docker("RUN"):
        for command in args.split("&&"):
            words = command.split()
            if words[:2] == ["apt-get", "install"]:
                installed |= {word for word in words[2:] if not word.startswith("-")}
    assert runtime <= installed, f"the image lacks {sorted(runtime - installed)}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {name.rstrip("*") for name in
                pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {Path(source).name for args in _docker("COPY") for source in args.split()[:-1]}
    kept = {line[1:] for line in (DOCKER / "Dockerfile.dockerignore").read_text(
        encoding="utf-8").splitlines() if line.startswith("!")}
    for needed in packages | {"pyproject.toml", "README.md"}:
        assert needed in copied, f"the image does not copy {needed}"
        assert needed in kept, f"Dockerfile.dockerignore leaves {needed} out of the context"


def test_ops_ports_agree(tmp_path: Path) -> None:
    services = _compose()["services"]
    ops = _service_settings(services["daemon"], tmp_path).daemon.ops_listen
    port = ops.rpartition(":")[2]
    assert _image_env()["COPYGUARD_DAEMON__OPS_LISTEN"].endswith(f":{port}")
    [healthcheck] = _docker("HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/healthz" in healthcheck
    assert _docker("EXPOSE") == [port]
    assert [mapping.rpartition(":")[2] for mapping in services["daemon"]["ports"]] == [port]
    for name in COPYGUARD_SERVICES[1:]:  # each worker's container answers its health check
        assert _flag_value(services[name]["command"], "--ops-listen").endswith(f":{port}")
    systemd_port = _systemd_settings(DAEMON_UNIT).daemon.ops_listen.rpartition(":")[2]
    assert f"curl -fsS http://127.0.0.1:{systemd_port}/healthz" in (
        DEPLOY / "README.md").read_text(encoding="utf-8")
