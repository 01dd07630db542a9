"""Every URL x every role, from the one table of accounts/tests/access.py."""

from __future__ import annotations

import importlib

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.tests.access import LOGIN, REDIRECT, ROLES, Row

APPS = ("accounts", "training", "poisoning", "ledger")
# Django's own admin site is not part of the product's pages; it is covered by Django.
EXCLUDED_NAMESPACES = {"admin"}


def _table() -> list[Row]:
    rows: list[Row] = []
    for app in APPS:
        try:
            module = importlib.import_module(f"{app}.tests.access_rows")
        except ModuleNotFoundError:
            continue
        rows.extend(module.ROWS)
    return rows


TABLE = _table()


def _named_urls(patterns, namespace: str = "") -> set[str]:
    names: set[str] = set()
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace in EXCLUDED_NAMESPACES:
                continue
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            names |= _named_urls(p.url_patterns, ns)
        elif isinstance(p, URLPattern):
            assert p.name, f"URL {p.pattern} has no name; every URL needs a name and a row"
            names.add(namespace + p.name)
    return names


def test_every_url_has_a_row():
    urls = _named_urls(get_resolver().url_patterns)
    listed = {row.name for row in TABLE}
    assert not urls - listed, f"URLs without a row in the access table: {sorted(urls - listed)}"
    assert not listed - urls, f"rows for URLs that do not exist: {sorted(listed - urls)}"
    assert len({(row.name, row.method) for row in TABLE}) == len(TABLE), "a URL and method are listed twice"


def _login_as(client, role: str, make_user):
    mapping = {
        "pending": ("remote_user", "pending"),
        "remote": ("remote_user", "authorized"),
        "provider": ("service_provider", "authorized"),
        "admin": ("admin", "authorized"),
    }
    if role == "anonymous":
        return None
    user = make_user(*mapping[role])
    client.force_login(user)
    return user


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", TABLE, ids=lambda r: f"{r.name}-{r.method}")
def test_access(client, make_user, django_user_model, row: Row, role: str):
    fixtures = {"make_user": make_user}
    fixtures["user"] = _login_as(client, role, make_user)
    kwargs = row.kwargs(fixtures) if callable(row.kwargs) else row.kwargs
    url = reverse(row.name, kwargs=kwargs)
    headers = {"HTTP_ACCEPT": "application/json"} if row.api else {}
    response = getattr(client, row.method)(url, row.data, **headers)
    expected = row.expect[role]
    login_url = reverse("accounts:login")
    if expected == LOGIN:
        assert response.status_code == 302, f"{row.name} as {role}: {response.status_code}"
        assert response["Location"].startswith(login_url), response["Location"]
    elif expected == REDIRECT:
        assert response.status_code == 302, f"{row.name} as {role}: {response.status_code}"
        assert not response["Location"].startswith(login_url), response["Location"]
    else:
        assert response.status_code == expected, f"{row.name} as {role}: {response.status_code}"
    if response.status_code == 403 and not url.startswith("/api/"):
        assert b"not for your role" in response.content  # the friendly page, not a bare 403
