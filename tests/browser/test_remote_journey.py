"""Remote user journey: register, refused while pending, authorized by the admin, logs in,
edits the profile (the prediction steps are in the poisoning journey)."""

import pytest

from accounts.models import Status, User
from tests.support import PASSWORD, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def register(page, username: str, password: str) -> None:
    page.goto("/accounts/register/")
    page.fill("#id_username", username)
    page.fill("#id_email", f"{username}@hospital.example")
    page.fill("#id_full_name", "Ana Lúcia Pereira")
    page.fill("#id_address", "Rua das Flores 12")
    page.fill("#id_city", "Porto")
    page.fill("#id_country", "Portugal")
    page.fill("#id_phone", "+351 22 123 4567")
    page.fill("#id_organisation", "Hospital de São João")
    page.fill("#id_password1", password)
    page.fill("#id_password2", password)
    page.click("button[type=submit]")


def test_register_pending_authorize_login_edit_profile(new_page, shot, make_user):
    admin = make_user("admin", username="consortium_admin")
    page = new_page()

    register(page, "ana.pereira", "short")
    assert "too short" in page.content()
    shot(page, "register-errors")
    assert not User.objects.filter(username="ana.pereira").exists()

    password = "Hospital-Porto-2026"
    register(page, "ana.pereira", password)
    page.wait_for_url("**/accounts/login/")
    assert "must authorize your account" in page.content()
    login(page, "ana.pereira", password)
    assert "awaiting authorization" in page.content()
    shot(page, "pending")

    admin_page = new_page()
    login(admin_page, admin.username, PASSWORD)
    user = User.objects.get(username="ana.pereira")
    admin_page.click(f"#user-{user.pk} button:has-text('Authorize')")
    assert User.objects.get(pk=user.pk).status == Status.AUTHORIZED

    login(page, "ana.pereira", password)
    page.wait_for_url("**/home/")
    shot(page, "home")
    page.goto("/accounts/profile/")
    page.fill("#id_profile-city", "Braga")
    page.click("form.card button[type=submit]")
    assert "profile was saved" in page.content()
    shot(page, "profile-saved")
    assert User.objects.get(pk=user.pk).city == "Braga"
