from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import RegexValidator
from django.db import models


class Role(models.TextChoices):
    SERVICE_PROVIDER = "service_provider", "Service provider"
    ADMIN = "admin", "Admin"
    REMOTE_USER = "remote_user", "Remote user"


class Status(models.TextChoices):
    PENDING = "pending", "Pending authorization"
    AUTHORIZED = "authorized", "Authorized"
    REVOKED = "revoked", "Revoked"


phone_validator = RegexValidator(
    r"^\+?[0-9 ()\-]{6,20}$", "Enter a phone number of 6 to 20 digits, spaces, dashes or brackets."
)


class FedHealthUserManager(UserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        extra_fields.setdefault("role", Role.ADMIN)
        extra_fields.setdefault("status", Status.AUTHORIZED)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A FedHealth account. ``is_active`` mirrors ``status == AUTHORIZED`` (kept in sync by
    accounts.services) so that sessions, API tokens and the admin all refuse pending and revoked
    users the same way."""

    email = models.EmailField("email address", unique=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.REMOTE_USER)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    full_name = models.CharField(max_length=150)
    address = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=20, blank=True, validators=[phone_validator])
    organisation = models.CharField("organisation / hospital", max_length=200, blank=True)

    objects = FedHealthUserManager()

    class Meta:
        ordering = ["username"]
        indexes = [models.Index(fields=["role", "status"])]

    def __str__(self) -> str:
        return self.username

    @property
    def full_address(self) -> str:
        """Address, city and country joined by commas, leaving out the empty parts."""
        return ", ".join(part.strip() for part in (self.address, self.city, self.country) if part and part.strip())

    @property
    def is_service_provider(self) -> bool:
        return self.role == Role.SERVICE_PROVIDER

    @property
    def is_admin_role(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_remote_user(self) -> bool:
        return self.role == Role.REMOTE_USER


class AuthorizationEvent(models.Model):
    """Audit trail: who authorized or revoked whom, and when."""

    class Action(models.TextChoices):
        AUTHORIZE = "authorize", "Authorized"
        REVOKE = "revoke", "Revoked"
        REGISTER = "register", "Registered"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="authorization_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    from_status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Status.choices)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.user} by {self.actor or 'system'}"
