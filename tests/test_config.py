"""Configuration: validated at start-up; a typo exits 2 naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import ConfigError
from tests.conftest import ROOT


def smart_agent(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_loads_and_lists_real_sources() -> None:
    config = load_config(ROOT / "config.toml")
    assert config.sources, "the shipped config names the live sources"
    urls = " ".join(str(source.model_dump()) for source in config.sources.values())
    assert "https://" in urls
    assert "127.0.0.1" not in urls


@pytest.mark.parametrize(
    ("text", "named"),
    [
        pytest.param("[agent]\ndatabse_url = 'x'\n", "agent.databse_url", id="a typo in a key"),
        pytest.param(
            "[agent]\nclosing_soon_days = 'soon'\n", "agent.closing_soon_days", id="a wrong type"
        ),
        pytest.param("[sources.x]\nkind = 'ftp'\n", "sources.x", id="an unknown source kind"),
        pytest.param("[server]\nport = 70000\n", "server.port", id="a port out of range"),
        pytest.param("[agent\n", "not valid TOML", id="broken TOML"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    write(tmp_path, text)
    result = smart_agent("init", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.toml")


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[agent]\npublic_url = 'http://file.example'\n")
    monkeypatch.setenv("SMART_AGENT_AGENT__SIGNING_KEY", "from-env")
    monkeypatch.setenv("SMART_AGENT_AGENT__PUBLIC_URL", "https://env.example")
    config = load_config(path)
    assert config.agent.signing_key is not None
    assert config.agent.signing_key.get_secret_value() == "from-env"
    assert config.agent.public_url == "https://env.example"


@pytest.mark.sqlite_only("resolves an SQLite file's path")
def test_relative_sqlite_path_is_resolved_against_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[agent]\ndatabase_url = 'sqlite:///var/a.db'\n"))
    assert config.database_url == f"sqlite:///{tmp_path / 'var' / 'a.db'}"


def test_a_bare_toml_date_in_budget_key_filters_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[sources.b]\nkind = "budgetkey"\ndoc_type = "tenders"\n'
        "filters = { claim_date__gte = 2026-01-01 }\n",
        encoding="utf-8",
    )
    with pytest.raises(
        ConfigError, match=r"sources\.b\.budgetkey\.filters: values must be strings"
    ):
        load_config(path)


def test_a_channels_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "config.toml"
    path.parent.mkdir()
    path.write_text('[notifiers.email]\ndrop_dir = "mail"\n', encoding="utf-8")
    assert load_config(path).notifiers.email.drop_dir == tmp_path / "etc" / "mail"
