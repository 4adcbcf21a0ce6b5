"""Typed settings for copyguard (see ``config/copyguard.default.toml`` for every key)."""

from config.errors import ConfigError
from config.settings import (
    CatalogSettings,
    DatabaseSettings,
    DecodingSettings,
    GeneralSettings,
    MatchingSettings,
    Settings,
    load_settings,
)

__all__ = [
    "CatalogSettings",
    "ConfigError",
    "DatabaseSettings",
    "DecodingSettings",
    "GeneralSettings",
    "MatchingSettings",
    "Settings",
    "load_settings",
]
