"""HTTP API: `create_app(engine)` for embedding and tests, `serve(settings, host, port)`."""

from payguard.api.app import ApiError, create_app
from payguard.api.server import serve

__all__ = ["ApiError", "create_app", "serve"]
