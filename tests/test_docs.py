"""Every command and every setting is documented in the README (a test fails when one is not)."""

from __future__ import annotations

from pathlib import Path

import typer.main

from config import Settings
from monitor.cli import app

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def _command_paths() -> list[str]:
    root = typer.main.get_command(app)
    paths = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            paths.extend(f"{name} {sub}" for sub in subcommands)
        else:
            paths.append(name)
    return paths


def test_every_command_is_in_the_readme() -> None:
    paths = _command_paths()
    assert "catalog import" in paths and "identify" in paths
    missing = [p for p in paths if f"`{p}" not in README]
    assert not missing, f"undocumented commands: {missing}"


def test_every_setting_is_in_the_readme() -> None:
    sections = {name: field.annotation for name, field in Settings.model_fields.items()
                if name != "targets"}
    keys = [f"{section}.{key}" for section, model in sections.items()
            for key in model.model_fields]  # type: ignore[union-attr]
    keys += ["targets add URL... --name NAME [--schedule S] [--depth N] [--max-pages N]",
             "[[targets]]"]
    missing = [k for k in keys if f"`{k}" not in README]
    assert not missing, f"undocumented settings: {missing}"
