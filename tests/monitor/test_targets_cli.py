"""`copyguard targets`: sites from the command line and from the config file, audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_settings
from config.schedule import parse_schedule
from tests.monitor.conftest import Cli, make_cli


def test_add_list_remove_and_the_audit_trail(cli: Cli) -> None:
    added = cli("targets", "add", "https://music.example.com/", "https://cdn.example.net/a/",
                "--name", "music-blog", "--schedule", "0 */6 * * *", "--depth", "2",
                "--max-pages", "50", "--deny", r"\?sort=", "--delay", "2.5")
    assert "Added target 'music-blog'" in added.stdout
    [target] = cli.json_lines("targets", "list", "--json")
    assert target["name"] == "music-blog"
    assert target["start_urls"] == ["https://music.example.com/", "https://cdn.example.net/a/"]
    assert target["allowed_domains"] == ["cdn.example.net", "music.example.com"]
    assert (target["schedule"], target["depth"], target["max_pages"]) == ("0 */6 * * *", 2, 50)
    assert target["deny"] == [r"\?sort="] and target["delay_seconds"] == 2.5
    assert target["obey_robots"] is True and target["allow_private"] is False
    assert target["source"] == "cli"

    again = cli("targets", "add", "https://other.example/", "--name", "music-blog", ok=False)
    assert again.exit_code == 1 and "already exists" in again.stderr

    cli("targets", "remove", "music-blog")
    assert cli.json_lines("targets", "list", "--json") == []
    missing = cli("targets", "remove", "music-blog", ok=False)
    assert missing.exit_code == 1 and "no target named 'music-blog'" in missing.stderr
    actions = [e["action"] for e in cli.json_lines("audit", "list", "--json")]
    assert actions.count("target.added") == 1 and actions.count("target.removed") == 1


@pytest.mark.parametrize(("args", "message"), [
    (["ftp://files.example/", "--name", "x"], "is not an http(s) URL"),
    (["https://a.example/", "--name", "x", "--schedule", "hourly"], "neither 'every"),
    (["https://a.example/", "--name", "x", "--schedule", "every 10s"], "more often than"),
    (["https://a.example/", "--name", "bad name"], "name"),
    (["https://a.example/", "--name", "x", "--deny", "(unclosed"], "pattern"),
])
def test_bad_targets_are_refused_with_the_reason(sqlite_cli: Cli, args: list[str],
                                                 message: str) -> None:
    result = sqlite_cli("targets", "add", *args, ok=False)
    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split())
    assert sqlite_cli.json_lines("targets", "list", "--json") == []


def test_config_targets_are_synced_and_cannot_be_removed_from_the_cli(tmp_path: Path) -> None:
    config = tmp_path / "copyguard.toml"
    config.write_text('[[targets]]\nname = "blog"\nstart_urls = ["https://blog.example/"]\n'
                      'schedule = "every 12h"\n')
    cli = make_cli(tmp_path / "home")
    cli.env["COPYGUARD_CONFIG"] = str(config)
    [target] = cli.json_lines("targets", "list", "--json")
    assert (target["name"], target["source"], target["schedule"]) == ("blog", "config", "every 12h")
    refused = cli("targets", "remove", "blog", ok=False)
    assert refused.exit_code == 1 and "defined in the config file" in refused.stderr

    config.write_text('[[targets]]\nname = "blog"\nstart_urls = ["https://blog.example/"]\n'
                      'schedule = "every 1d"\n')
    [target] = cli.json_lines("targets", "list", "--json")
    assert target["schedule"] == "every 1d"
    config.write_text("")
    assert cli.json_lines("targets", "list", "--json") == []
    actions = [e["action"] for e in cli.json_lines("audit", "list", "--json")]
    assert actions.count("target.added") == 1
    assert actions.count("target.changed") == 1 and actions.count("target.removed") == 1


def test_config_target_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[targets]]\nname = "a"\nstart_urls = ["https://a.example/"]\n'
                    '[[targets]]\nname = "a"\nstart_urls = ["https://b.example/"]\n')
    with pytest.raises(ConfigError, match="'a' is used twice"):
        load_settings(path, environ={})
    path.write_text('[[targets]]\nname = "a"\nstart_urls = []\n')
    with pytest.raises(ConfigError, match="start_urls"):
        load_settings(path, environ={})


def test_schedules() -> None:
    assert parse_schedule("every 6h").interval is not None
    assert parse_schedule("every 6h").interval.total_seconds() == 6 * 3600  # type: ignore[union-attr]
    assert parse_schedule("every 1.5d").interval.total_seconds() == 1.5 * 86400  # type: ignore[union-attr]
    assert parse_schedule("*/30 * * * 1-5").cron == "*/30 * * * 1-5"
    with pytest.raises(ValueError, match="not a valid cron line"):
        parse_schedule("61 * * * *")
