"""Settings: defaults, the TOML file, environment overrides and clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from config import ConfigError, Settings, load_settings

DEFAULT_FILE = Path(__file__).parents[2] / "config" / "copyguard.default.toml"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "copyguard.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_defaults_without_file_or_environment(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.home == Path("copyguard-data")
    assert settings.database_url == "sqlite:///copyguard-data/copyguard.db"
    assert settings.matching.min_confidence == 0.5


def test_documented_default_file_equals_the_built_in_defaults() -> None:
    """Every setting is documented, with its real default, in config/copyguard.default.toml."""
    with DEFAULT_FILE.open("rb") as fh:
        documented = tomllib.load(fh)
    built_in = Settings().model_dump(mode="json")
    assert documented == built_in
    assert load_settings(DEFAULT_FILE, environ={}) == Settings()


def test_every_default_key_has_a_comment() -> None:
    lines = DEFAULT_FILE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[number - 1].startswith("#"), f"undocumented setting: {line}"


def test_file_values_and_environment_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, "[matching]\nmin_confidence = 0.6\nreview_below = 0.9\n")
    settings = load_settings(path, environ={
        "COPYGUARD_HOME": str(tmp_path / "data"),
        "COPYGUARD_MATCHING__MIN_CONFIDENCE": "0.7",
        "COPYGUARD_DATABASE_URL": "postgresql+psycopg://db/copyguard",
        "COPYGUARD_CATALOG__EXTENSIONS": ".wav, .mp3",
        "COPYGUARD_TEST_SOMETHING": "ignored",
    })
    assert settings.matching.min_confidence == 0.7
    assert settings.matching.review_below == 0.9
    assert settings.home == tmp_path / "data"
    assert settings.database_url == "postgresql+psycopg://db/copyguard"
    assert settings.catalog.extensions == (".wav", ".mp3")


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, '[general]\nlog_level = "DEBUG"\n')
    assert load_settings(environ={"COPYGUARD_CONFIG": str(path)}).general.log_level == "DEBUG"


@pytest.mark.parametrize(("body", "environ", "named"), [
    ("[matching]\nmin_confidence = 1.5\n", {}, "[matching] min_confidence"),
    ("[matching]\nmin_confidense = 0.5\n", {}, "[matching] min_confidense: unknown setting"),
    ("[decoding]\ntimeout_seconds = 'soon'\n", {}, "[decoding] timeout_seconds"),
    ("", {"COPYGUARD_DECODING__MEMORY_LIMIT_MB": "lots"}, "COPYGUARD_DECODING__MEMORY_LIMIT_MB"),
    ("[matching]\nmin_confidence = 0.9\nreview_below = 0.5\n", {}, "review_below"),
    ("[nonsense]\nx = 1\n", {}, "nonsense"),
    ("matching = 3\n", {}, "matching"),
    ('[matching]\nindex = "cloud"\n', {}, "[matching] index"),
    ('[matching]\nindex = "database"\n', {}, 'index = "database" needs a PostgreSQL'),
])
def test_bad_value_names_the_key(tmp_path: Path, body: str, environ: dict[str, str],
                                 named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, body), environ=environ)
    assert named in str(info.value)


def test_database_index_is_accepted_with_postgresql(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, '[matching]\nindex = "database"\n'), environ={
        "COPYGUARD_DATABASE_URL": "postgresql+psycopg://db/copyguard"})
    assert settings.matching.index == "database"


def test_broken_toml_and_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_write(tmp_path, "[matching\n"), environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml", environ={})
