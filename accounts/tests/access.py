"""The URL x role access table, assembled from one ``ROWS`` list per app.

Each app lists its URLs in ``<app>/tests/access_rows.py``; tests/test_access_matrix.py merges
them into one table, requests every URL as every role and fails when a URL has no row.

Outcomes: an HTTP status (200, 403, 404, 405, 401) or LOGIN (redirect to the login page) or
REDIRECT (any other redirect).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOGIN = "login"
REDIRECT = "redirect"
ROLES = ("anonymous", "pending", "remote", "provider", "admin")


@dataclass(frozen=True)
class Row:
    name: str
    expect: dict[str, Any]
    method: str = "get"
    # kwargs for reverse(); a callable gets the fixtures dict (users, db) and may create objects.
    kwargs: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    api: bool = False

    def __post_init__(self) -> None:
        missing = set(ROLES) - set(self.expect)
        if missing:
            raise ValueError(f"{self.name}: no expected outcome for {sorted(missing)}")


def only(name: str, role: str, ok: Any = 200, **kw: Any) -> Row:
    """A page for one role: anonymous and pending go to login, every other role gets 403."""
    expect = {"anonymous": LOGIN, "pending": LOGIN, "remote": 403, "provider": 403, "admin": 403}
    expect[role] = ok
    return Row(name, expect, **kw)


def api_only(name: str, role: str, ok: Any = 200, **kw: Any) -> Row:
    """An API endpoint for one role: 401 anonymous, 403 pending (inactive) and other roles."""
    expect = {"anonymous": 401, "pending": 403, "remote": 403, "provider": 403, "admin": 403}
    expect[role] = ok
    return Row(name, expect, api=True, **kw)


def logged_in(name: str, ok: Any = 200, **kw: Any) -> Row:
    return Row(name, {"anonymous": LOGIN, "pending": LOGIN, "remote": ok, "provider": ok, "admin": ok}, **kw)


def public(name: str, ok: Any = 200, **kw: Any) -> Row:
    return Row(name, {r: ok for r in ROLES}, **kw)
