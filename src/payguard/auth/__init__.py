"""API keys with scopes, console users with roles, per-key rate limits, the audit log and
development mode (docs/security.md). Below the API and the console: they ask who is
calling and record what they changed; the CLI manages keys, users and the log through the
same objects."""

from payguard.auth.access import Access
from payguard.auth.audit import Actor, AuditEntry, AuditLog, ChainBreak, ExportFormat, export_lines
from payguard.auth.devmode import (
    DEV_ENV,
    MIN_TOKEN_KEY_BYTES,
    StartupRefused,
    banner,
    check_token_key,
    dev_admin_key,
    dev_mode,
)
from payguard.auth.keys import (
    AUTH_DB,
    ApiKey,
    Authenticator,
    AuthRefused,
    KeyChangeError,
    KeyStore,
    NewKey,
    SqliteKeyStore,
    create_key,
    hash_secret,
)
from payguard.auth.ratelimit import RateLimiter, TokenBucket
from payguard.auth.scopes import SCOPE_PURPOSE, SCOPES, Scope, grants, parse_scope
from payguard.auth.users import ROLE_SCOPES, ROLES, Role, User, UserError, UserStore, parse_role

__all__ = [
    "AUTH_DB",
    "DEV_ENV",
    "MIN_TOKEN_KEY_BYTES",
    "ROLES",
    "ROLE_SCOPES",
    "SCOPES",
    "SCOPE_PURPOSE",
    "Access",
    "Actor",
    "ApiKey",
    "AuditEntry",
    "AuditLog",
    "AuthRefused",
    "Authenticator",
    "ChainBreak",
    "ExportFormat",
    "KeyChangeError",
    "KeyStore",
    "NewKey",
    "RateLimiter",
    "Role",
    "Scope",
    "SqliteKeyStore",
    "StartupRefused",
    "TokenBucket",
    "User",
    "UserError",
    "UserStore",
    "banner",
    "check_token_key",
    "create_key",
    "dev_admin_key",
    "dev_mode",
    "export_lines",
    "grants",
    "hash_secret",
    "parse_role",
    "parse_scope",
]
