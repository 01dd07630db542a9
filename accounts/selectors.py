from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from fedhealth.search import unmatchable

from .models import AuthorizationEvent, Role, Status, User


def user_list(*, query: str = "", status: str = "", role: str = "") -> QuerySet[User]:
    users = User.objects.all()
    if unmatchable(query):
        return users.none()
    if query:
        users = users.filter(
            Q(username__icontains=query)
            | Q(email__icontains=query)
            | Q(full_name__icontains=query)
            | Q(organisation__icontains=query)
            | Q(city__icontains=query)
            | Q(country__icontains=query)
        )
    if status in Status.values:
        users = users.filter(status=status)
    if role in Role.values:
        users = users.filter(role=role)
    return users.order_by("status", "username")


def remote_user_list(*, query: str = "") -> QuerySet[User]:
    return user_list(query=query, role=Role.REMOTE_USER)


def user_status_counts(*, role: str = "") -> dict[str, int]:
    """Accounts per status; of one role only when ``role`` is given."""
    counts = {s: 0 for s in Status.values}
    users = User.objects.filter(role=role) if role else User.objects.all()
    for row in users.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def authorization_events(*, limit: int = 50) -> QuerySet[AuthorizationEvent]:
    return AuthorizationEvent.objects.select_related("user", "actor")[:limit]
