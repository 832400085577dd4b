"""The analyst console: server-rendered pages (Jinja2 + htmx, ECharts charts, a Cytoscape
identity graph) under `/console/`, over the same services the API routes call
(docs/console.md)."""

from payguard.console.app import Console
from payguard.console.session import COOKIE, Session, Signer

__all__ = ["COOKIE", "Console", "Session", "Signer"]
