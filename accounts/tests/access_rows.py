from .access import LOGIN, REDIRECT, Row, api_only, logged_in, only

ROWS = [
    # Logged-in users are sent to their dashboard; a pending session is logged out first.
    Row("index", {"anonymous": 200, "pending": LOGIN, "remote": REDIRECT, "provider": REDIRECT, "admin": REDIRECT}),
    Row("accounts:login", {"anonymous": 200, "pending": LOGIN, "remote": REDIRECT, "provider": REDIRECT, "admin": REDIRECT}),
    Row("accounts:register", {"anonymous": 200, "pending": LOGIN, "remote": REDIRECT, "provider": REDIRECT, "admin": REDIRECT}),
    Row("accounts:logout", {r: LOGIN for r in ("anonymous", "pending", "remote", "provider", "admin")}, method="post"),
    Row("accounts:home", {"anonymous": LOGIN, "pending": LOGIN, "remote": REDIRECT, "provider": REDIRECT, "admin": REDIRECT}),
    logged_in("accounts:profile"),
    logged_in("accounts:password_change"),
    only("accounts:user_list", "admin"),
    only("accounts:audit_log", "admin"),
    only("accounts:remote_users", "provider"),
    only(
        "accounts:user_set_status",
        "admin",
        ok=REDIRECT,
        method="post",
        kwargs=lambda f: {"pk": f["make_user"]("remote_user", "pending").pk, "status": "authorized"},
    ),
    only("dashboard", "provider"),
    only("remote_home", "remote"),
    Row("api_token", {"anonymous": 400, "pending": 403, "remote": 400, "provider": 400, "admin": 400}, method="post", api=True),
    Row("api_me", {"anonymous": 401, "pending": 403, "remote": 200, "provider": 200, "admin": 200}, api=True),
    # The API description is public; a pending session is refused like on every /api/ URL.
    Row("api_schema", {"anonymous": 200, "pending": 403, "remote": 200, "provider": 200, "admin": 200}, api=True),
    Row("api_docs", {"anonymous": 200, "pending": 403, "remote": 200, "provider": 200, "admin": 200}),
]

__all__ = ["ROWS", "api_only"]
