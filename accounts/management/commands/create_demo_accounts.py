"""Create one account per role with random passwords, printed once (never stored in plain text)."""

import secrets

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import services
from accounts.models import Role, Status, User

DEMO = [
    ("provider", Role.SERVICE_PROVIDER, "Demo Service Provider", "provider@fedhealth.example"),
    ("admin", Role.ADMIN, "Demo Administrator", "admin@fedhealth.example"),
    ("clinician", Role.REMOTE_USER, "Demo Clinician", "clinician@fedhealth.example"),
]


class Command(BaseCommand):
    help = "Create the demo service provider, admin and remote user (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Give existing demo accounts new passwords.")

    @transaction.atomic
    def handle(self, *args, reset: bool = False, **options):
        rows = []
        for username, role, full_name, email in DEMO:
            user = User.objects.filter(username=username).first()
            if user and not reset:
                rows.append((username, role.label, "(unchanged; use --reset for a new password)"))
                continue
            password = secrets.token_urlsafe(12)
            if user is None:
                if role == Role.REMOTE_USER:
                    user = services.user_register(
                        username=username, password=password, email=email, full_name=full_name,
                        organisation="St. Demo Hospital", city="Springfield", country="Utopia",
                    )
                    # authorized by the demo admin (created before), so the audit log tells it like any other
                    admin = User.objects.filter(role=Role.ADMIN).order_by("pk").first()
                    user = services.user_set_status(user=user, status=Status.AUTHORIZED, actor=admin)
                else:
                    services.user_create_staff(
                        username=username, email=email, password=password, role=role, full_name=full_name
                    )
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            rows.append((username, role.label, password))
        self.stdout.write("Demo accounts (passwords are shown once, keep them):")
        for username, role, password in rows:
            self.stdout.write(f"  {role:<18} {username:<10} {password}")
