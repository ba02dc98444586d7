"""The configuration: ``config.toml`` validated once at start-up.

Every table forbids unknown keys, so a typo stops the agent with exit status 2
and a message naming the key. Any key may also come from the environment as
``SMART_AGENT_<TABLE>__<KEY>`` (the environment wins), which is how secrets
such as ``SMART_AGENT_NOTIFIERS__TELEGRAM__TOKEN`` or
``SMART_AGENT_AGENT__SIGNING_KEY`` stay out of the file.
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agent.errors import ConfigError
from agent.i18n import LANGUAGES
from notifiers import Notifiers
from watchers import Source

ENV_PREFIX = "SMART_AGENT_"


class AdminAlertSettings(BaseModel):
    """The ``[agent.admin_alerts]`` table: who hears that a source keeps failing.

    One key per channel, named as a subscription names its address
    (``notifiers.CHANNELS``' ``address_field``); a channel left out is not used.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: This many failed polls in a row send one alert; 0 turns the alerts off.
    after: int = Field(default=3, ge=0)
    #: The language the alerts are written in.
    language: str = "he"
    #: The admins' e-mail address.
    email: str | None = None
    #: The admins' Telegram chat (a group's id starts with -100).
    telegram_chat_id: str | None = None

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(
                f"unknown language {value!r}; the languages are {', '.join(LANGUAGES)}"
            )
        return value


class AgentSettings(BaseModel):
    """The ``[agent]`` table: storage, links and timing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: SQLAlchemy URL; the embedded default is SQLite under ``var/``.
    database_url: str = "sqlite:///var/smart-agent.db"
    #: Where people reach this service: feed and unsubscribe links start here.
    public_url: str = "http://127.0.0.1:8080"
    #: Signs unsubscribe and manage links (from the environment); unset, the key file's is used.
    signing_key: SecretStr | None = None
    #: Where ``smart-agent init`` keeps a generated signing key (mode 0600).
    signing_key_file: Path = Path("var/signing.key")
    #: How long an unsubscribe link works: old e-mails must still unsubscribe.
    unsubscribe_link_ttl: timedelta = Field(default=timedelta(days=365), gt=timedelta(0))
    #: How long a link to manage a subscription works.
    manage_link_ttl: timedelta = Field(default=timedelta(days=30), gt=timedelta(0))
    #: Jinja2 templates, relative to the config file.
    templates_dir: Path = Path("templates")
    #: A deadline this close (in days) produces one ``closing_soon`` event.
    closing_soon_days: float = Field(default=3.0, gt=0)
    #: How often the dispatcher looks for due deliveries.
    dispatch_every: timedelta = Field(default=timedelta(minutes=1), gt=timedelta(0))
    #: A dispatch run owns the alerts it is sending this long; a worker that dies
    #: mid-send leaves them to be resent (same Message-ID) once it has passed.
    delivery_lease: timedelta = Field(default=timedelta(minutes=5), gt=timedelta(0))
    #: How many messages one process sends at once on each channel (one per subscription).
    send_concurrency: int = Field(default=16, ge=1, le=256)
    #: How often unconfirmed sign-ups and deliveries and events past their keep are deleted.
    purge_every: timedelta = Field(default=timedelta(hours=6), gt=timedelta(0))
    #: A failed source is retried this soon, then twice as late after each failure in a row.
    retry_first: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0))
    #: Retries of a failed source never wait longer than this (or than its own interval).
    retry_cap: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))
    #: At most this many immediate alerts per subscriber, channel and hour; the rest
    #: roll into the subscriber's next daily digest. 0 turns the cap off.
    hourly_cap: int = Field(default=30, ge=0)
    #: Final deliveries (sent, cancelled, dead, suppressed) older than this are deleted.
    keep_deliveries: timedelta = Field(default=timedelta(days=180), gt=timedelta(0))
    #: Change events older than this that no delivery names are deleted (``agent.retention``).
    keep_events: timedelta = Field(default=timedelta(days=365), gt=timedelta(0))
    #: After this many failed attempts a delivery is dead (visible, replayable).
    max_attempts: int = Field(default=8, ge=1)
    #: The zone digests are scheduled in and dates are shown in.
    timezone: str = "Asia/Jerusalem"
    #: Local hour at which daily and weekly digests go out.
    digest_hour: int = Field(default=8, ge=0, le=23)
    #: Shown as the sender and in message footers.
    site_name: str = "Smart Agent"
    #: Sent with every request to a source, so publishers can reach us.
    user_agent: str = "smart-agent/0.1 (+https://github.com/OpenBudget; alerts)"
    #: A source failing again and again is told to the admins (``agent.admin_alerts``).
    admin_alerts: AdminAlertSettings = AdminAlertSettings()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        # Checked at start: an unknown zone used to pass and crash ``run-once`` later.
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {value!r}; give an IANA name such as Asia/Jerusalem or UTC"
            ) from None
        return value

    @property
    def closing_soon_window(self) -> timedelta:
        """``closing_soon_days`` as a duration."""
        return timedelta(days=self.closing_soon_days)


class ServerSettings(BaseModel):
    """The ``[server]`` table: the HTTP server with feeds and health."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class Config(BaseSettings):
    """The whole configuration, from ``config.toml`` and ``SMART_AGENT_*`` variables."""

    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix=ENV_PREFIX, env_nested_delimiter="__"
    )

    agent: AgentSettings = AgentSettings()
    server: ServerSettings = ServerSettings()
    notifiers: Notifiers = Notifiers()
    sources: dict[str, Source] = Field(default_factory=dict)
    #: The folder the config file sits in; relative paths are resolved against it.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Let the environment override the file (the file arrives as init values)."""
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _channel_paths(self) -> Config:
        # A channel's relative paths (a drop folder, a CA file) follow the config
        # file like every other path, not the folder the command was started in.
        resolved = {}
        for name in type(self.notifiers).model_fields:
            channel = getattr(self.notifiers, name)
            if channel is None:
                continue
            update = {key: self.path(value) for key, value in channel if isinstance(value, Path)}
            if update:
                resolved[name] = channel.model_copy(update=update)
        if resolved:
            # The model is frozen: this runs once, while it is being built.
            object.__setattr__(self, "notifiers", self.notifiers.model_copy(update=resolved))
        return self

    def path(self, relative: Path) -> Path:
        """Resolve ``relative`` against the config file's folder."""
        return relative if relative.is_absolute() else self.base_dir / relative

    @property
    def database_url(self) -> str:
        """The database URL, with a relative SQLite path resolved against ``base_dir``."""
        url = self.agent.database_url
        prefix = "sqlite:///"
        # SQLite's URI form (sqlite:///file:path?mode=ro&uri=true) keeps its "file:".
        scheme = "file:" if url.startswith(prefix + "file:") else ""
        path = url.removeprefix(prefix + scheme)
        if url.startswith(prefix) and not path.startswith("/") and ":memory:" not in url:
            return prefix + scheme + str(self.path(Path(path)))
        return url


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raise ``ConfigError`` naming every bad key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return build_config(data, base_dir=path.resolve().parent, origin=str(path))


def build_config(data: dict[str, Any], *, base_dir: Path, origin: str = "config") -> Config:
    """Validate a parsed configuration mapping."""
    try:
        return Config(**data, base_dir=base_dir)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: invalid configuration\n{format_errors(exc)}") from exc


def format_errors(exc: ValidationError) -> str:
    """Render pydantic errors as ``  key.path: what was expected (got value)`` lines."""
    lines = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"])
        given = error.get("input")
        shown = "" if isinstance(given, dict | list) else f" (got {given!r})"
        # Our own checks raise ValueError, whose text already says what is wrong.
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {key}: {message}{shown}" if key else f"  {message}{shown}")
    return "\n".join(lines)
