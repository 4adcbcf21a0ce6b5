"""Typed settings: built-in defaults, then ``copyguard.toml``, then ``COPYGUARD_*`` variables.

Every setting lives in one frozen class per section below, with its default; the same defaults are
written out, with a comment each, in ``config/copyguard.default.toml`` (a test keeps the two equal).
``load_settings`` validates once at start-up and raises :class:`ConfigError` naming the bad key.

Environment variables override the file: ``COPYGUARD_<SECTION>__<KEY>`` (for example
``COPYGUARD_MATCHING__MIN_CONFIDENCE=0.7``), plus the short forms ``COPYGUARD_HOME`` (the data
directory) and ``COPYGUARD_DATABASE_URL``. ``COPYGUARD_CONFIG`` names the TOML file to read.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from config.errors import ConfigError

ENV_PREFIX = "COPYGUARD_"
DEFAULT_CONFIG_NAME = "copyguard.toml"
DEFAULT_HOME = "copyguard-data"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GeneralSettings(_Section):
    home: Path = Field(Path(DEFAULT_HOME), description="Data directory: database, index, evidence.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class DatabaseSettings(_Section):
    # Empty means SQLite at <home>/copyguard.db (the embedded default).
    url: str = ""
    busy_timeout_ms: int = Field(30_000, ge=0)


class DecodingSettings(_Section):
    timeout_seconds: float = Field(120.0, gt=0)
    memory_limit_mb: int = Field(1024, ge=64)
    max_seconds: float = Field(1800.0, gt=0)


class MatchingSettings(_Section):
    min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    review_below: float = Field(0.85, ge=0.0, le=1.0)
    # Where identify searches: "local", a replica under <home>/index; "database", one index in
    # the PostgreSQL database that every worker shares.
    index: Literal["local", "database"] = "local"

    @model_validator(mode="after")
    def _review_above_min(self) -> MatchingSettings:
        if self.review_below < self.min_confidence:
            raise ValueError("review_below must not be lower than min_confidence")
        return self


class CatalogSettings(_Section):
    duplicate_similarity: float = Field(0.8, ge=0.0, le=1.0)
    extensions: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac")


class Settings(_Section):
    general: GeneralSettings = GeneralSettings()
    database: DatabaseSettings = DatabaseSettings()
    decoding: DecodingSettings = DecodingSettings()
    matching: MatchingSettings = MatchingSettings()
    catalog: CatalogSettings = CatalogSettings()

    @model_validator(mode="after")
    def _database_index_needs_postgresql(self) -> Settings:
        if self.matching.index == "database" and not self.database_url.startswith("postgresql"):
            raise ValueError('[matching] index = "database" needs a PostgreSQL [database] url '
                             f"(not {self.database_url.split(':', 1)[0]}); "
                             'with SQLite keep index = "local"')
        return self

    @property
    def home(self) -> Path:
        return self.general.home

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.home / 'copyguard.db').as_posix()}"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def references_dir(self) -> Path:
        return self.home / "references"

    @property
    def evidence_dir(self) -> Path:
        return self.home / "evidence"


_SHORT_ENV = {"HOME": ("general", "home"), "DATABASE_URL": ("database", "url")}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: configuration file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Nested overrides from the environment, and the variable each ``section.key`` came from."""
    overrides: dict[str, dict[str, str]] = {}
    origin: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        rest = name[len(ENV_PREFIX):]
        if rest in _SHORT_ENV:
            section, key = _SHORT_ENV[rest]
        elif "__" in rest:
            section, key = (part.lower() for part in rest.split("__", 1))
        else:
            continue  # not ours (COPYGUARD_TEST_*, for example)
        overrides.setdefault(section, {})[key] = value
        origin[f"{section}.{key}"] = name
    return overrides, origin


def _merge(base: dict[str, Any], extra: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    merged = {section: dict(values) if isinstance(values, dict) else values
              for section, values in base.items()}
    for section, values in extra.items():
        current = merged.setdefault(section, {})
        if isinstance(current, dict):
            current.update(values)
    return merged


def _parse_env_value(section: str, key: str, raw: str) -> Any:
    """Environment values are strings; lists are given comma-separated."""
    field = Settings.model_fields.get(section)
    section_model = field.annotation if field else None
    sub = getattr(section_model, "model_fields", {}).get(key)
    if sub is not None and "tuple" in str(sub.annotation):
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    return raw


def _describe(error: Mapping[str, Any], origin: Mapping[str, str], source: str) -> str:
    loc = [str(part) for part in error["loc"]]
    dotted = ".".join(loc[:2])
    where = origin.get(dotted)
    if not loc:  # a rule across sections: its message names the keys
        where = source
    elif where is None:
        key = f"[{loc[0]}] {'.'.join(loc[1:])}" if len(loc) > 1 else loc[0]
        where = f"{source}: {key}"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
    if "input" in error and error["type"] != "extra_forbidden" and loc:
        message += f" (got {error['input']!r})"
    return f"{where}: {message}"


def load_settings(path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (``path``, else ``$COPYGUARD_CONFIG``, else ``./copyguard.toml`` if it
    exists) and the environment, and validate them.

    Raises :class:`ConfigError` naming the bad key."""
    env = os.environ if environ is None else environ
    file_path: Path | None = Path(path) if path else None
    if file_path is None and env.get(ENV_PREFIX + "CONFIG"):
        file_path = Path(env[ENV_PREFIX + "CONFIG"])
    if file_path is None and Path(DEFAULT_CONFIG_NAME).is_file():
        file_path = Path(DEFAULT_CONFIG_NAME)
    data = _read_toml(file_path) if file_path else {}
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{file_path}: {section}: expected a [{section}] table")
    overrides, origin = _env_overrides(env)
    parsed = {section: {key: _parse_env_value(section, key, raw) for key, raw in values.items()}
              for section, values in overrides.items()}
    merged = _merge(data, parsed)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        problems = [_describe(err, origin, str(file_path or "settings")) for err in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
