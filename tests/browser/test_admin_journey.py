"""Admin journey: authorize a pending user, later revoke them; their next request is refused."""

import pytest

from tests.support import PASSWORD, login, submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_authorizes_then_revokes_and_the_next_request_is_refused(new_page, shot, make_user):
    admin = make_user("admin", username="root_admin")
    clinician = make_user("remote_user", "pending", username="nurse_ana", organisation="Hospital Norte")

    user_page = new_page()
    login(user_page, clinician.username, PASSWORD)
    assert "awaiting authorization" in user_page.content()
    shot(user_page, "pending-refused")

    admin_page = new_page()
    login(admin_page, admin.username, PASSWORD)
    admin_page.wait_for_url("**/accounts/users/")
    assert "Hospital Norte" in admin_page.content()
    shot(admin_page, "user-list")
    submit(admin_page, f"#user-{clinician.pk} button:has-text('Authorize')")
    assert "nurse_ana is now authorized" in admin_page.content()

    login(user_page, clinician.username, PASSWORD)
    user_page.wait_for_url("**/home/")
    shot(user_page, "remote-home")

    asked = []
    admin_page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))  # "no": nothing changes
    admin_page.click(f"#user-{clinician.pk} button:has-text('Revoke')")
    admin_page.wait_for_timeout(200)
    assert asked and "Revoke nurse_ana?" in asked[0] and "Revoked" not in admin_page.inner_text(f"#user-{clinician.pk}")
    admin_page.once("dialog", lambda d: d.accept())
    submit(admin_page, f"#user-{clinician.pk} button:has-text('Revoke')")
    assert "nurse_ana is now revoked" in admin_page.content()
    shot(admin_page, "revoked")

    user_page.goto("/accounts/profile/")
    user_page.wait_for_url("**/accounts/login/**")
    assert "access has been revoked" in user_page.content()
    shot(user_page, "revoked-refused")
