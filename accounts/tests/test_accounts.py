"""Registration -> pending -> refused login -> authorized -> login -> profile, on the real DB."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import AuthorizationEvent, Status, User
from tests.support import PASSWORD

REGISTRATION = {
    "username": "dr.müller",
    "email": "mueller@klinikum.example",
    "full_name": "Jürgen Müller-Łukasiewicz",
    "address": "Hauptstraße 1",
    "city": "München",
    "country": "Deutschland",
    "phone": "+49 89 1234-567",
    "organisation": "Klinikum Süd",
    "password1": "Sturdy-Pass-2026!",
    "password2": "Sturdy-Pass-2026!",
}


def _login(client, username, password):
    return client.post(reverse("accounts:login"), {"username": username, "password": password}, follow=True)


@pytest.mark.django_db
def test_full_registration_and_authorization_journey(client, admin_user):
    response = client.post(reverse("accounts:register"), REGISTRATION, follow=True)
    assert response.redirect_chain[-1][0] == reverse("accounts:login")
    assert b"must authorize your account" in response.content
    user = User.objects.get(username="dr.müller")
    assert (user.status, user.is_active, user.full_name) == (Status.PENDING, False, REGISTRATION["full_name"])
    assert user.check_password(REGISTRATION["password1"])

    response = _login(client, "dr.müller", REGISTRATION["password1"])
    assert b"awaiting authorization" in response.content
    assert "_auth_user_id" not in client.session

    # A wrong password for a pending account does not reveal the status.
    response = _login(client, "dr.müller", "not-the-password")
    assert b"awaiting authorization" not in response.content
    assert b"correct username and password" in response.content

    client.force_login(admin_user)
    response = client.post(reverse("accounts:user_set_status", args=[user.pk, "authorized"]), follow=True)
    assert b"is now authorized" in response.content
    event = AuthorizationEvent.objects.filter(user=user, action="authorize").get()
    assert event.actor == admin_user and event.from_status == Status.PENDING
    client.logout()

    response = _login(client, "dr.müller", REGISTRATION["password1"])
    assert response.redirect_chain[-1][0] == reverse("remote_home")

    response = client.post(
        reverse("accounts:profile"),
        {f"profile-{k}": v for k, v in {**REGISTRATION, "city": "Köln", "phone": "+49 221 555"}.items()},
        follow=True,
    )
    assert b"profile was saved" in response.content
    user.refresh_from_db()
    assert (user.city, user.phone) == ("Köln", "+49 221 555")


@pytest.mark.django_db
def test_revoked_user_is_refused_on_next_request_and_at_login(client, admin_user, remote):
    client.force_login(remote)
    assert client.get(reverse("remote_home")).status_code == 200
    from accounts import services

    services.user_set_status(user=remote, status=Status.REVOKED, actor=admin_user)
    response = client.get(reverse("remote_home"), follow=True)
    assert b"revoked" in response.content
    assert "_auth_user_id" not in client.session
    response = _login(client, remote.username, PASSWORD)
    assert b"access has been revoked" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"username": "taken"}, "username", "username is taken"),
        ({"email": "TAKEN@example.org"}, "email", "email address already exists"),
        ({"password1": "short", "password2": "short"}, "password1", "too short"),
        ({"password1": "password123", "password2": "password123"}, "password1", "too common"),
        ({"password2": "Different-Pass-2026!"}, "password2", "do not match"),
        ({"full_name": "x" * 151}, "full_name", "at most 150 characters"),
        ({"username": "bad name!"}, "username", "Enter a valid username"),
        ({"phone": "call me"}, "phone", "phone number"),
        ({"email": ""}, "email", "required"),
    ],
)
def test_bad_registration_input_is_refused_and_nothing_stored(client, make_user, change, field, message):
    make_user(username="taken", email="taken@example.org")
    before = User.objects.count()
    response = client.post(reverse("accounts:register"), {**REGISTRATION, **change})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert User.objects.count() == before
    assert message.encode() in response.content or field == "password1"


@pytest.mark.django_db
def test_a_username_or_email_in_other_capitals_is_taken_whichever_way_the_account_is_written(client, make_user):
    """Two registrations validated at once (each form saw the name free) store one account; the
    service refuses the second, and so does a profile change to another account's address."""
    from django.core.exceptions import ValidationError

    from accounts import forms, services

    first = forms.RegistrationForm({**REGISTRATION, "username": "Racer", "email": "racer@example.org"})
    second = forms.RegistrationForm({**REGISTRATION, "username": "racer", "email": "other@example.org"})
    assert first.is_valid() and second.is_valid()
    for form in (first, second):
        try:
            services.user_register(username=form.cleaned_data["username"], password=form.cleaned_data["password1"],
                                   **{f: form.cleaned_data[f] for f in services.PROFILE_FIELDS})
        except ValidationError as exc:
            assert exc.message_dict == {"username": [services.USERNAME_TAKEN]}
    assert User.objects.filter(username__iexact="racer").count() == 1
    with pytest.raises(ValidationError, match="email address already exists"):
        services.user_create_staff(username="staff", email="RACER@example.org", password=PASSWORD, role="admin",
                                   full_name="S")
    other = make_user(username="other", email="mine@example.org")
    with pytest.raises(ValidationError, match="email address already exists"):
        services.user_update_profile(user=other, email="Racer@Example.org")
    assert User.objects.get(pk=other.pk).email == "mine@example.org"


@pytest.mark.django_db
def test_accounts_stored_before_the_case_check_can_still_edit_their_profile(client, make_user):
    """Two accounts whose names (and addresses) differ only in capitals, stored before such names
    were refused: either can still change the rest of its profile; changing the address to the
    other's is refused on the page, not a server error."""
    from django.db import connection

    from accounts.services import PROFILE_FIELDS

    if connection.vendor == "mysql":
        pytest.skip("a case-insensitive collation cannot store such a pair in the first place")
    make_user(username="Ann", email="ann@example.org")
    ann = make_user(username="ann", email="ANN@example.org")
    client.force_login(ann)
    fields = {f"profile-{k}": v for k, v in {**REGISTRATION, "email": "ANN@example.org"}.items()
              if k in PROFILE_FIELDS}
    response = client.post(reverse("accounts:profile"), {**fields, "profile-city": "Graz"}, follow=True)
    assert b"profile was saved" in response.content
    assert User.objects.get(pk=ann.pk).city == "Graz"
    other = make_user(username="bob", email="bob@example.org")
    client.force_login(other)
    response = client.post(reverse("accounts:profile"), {**fields, "profile-email": "Ann@Example.org"})
    assert response.status_code == 200 and b"email address already exists" in response.content
    assert User.objects.get(pk=other.pk).email == "bob@example.org"


@pytest.mark.django_db
def test_a_username_is_checked_as_it_will_be_stored(client, make_user):
    """Django stores a username NFKC-normalised: "ＡＮＮ" (full-width) becomes "ANN", and one
    character may become many. The checks see the stored form, and capitals in any alphabet."""
    from accounts import services

    make_user(username="ann", email="ann@example.org")
    make_user(username="ärzte", email="aerzte@example.org")
    url = reverse("accounts:register")
    for typed, message in (("ＡＮＮ", "This username is taken"), ("Ärzte", "This username is taken"),
                           ("\ufdfa" * 150, "characters as stored")):
        page = client.post(url, {**REGISTRATION, "username": typed, "email": "new@example.org"})
        assert page.status_code == 200 and message in page.content.decode(), typed
        with pytest.raises(ValidationError):
            services.user_register(username=typed, password=REGISTRATION["password1"],
                                   **{f: REGISTRATION[f] for f in services.PROFILE_FIELDS if f != "email"},
                                   email="new@example.org")
    assert User.objects.count() == 2
    client.post(url, {**REGISTRATION, "username": "ｂｅａ", "email": "bea@example.org"})
    assert User.objects.filter(username="bea").exists()  # stored as normalised


@pytest.mark.django_db
def test_missing_csrf_token_is_refused_and_nothing_stored():
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("accounts:register"), REGISTRATION)
    assert response.status_code == 403
    assert not User.objects.filter(username="dr.müller").exists()


@pytest.mark.django_db
def test_provider_remote_user_search_matches_nobody_for_a_text_no_user_can_hold(client, make_user):
    make_user("remote_user", "authorized", username="alice")
    client.force_login(make_user("service_provider", "authorized", username="prov"))
    assert b"alice" in client.get(reverse("accounts:remote_users"), {"q": "ali"}).content
    for q in ("\x00zzzz", "zz\x00zz"):  # SQLite's LIKE stops at the NUL: the first listed everyone
        page = client.get(reverse("accounts:remote_users"), {"q": q})
        assert page.status_code == 200 and b"alice" not in page.content, q


@pytest.mark.django_db
def test_admin_list_search_filter_and_self_protection(client, admin_user, make_user):
    make_user("remote_user", "pending", username="alice", organisation="North Clinic")
    make_user("remote_user", "authorized", username="bob", organisation="South Clinic")
    client.force_login(admin_user)
    page = client.get(reverse("accounts:user_list"), {"q": "north"})
    assert b"alice" in page.content and b"bob" not in page.content
    page = client.get(reverse("accounts:user_list"), {"status": "authorized", "role": "remote_user"})
    assert b"bob" in page.content and b"alice" not in page.content
    assert b"alice" in client.get(reverse("accounts:user_list")).content  # no filter: everyone
    for bad in ({"status": "pending", "q": "ali\x00"}, {"status": "pending", "q": "a" * 101}, {"role": "bogus"}):
        page = client.get(reverse("accounts:user_list"), bad)  # used to drop every filter and list everyone
        assert page.status_code == 200 and b"alice" not in page.content and b"bob" not in page.content, bad
        assert b"No user matches it." in page.content
    response = client.post(reverse("accounts:user_set_status", args=[admin_user.pk, "revoked"]), follow=True)
    assert b"own account" in response.content
    admin_user.refresh_from_db()
    assert admin_user.status == Status.AUTHORIZED
    assert client.get(reverse("accounts:user_set_status", args=[admin_user.pk, "revoked"])).status_code == 405



@pytest.mark.django_db
def test_changing_a_status_returns_only_to_a_page_of_this_site(client, admin_user, make_user):
    user = make_user("remote_user", "pending", username="carol")
    client.force_login(admin_user)
    url = reverse("accounts:user_set_status", args=[user.pk, "authorized"])
    for target in ("https://evil.example/phish", "//evil.example", "javascript:alert(1)"):
        assert client.post(url, {"next": target})["Location"] == reverse("accounts:user_list")
    back = reverse("accounts:user_list") + "?status=pending"
    assert client.post(url, {"next": back})["Location"] == back


@pytest.mark.django_db
@pytest.mark.parametrize("role, landing", [("service_provider", "dashboard"), ("admin", "accounts:user_list")])
def test_staff_log_in_through_the_same_page_and_land_on_their_dashboard(client, make_user, role, landing):
    user = make_user(role)
    response = _login(client, user.username, PASSWORD)
    assert response.redirect_chain[-1][0] == reverse(landing)


@pytest.mark.django_db
def test_password_change(client, remote):
    client.force_login(remote)
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": "Another-Good-Pass-77", "new_password2": "Another-Good-Pass-77"},
        follow=True,
    )
    assert b"password was changed" in response.content
    remote.refresh_from_db()
    assert remote.check_password("Another-Good-Pass-77")


@pytest.mark.django_db
def test_api_token_respects_status(client, pending, remote):
    url = reverse("api_token")
    refused = client.post(url, {"username": pending.username, "password": PASSWORD})
    assert refused.status_code == 403 and "awaiting authorization" in refused.json()["error"]["message"]
    wrong = client.post(url, {"username": remote.username, "password": "nope"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_credentials"
    token = client.post(url, {"username": remote.username, "password": PASSWORD}).json()["token"]
    from django.test import Client

    me = Client().get(reverse("api_me"), HTTP_AUTHORIZATION=f"Token {token}")
    assert me.status_code == 200 and me.json()["username"] == remote.username


@pytest.mark.django_db
def test_a_json_body_too_deep_or_with_a_lone_surrogate_is_a_400_on_every_api(client, provider):
    """Both are valid JSON to the parser, but one overflows Python's recursion and the other
    cannot be echoed back in an error: refused at the parser, nothing stored."""
    from training.models import Experiment

    bodies = {"nested too deeply": "[" * 100_000,
              "lone surrogate": '{"name": "n", "dataset": 1, "model_kind": "\\udc80"}'}
    for name, body in bodies.items():
        for url, who in ((reverse("api_token"), None), (reverse("api_training_experiments"), provider)):
            if who:
                client.force_login(who)
            response = client.post(url, body, content_type="application/json")
            assert response.status_code == 400, (url, name)
            assert response.json()["error"]["code"] == "parse_error" and name in response.json()["error"]["message"]
    assert not Experiment.objects.exists()
    # a surrogate pair is text (an emoji), not refused
    ok = client.post(reverse("api_token"), '{"username": "\\ud83d\\ude00", "password": "x"}', content_type="application/json")
    assert ok.status_code == 400 and ok.json()["error"]["code"] == "invalid_credentials"


@pytest.mark.django_db
def test_demo_accounts_command_prints_passwords_once(capsys):
    from django.core.management import call_command

    call_command("create_demo_accounts")
    first = capsys.readouterr().out
    assert User.objects.filter(username__in=["provider", "admin", "clinician"], is_active=True).count() == 3
    # the clinician's authorization is in the audit log, by the demo admin
    events = AuthorizationEvent.objects.filter(user__username="clinician").order_by("pk")
    assert [(e.action, e.to_status, getattr(e.actor, "username", None)) for e in events] == [
        ("register", "pending", None), ("authorize", "authorized", "admin")]
    call_command("create_demo_accounts")
    second = capsys.readouterr().out
    assert "unchanged" in second and "unchanged" not in first


@pytest.mark.django_db
def test_unknown_page_gets_the_friendly_404(client, remote):
    client.force_login(remote)
    response = client.get("/no/such/page/")
    assert response.status_code == 404 and b"could not find that page" in response.content


def test_server_error_page_is_standalone(rf):
    from fedhealth.views import server_error

    response = server_error(rf.get("/"))
    assert response.status_code == 500 and b"Something went wrong" in response.content


def test_api_errors_outside_drf_keep_the_api_envelope(client, rf):
    from fedhealth.views import server_error

    response = server_error(rf.get("/api/predictions/"))
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"]["code"] == "server_error"
    response = client.get("/api/no-such-endpoint/")
    assert response.status_code == 404 and response.json()["error"] == {
        "status": 404, "code": "not_found", "message": "There is no API endpoint or object at this address.",
        "fields": {}}
    assert b"could not find that page" in client.get("/no/such/page/").content


@pytest.mark.parametrize("parts, shown", [
    (("", "Springfield", "Utopia"), "Springfield, Utopia"),
    (("1 Main St", "", "Utopia"), "1 Main St, Utopia"),
    (("1 Main St", "Springfield", "Utopia"), "1 Main St, Springfield, Utopia"),
    (("", "", ""), ""),
])
def test_address_joins_only_the_parts_given(parts, shown):
    address, city, country = parts
    assert User(address=address, city=city, country=country).full_address == shown


def test_user_list_address_has_no_stray_comma(client, admin_user, make_user):
    make_user(username="nostreet", address="", city="Springfield", country="Utopia")
    client.force_login(admin_user)
    page = client.get(reverse("accounts:user_list")).content.decode()
    assert "<td>Springfield, Utopia</td>" in page and ", Springfield" not in page


def test_provider_top_bar_has_few_entries_and_still_reaches_every_page(client, provider):
    from accounts.context_processors import navigation

    client.force_login(provider)
    request = client.get(reverse("dashboard")).wsgi_request
    nav = navigation(request)["nav"]
    assert len(nav) <= 8  # one line at 1280 px
    urls = [c["url"] for item in nav for c in (item["children"] or [item])]
    for name in ("dashboard", "training:dataset_list", "training:experiment_list", "training:accuracy_results",
                 "training:accuracy_chart", "poisoning:prediction_list", "poisoning:ratio_chart", "poisoning:ratio_results",
                 "poisoning:detector_list", "ledger:block_list", "accounts:remote_users"):
        assert reverse(name) in urls, name
    page = client.get(reverse("training:accuracy_chart")).content.decode()
    assert "<details><summary class=\"active\">Results</summary>" in page  # the menu holding the current page is marked
    assert f'<a href="{reverse("training:accuracy_chart")}" aria-current="page"' in page
    assert f'<a href="{reverse("training:accuracy_results")}">' in page  # its address starts the chart's: not marked
    # a page under an entry (a form, a detail page) marks that entry, without calling it the current page
    for name, args, entry in (("training:dataset_upload", [], "training:dataset_list"),
                              ("ledger:verify", [], "ledger:block_list")):
        page = client.get(reverse(name, args=args)).content.decode()
        assert f'<a href="{reverse(entry)}" class="active">' in page, name
        assert page.count('class="active"') == 1 and 'aria-current="page"' not in page, name
