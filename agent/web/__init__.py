"""The web app (``agent.web.app``): pages, the JSON API, feeds and health."""

from agent.web.app import create_app

__all__ = ["create_app"]
