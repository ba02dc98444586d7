"""The key that signs links: where it comes from, and refusing a missing or known one.

The effective key is ``[agent] signing_key`` (best set from the environment as
``SMART_AGENT_AGENT__SIGNING_KEY``) if set, else the content of
``signing_key_file``, which ``smart-agent init`` creates once with a random key
and never overwrites. Anything that sends links (``serve``, ``run-once``)
refuses to start without a key, or with the old placeholder ``change-me``
that anyone can forge links with, unless told this is a local trial.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from agent.config import Config
from agent.errors import ConfigError
from agent.links import Links

logger = logging.getLogger(__name__)

#: Keys published in documentation or shipped as defaults: signing with them is no signing.
KNOWN_KEYS = frozenset({"change-me"})


def key_file(config: Config) -> Path:
    """Where the generated key is kept, resolved against the config file's folder."""
    return config.path(config.agent.signing_key_file)


def configured_key(config: Config) -> str | None:
    """The effective signing key, or ``None`` if there is none."""
    if (given := _given_key(config)) is not None:
        return given
    try:
        text = key_file(config).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the signing key file {key_file(config)}: {exc}") from exc
    return text or None


def _given_key(config: Config) -> str | None:
    given = config.agent.signing_key
    value = given.get_secret_value().strip() if given is not None else ""
    return value or None


def create_key_file(config: Config) -> Path | None:
    """Write a random key to the key file unless a usable key is set or the file exists.

    Returns the file's path if it was created now. The file is created with
    mode 0600 in one step (``O_EXCL``), so it is never overwritten nor readable
    by others, not even for a moment.
    """
    if _given_key(config) not in (None, *KNOWN_KEYS):
        return None
    path = key_file(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(descriptor, "w", encoding="utf-8") as sink:
        sink.write(secrets.token_urlsafe(32) + "\n")
    return path


def require_key(config: Config, *, local_trial: bool) -> None:
    """Refuse to go on without a secret signing key, unless ``local_trial``."""
    key = configured_key(config)
    if key is not None and key not in KNOWN_KEYS:
        return
    if key is None:
        problem = f"no signing key (none set, and no {key_file(config)})"
        fix = "run `smart-agent init` to create one, or set SMART_AGENT_AGENT__SIGNING_KEY"
    else:
        problem = f"signing_key is the published placeholder {key!r}, anyone can forge links"
        fix = "remove it (`smart-agent init` creates a key), or set SMART_AGENT_AGENT__SIGNING_KEY"
    if not local_trial:
        raise ConfigError(f"{problem}: {fix} (or use --local-trial on your own machine)")
    logger.warning("local trial: %s; do not send its links to anyone", _trial_note(key))


def _trial_note(key: str | None) -> str:
    if key is None:
        return "no signing key, links are signed with a throw-away key that dies with the process"
    return f"links are signed with the published placeholder {key!r}, anyone can forge them"


def links_for(config: Config, *, clock: Callable[[], datetime]) -> Links:
    """The links of this configuration.

    Without a key, links are signed with a throw-away random key: they cannot
    be forged, but stop working when the process ends (``require_key`` keeps
    real services from running so).
    """
    return Links(
        config.agent.public_url,
        configured_key(config) or secrets.token_urlsafe(32),
        clock=clock,
        unsubscribe_ttl=config.agent.unsubscribe_link_ttl,
        manage_ttl=config.agent.manage_link_ttl,
    )
