"""Writes on accounts. Views, API and commands all go through these functions."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Length

from .models import AuthorizationEvent, Role, Status, User

PROFILE_FIELDS = ("email", "full_name", "address", "city", "country", "phone", "organisation")
USERNAME_TAKEN = "This username is taken; choose another."
EMAIL_TAKEN = "An account with this email address already exists."


def taken(*, username: str | None = None, email: str | None = None, exclude_pk: int | None = None) -> dict[str, str]:
    """Field -> message for a username or email address that another account has in any capitals
    ("Ann" and "ann" would be two people to an admin, one to a mail server), in any alphabet
    ("Ärzte" and "ärzte": SQLite's case-insensitive match folds ASCII letters only)."""
    others = User.objects.exclude(pk=exclude_pk)
    clashes = {}
    for field, value, message in (("username", username, USERNAME_TAKEN), ("email", email, EMAIL_TAKEN)):
        if value and _held_in_other_capitals(others, field, value):
            clashes[field] = message
    return clashes


def _held_in_other_capitals(others, field: str, value: str) -> bool:
    """Whether one of ``others`` has ``value`` in ``field``, compared case-folded: the candidates are
    the values as long as it (folding case keeps the length but for a few letters such as ß)."""
    folded = value.casefold()
    same_length = others.annotate(_length=Length(field)).filter(_length=len(value))
    # iexact first: on MariaDB its collation also matches what folding case does not ("á" = "a"),
    # which the unique index would refuse at save with a vaguer message
    return (others.filter(**{f"{field}__iexact": value}).exists()
            or any(v.casefold() == folded for v in same_length.values_list(field, flat=True).iterator()))


def normalize_username(username: str) -> str:
    """A username as it is stored (NFKC, as Django's user model normalises it on save): checks
    run on this form, so that "ＡＮＮ" is checked as the "ANN" it becomes."""
    return User.normalize_username(username)


def _save_unique(user: User, fields: tuple[str, ...] | None = None, **save: Any) -> None:
    """Validate and save ``user``, refusing what :func:`taken` finds; with ``fields``, only those
    are checked (an edit of one field is not refused for a clash in another that was stored
    before the check existed). Run inside the caller's transaction: a write transaction on
    SQLite serialises two at once; elsewhere the unique index refuses the second, and that is
    the same error."""
    checked = [f.name for f in User._meta.fields] if fields is None else list(fields)
    clashes = taken(username=user.username if "username" in checked else None,
                    email=user.email if "email" in checked else None, exclude_pk=user.pk)
    if clashes:  # before full_clean: on a case-insensitive collation its unique check would see them too
        raise ValidationError(clashes)
    user.full_clean(exclude=[f.name for f in User._meta.fields if f.name not in checked])
    try:
        with transaction.atomic():
            user.save(**save)
    except IntegrityError:
        raise ValidationError(f"{USERNAME_TAKEN} (or the email address is in use)") from None


@transaction.atomic
def user_register(*, username: str, password: str, **profile: Any) -> User:
    """Store a new remote user as pending; they cannot log in until an admin authorizes them."""
    unknown = set(profile) - set(PROFILE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown profile fields: {', '.join(sorted(unknown))}")
    user = User(username=normalize_username(username), role=Role.REMOTE_USER, status=Status.PENDING, is_active=False,
                **profile)
    user.set_password(password)
    _save_unique(user)
    AuthorizationEvent.objects.create(
        user=user, actor=None, action=AuthorizationEvent.Action.REGISTER, to_status=Status.PENDING
    )
    return user


@transaction.atomic
def user_set_status(*, user: User, status: str, actor: User) -> User:
    """Authorize or revoke ``user``; audited. A no-op change is not recorded twice."""
    if status not in (Status.AUTHORIZED, Status.REVOKED):
        raise ValidationError("Status must be authorized or revoked.")
    if user.pk == actor.pk:
        raise ValidationError("You cannot change the authorization of your own account.")
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.status == status:
        return user
    action = AuthorizationEvent.Action.AUTHORIZE if status == Status.AUTHORIZED else AuthorizationEvent.Action.REVOKE
    AuthorizationEvent.objects.create(
        user=user, actor=actor, action=action, from_status=user.status, to_status=status
    )
    user.status = status
    user.is_active = status == Status.AUTHORIZED
    user.save(update_fields=["status", "is_active"])
    return user


@transaction.atomic
def user_update_profile(*, user: User, **profile: Any) -> User:
    """Save the profile fields that changed; only they are validated."""
    for field in profile:
        if field not in PROFILE_FIELDS:
            raise ValidationError(f"'{field}' cannot be edited here.")
    stored = User.objects.filter(pk=user.pk).values(*profile).get()  # ``user`` may hold the edit already (a ModelForm's)
    changed = tuple(f for f, value in profile.items() if stored[f] != value)
    for field in changed:
        setattr(user, field, profile[field])
    if changed:
        _save_unique(user, changed, update_fields=list(changed))
    return user


@transaction.atomic
def user_create_staff(*, username: str, email: str, password: str, role: str, full_name: str) -> User:
    """Service providers and admins are created by operators (demo command, shell), authorized."""
    if role not in (Role.SERVICE_PROVIDER, Role.ADMIN):
        raise ValidationError("Staff accounts are service providers or admins.")
    user = User(
        username=normalize_username(username),
        email=email,
        full_name=full_name,
        role=role,
        status=Status.AUTHORIZED,
        is_active=True,
        is_staff=role == Role.ADMIN,
    )
    user.set_password(password)
    _save_unique(user)
    return user
