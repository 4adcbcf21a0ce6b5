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
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.errors import ConfigError
from config.schedule import parse_schedule

ENV_PREFIX = "COPYGUARD_"
DEFAULT_CONFIG_NAME = "copyguard.toml"
DEFAULT_HOME = "copyguard-data"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GeneralSettings(_Section):
    home: Path = Field(Path(DEFAULT_HOME), description="Data directory: database, index, evidence.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "text" for people, "json" (one object a line) for a log collector.
    log_format: Literal["text", "json"] = "text"


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


class CrawlSettings(_Section):
    # Sent with every request; {contact} is replaced by contact_url.
    user_agent: str = "copyguard/0.1 (copyright monitoring; +{contact})"
    contact_url: str = "https://example.invalid/copyguard-operator"
    max_audio_mb: float = Field(200.0, gt=0)
    max_page_mb: float = Field(10.0, gt=0)
    download_timeout_seconds: float = Field(60.0, gt=0)
    max_redirects: int = Field(5, ge=0, le=20)
    default_delay_seconds: float = Field(1.0, ge=0)
    default_concurrency: int = Field(2, ge=1, le=32)
    autothrottle: bool = True
    revisit_pages_hours: float = Field(6.0, ge=0)
    revisit_media_days: float = Field(7.0, ge=0)
    max_hls_segments: int = Field(2000, ge=1)
    warc_file_mb: int = Field(1024, ge=1)
    # Processes identifying captures while `copyguard crawl` runs, then draining; 0: one per core.
    identify_workers: int = Field(0, ge=0, le=64)
    # Redis (redis://host:6379/0) holding each host's next free request slot, so crawler
    # processes on every machine keep one host's delay between them; empty: per process.
    redis_url: str = Field("", pattern=r"^$|^rediss?://")

    @property
    def full_user_agent(self) -> str:
        return self.user_agent.replace("{contact}", self.contact_url)


class EvidenceSettings(_Section):
    # S3-compatible object storage (http://127.0.0.1:9000 for a MinIO) holding a copy of every
    # WARC file and captured media file, for crawlers and identify workers on other machines;
    # empty: the evidence stays on this machine's disk only.
    s3_endpoint: str = Field("", pattern=r"^$|^https?://[^/\s]+")
    # The bucket (made beforehand) and the key prefix, empty or ending in "/", under which the
    # files keep their paths in <home>/evidence.
    s3_bucket: str = Field("", pattern=r"^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    s3_prefix: str = Field("copyguard/", pattern=r"^$|^[^/\s][^\s]*/$")
    s3_region: str = "us-east-1"
    # Empty: boto3's own chain (AWS_ACCESS_KEY_ID, ~/.aws/credentials, an instance role). Set
    # the secret from the environment (COPYGUARD_EVIDENCE__S3_SECRET_ACCESS_KEY), not the file.
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    # To connect, and for each read of an answer; a request is tried three times at most.
    s3_timeout_seconds: float = Field(30.0, gt=0)


class TargetSettings(_Section):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    start_urls: tuple[str, ...] = Field(min_length=1)
    # Empty: the hosts of the start URLs.
    allowed_domains: tuple[str, ...] = ()
    follow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    depth: int = Field(3, ge=0, le=50)
    max_pages: int = Field(1000, ge=1)
    schedule: str = "every 6h"
    delay_seconds: float | None = Field(None, ge=0)
    concurrency: int | None = Field(None, ge=1, le=32)
    obey_robots: bool = True
    allow_private: bool = False
    # Where takedown notices for this site go (else its published contact, else RDAP's abuse
    # contact of its host), and under which law; empty: [takedown] default_jurisdiction.
    notice_email: str = ""
    notice_form_url: str = ""
    jurisdiction: Literal["", "dmca", "dsa", "prc"] = ""

    @model_validator(mode="after")
    def _checked(self) -> TargetSettings:
        parse_schedule(self.schedule)
        for url in self.start_urls:
            if not re.match(r"^https?://[^/\s]+", url):
                raise ValueError(f"start URL {url!r} is not an http(s) URL")
        for pattern in (*self.follow, *self.deny):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"follow/deny pattern {pattern!r}: {exc}") from None
        return self


class TakedownSettings(_Section):
    # Jurisdiction of a notice when its target names none: "dmca", "dsa" or "prc".
    default_jurisdiction: Literal["dmca", "dsa", "prc"] = "dmca"
    # Detections for one recipient, holder and jurisdiction found within this many hours of the
    # first are sent as one notice.
    batch_window_hours: float = Field(1.0, ge=0)
    # Hosts (and their subdomains) licensed to carry every holder's catalog: never notified.
    allowlist: tuple[str, ...] = ()
    # A detection matching less than this many seconds of a work is not noticed by rule: a short
    # excerpt may be fair use or quotation, so a person decides (Lenz v. Universal).
    fair_use_review_seconds: float = Field(30.0, ge=0)
    # Holder-specific templates: <template_dir>/<holder-id>/<jurisdiction>.{subject,txt,html}.j2.
    # Empty: <home>/templates.
    template_dir: str = ""
    # Delivery: attempts before a notice is marked failed, the first retry's delay (doubling),
    # and the least time between two notices to one recipient.
    max_attempts: int = Field(8, ge=1, le=100)
    retry_base_seconds: float = Field(60.0, gt=0)
    min_interval_per_recipient_seconds: float = Field(10.0, ge=0)
    # Follow-up: days after sending before the URLs are re-checked; a notice whose URLs still
    # answer after deadline_days is "ignored"; a reminder goes out once at recheck if still up.
    recheck_after_days: float = Field(2.0, ge=0)
    deadline_days: float = Field(14.0, ge=0)
    send_reminder: bool = True


class SmtpSettings(_Section):
    # The mail relay notices are sent through. Empty host: e-mail notices are not sent (they
    # wait in the outbox).
    host: str = ""
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    # AUTH only when a user name is set; set the password from the environment
    # (COPYGUARD_SMTP__PASSWORD), not in the file.
    username: str = ""
    password: str = ""
    # From: of every notice (the holder's address goes in Reply-To). Empty: the holder's address.
    from_address: str = ""
    timeout_seconds: float = Field(30.0, gt=0)
    # A CA certificate file to trust for the relay (a private relay); empty: the system's.
    ca_file: str = ""


class RdapSettings(_Section):
    # RDAP servers asked for the abuse contact of a host's address and of its domain, in order.
    ip_servers: tuple[str, ...] = ("https://rdap.arin.net/registry", "https://rdap.db.ripe.net")
    domain_servers: tuple[str, ...] = ("https://rdap.verisign.com/com/v1",)
    timeout_seconds: float = Field(10.0, gt=0)


class LitigationSettings(_Section):
    # Where suit would be brought (ISO 3166-1 alpha-2): works without rights there, or with an
    # open ownership conflict there, are held back by the gates.
    territory: str = Field("US", pattern=r"^[A-Z]{2}$")
    # Sites whose audio is served from one IP address are one operator's. Turn off where the
    # monitored sites sit behind shared hosting or a CDN (or list those in shared_hosts).
    link_by_ip: bool = True
    # Hosts, IP addresses and e-mail addresses that never link two sites (CDNs, big shared
    # hosts, public mailboxes).
    shared_hosts: tuple[str, ...] = ()
    # Days before a case's limitation deadline at which a reminder is written (each once).
    reminder_days: tuple[int, ...] = (180, 90, 30, 7)
    # Where `cases export` writes when no --out is given. Empty: <home>/dossiers.
    dossier_dir: str = ""
    # An RFC 3161 time-stamping authority for dossier manifests (empty: none), its credentials
    # (HTTP basic; the password from COPYGUARD_LITIGATION__TSA_PASSWORD), and the CA file that
    # `dossier verify` checks its tokens against.
    tsa_url: str = ""
    tsa_username: str = ""
    tsa_password: str = ""
    tsa_ca_file: str = ""
    tsa_timeout_seconds: float = Field(30.0, gt=0)
    # Points per unit of each scoring factor (see README, "Case scoring").
    weight_work: float = 10.0
    weight_eligible_work: float = 15.0
    weight_ignored_notice: float = 20.0
    weight_reupload: float = 25.0
    weight_counter_notice: float = 10.0
    weight_removed_after_notice: float = -10.0
    weight_month_active: float = 2.0
    weight_reach: float = 5.0
    weight_evidence: float = 20.0
    weight_urgency: float = 15.0

    @field_validator("reminder_days")
    @classmethod
    def _positive_days(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if any(day <= 0 for day in days):
            raise ValueError("reminder_days must be positive numbers of days")
        return days


class DaemonSettings(_Section):
    # How often each stage runs, in seconds (a target's crawl follows its own schedule).
    identify_every_seconds: float = Field(60.0, ge=5)
    takedown_every_seconds: float = Field(300.0, ge=5)
    recheck_every_seconds: float = Field(3600.0, ge=5)
    cases_every_seconds: float = Field(3600.0, ge=5)
    # The daily digest for operators, at this UTC time (HH:MM); empty: none.
    digest_at: str = Field("07:00", pattern=r"^$|^([01][0-9]|2[0-3]):[0-5][0-9]$")
    # A run missed (the daemon was down or busy) by more than this is skipped, not caught up;
    # missed runs of one job always coalesce into one.
    misfire_grace_seconds: float = Field(600.0, ge=1)
    # A failed job is retried after retry_base_seconds, doubling per failure in a row, up to
    # retry_max_seconds; the other jobs go on.
    retry_base_seconds: float = Field(60.0, gt=0)
    retry_max_seconds: float = Field(3600.0, gt=0)
    # On SIGTERM/SIGINT, how long the job in hand may take to finish its unit of work.
    shutdown_timeout_seconds: float = Field(60.0, gt=0)
    # A crawl (a child process) that runs longer than this is stopped.
    crawl_timeout_seconds: float = Field(4 * 3600.0, gt=0)
    # Stages the daemon leaves to ``copyguard worker`` processes: it only queues their runs
    # (identify workers take captures as they come); the daemon runs every other stage itself.
    worker_stages: tuple[Literal["crawl", "identify", "takedown", "recheck", "cases",
                                 "digest"], ...] = ()
    # How long a claim lasts: a worker's on a queued run (renewed while it works), and an
    # identify process's on a capture (not renewed: longer than decoding and matching take).
    # Work a process held when it died is taken up by another after this.
    worker_lease_seconds: float = Field(300.0, ge=10)
    # host:port of the daemon's (and each worker's) /healthz and /metrics; empty: none.
    # Port 0 takes a free port (logged at start).
    ops_listen: str = Field("127.0.0.1:9464", pattern=r"^$|^[^\s:]+:[0-9]{1,5}$")


class WebSettings(_Section):
    # host:port `copyguard serve` answers on (the console and the REST API).
    listen: str = Field("127.0.0.1:8080", pattern=r"^[^\s:]+:[0-9]{1,5}$")
    # How long a browser login lasts.
    session_hours: float = Field(12.0, gt=0, le=24 * 30)
    # Send the session cookie over HTTPS only. Browsers take it on http://127.0.0.1 and
    # http://localhost too; false only for plain HTTP on another address (not advised).
    secure_cookies: bool = True
    # The largest upload (a recording to register), in MiB.
    max_upload_mb: int = Field(200, ge=1)
    # Password attempts per client address and per user name, per minute.
    login_attempts_per_minute: int = Field(10, ge=1)
    # Requests per account (API key or login), per minute.
    requests_per_minute: int = Field(600, ge=1)


class Settings(_Section):
    # Sites to monitor, as [[targets]] tables (see the example at the end of this file); more can
    # be added with `copyguard targets add`.
    targets: tuple[TargetSettings, ...] = ()
    general: GeneralSettings = GeneralSettings()
    database: DatabaseSettings = DatabaseSettings()
    decoding: DecodingSettings = DecodingSettings()
    matching: MatchingSettings = MatchingSettings()
    catalog: CatalogSettings = CatalogSettings()
    crawl: CrawlSettings = CrawlSettings()
    evidence: EvidenceSettings = EvidenceSettings()
    takedown: TakedownSettings = TakedownSettings()
    smtp: SmtpSettings = SmtpSettings()
    rdap: RdapSettings = RdapSettings()
    litigation: LitigationSettings = LitigationSettings()
    daemon: DaemonSettings = DaemonSettings()
    web: WebSettings = WebSettings()

    @model_validator(mode="after")
    def _database_index_needs_postgresql(self) -> Settings:
        if self.matching.index == "database" and not self.database_url.startswith("postgresql"):
            raise ValueError('[matching] index = "database" needs a PostgreSQL [database] url '
                             f"(not {self.database_url.split(':', 1)[0]}); "
                             'with SQLite keep index = "local"')
        return self

    @model_validator(mode="after")
    def _lease_outlasts_decoding(self) -> Settings:
        if self.daemon.worker_lease_seconds <= self.decoding.timeout_seconds:
            raise ValueError(
                f"[daemon] worker_lease_seconds ({self.daemon.worker_lease_seconds:g}) must be "
                f"longer than [decoding] timeout_seconds ({self.decoding.timeout_seconds:g}): "
                "a capture's claim would run out while it is still being decoded")
        return self

    @model_validator(mode="after")
    def _object_storage_complete(self) -> Settings:
        if self.evidence.s3_endpoint and not self.evidence.s3_bucket:
            raise ValueError(f"[evidence] s3_endpoint is set ({self.evidence.s3_endpoint}), so "
                             "s3_bucket is required: the bucket the evidence is kept in")
        # One PUT carries at most 5 GiB; a file closes past warc_file_mb, plus its last exchange.
        if self.evidence.s3_endpoint and self.crawl.warc_file_mb > 4096:
            raise ValueError(f"[crawl] warc_file_mb ({self.crawl.warc_file_mb}) must be at most "
                             "4096 with [evidence] s3_endpoint set: one upload takes at most 5 GiB")
        return self

    @model_validator(mode="after")
    def _target_names_unique(self) -> Settings:
        names = [target.name for target in self.targets]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"targets: the name {duplicated[0]!r} is used twice")
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

    @property
    def dossier_dir(self) -> Path:
        return Path(self.litigation.dossier_dir) if self.litigation.dossier_dir \
            else self.home / "dossiers"

    @property
    def template_dir(self) -> Path:
        return Path(self.takedown.template_dir) if self.takedown.template_dir \
            else self.home / "templates"


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
        if section == "targets":
            if not isinstance(values, list):
                raise ConfigError(f"{file_path}: targets: expected [[targets]] tables")
            continue
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
