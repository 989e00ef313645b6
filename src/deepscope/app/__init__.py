"""The web app: ``deepscope serve`` (FastAPI), its pages, JSON API and job queue."""

from deepscope.app.server import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
