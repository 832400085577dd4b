"""`GET /schema`: the API's operations as one self-contained HTML page.

Litestar's Swagger, Redoc and Scalar pages load their JavaScript and fonts from a CDN, so
on a server without outside access (the usual place for a risk engine) they render blank,
and on any server they tell a third party who reads the docs. This page is rendered on the
server from the same OpenAPI document (`/schema/openapi.json`, served beside it) and needs
nothing else: no script, no stylesheet, no font from anywhere.
"""

from html import escape
from typing import Any, Final

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin

_METHODS: Final = ("get", "post", "put", "patch", "delete")
_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "code{background:#f3f3f3;padding:0 .2em}section{border-top:1px solid #ddd;padding:.5rem 0}"
)


class OperationIndex(OpenAPIRenderPlugin):
    """Every operation (method, path, summary, description, tag) as plain HTML."""

    def __init__(self) -> None:
        super().__init__(path="/")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        info = openapi_schema.get("info", {})
        title = escape(f"{info.get('title', 'API')} {info.get('version', '')}".strip())
        parts = [
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>",
            f"<style>{_STYLE}</style></head><body><h1>{title}</h1>",
            f"<p>{escape(info.get('description', ''))}</p>",
            f"<p>The document itself: <a href='{escape(self.get_openapi_json_route(request))}'>"
            "openapi.json</a></p>",
        ]
        for path, item in sorted(openapi_schema.get("paths", {}).items()):
            for method in _METHODS:
                if method in item:
                    parts.append(_operation(method, path, item[method]))
        parts.append("</body></html>")
        return "".join(parts).encode()


def _operation(method: str, path: str, operation: dict[str, Any]) -> str:
    tags = ", ".join(operation.get("tags", []))
    return (
        f"<section><h2><code>{method.upper()} {escape(path)}</code></h2>"
        f"<p><b>{escape(operation.get('summary', ''))}</b> <i>{escape(tags)}</i></p>"
        f"<p>{escape(operation.get('description', ''))}</p></section>"
    )
