"""The configuration package's one exception."""


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file or variable and the key."""
