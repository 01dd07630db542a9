"""Accessibility of the form pages of every role, before and after a refused submission: every
control has a label, every aria-describedby names an element of the page (help text, error),
a field in error is described by its error and takes the focus, one <h1> per page, and a skip link."""

import pytest

from poisoning.services import detector_train
from tests.support import PASSWORD, login, submit
from training.services import dataset_create_builtin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# For each problem found, one line naming the element; an empty list when the page is fine.
AUDIT = """() => {
  const problems = [];
  const name = (el) => el.id || el.name || el.tagName;
  const controls = document.querySelectorAll("input:not([type=hidden]), select, textarea");
  for (const el of controls) {
    const labelled = [...el.labels].some((l) => l.textContent.trim()) || (el.getAttribute("aria-label") || "").trim()
      || (el.getAttribute("aria-labelledby") || "").split(/\\s+/).some((id) => document.getElementById(id));
    if (!labelled) problems.push(`no label: ${name(el)}`);
  }
  for (const el of document.querySelectorAll("[aria-describedby]")) {
    for (const id of el.getAttribute("aria-describedby").split(/\\s+/).filter(Boolean)) {
      if (!document.getElementById(id)) problems.push(`aria-describedby of ${name(el)} names a missing #${id}`);
    }
  }
  for (const el of document.querySelectorAll("[aria-invalid=true]")) {
    const ids = (el.getAttribute("aria-describedby") || "").split(/\\s+/);
    if (!ids.some((id) => document.getElementById(id)?.classList.contains("error"))) problems.push(`error not tied to ${name(el)}`);
  }
  for (const el of document.querySelectorAll("[role=progressbar]")) {
    if (!(el.getAttribute("aria-label") || el.getAttribute("aria-labelledby"))) problems.push("unnamed progress bar");
  }
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(`${h1} h1 elements`);
  if (!document.querySelector("a.skip-link[href='#content']") || !document.getElementById("content")) problems.push("no skip link");
  return problems;
}"""


def audit(page, url, button=None, fill=()):
    """The problems of ``url`` as loaded, then (if ``button``) after submitting ``fill`` with that button."""
    page.goto(url)
    problems = [f"{url}: {p}" for p in page.evaluate(AUDIT)]
    if button:
        page.evaluate("document.querySelectorAll('form').forEach((f) => { f.noValidate = true; })")
        for selector, value in fill:
            page.fill(selector, value)
        submit(page, button)
        assert page.locator("main [aria-invalid=true]").count(), f"{url}: the bad input was not refused"
        assert page.evaluate("document.activeElement.getAttribute('aria-invalid')") == "true", f"{url}: focus not on the field in error"
        problems += [f"{url} after submitting: {p}" for p in page.evaluate(AUDIT)]
    return problems


def test_form_pages_label_every_control_and_tie_errors_to_their_fields(new_page, make_user):
    provider = make_user("service_provider")
    remote = make_user("remote_user")
    detector_train(dataset=dataset_create_builtin(name="biopsy"), seed=1)
    problems = []

    page = new_page()
    problems += audit(page, "/accounts/login/")
    problems += audit(page, "/accounts/register/", "main form button[type=submit]", [("#id_password1", "short")])

    login(page, provider.username, PASSWORD)
    page.wait_for_url("**/dashboard/")
    problems += audit(page, "/training/experiments/new/", "main form button[type=submit]", [("#id_name", ""), ("#id_rounds", "0")])
    problems += audit(page, "/training/datasets/upload/", "main form button[type=submit]")
    problems += audit(page, "/training/datasets/synthetic/", "main form button[type=submit]", [("#id_n_rows", "5")])
    problems += audit(page, "/poisoning/detectors/", "main form button[type=submit]", [("#id_poison_fraction", "9")])
    for url in ("/dashboard/", "/poisoning/predictions/", "/ledger/", "/ledger/verify/", "/accounts/remote-users/"):
        problems += audit(page, url)

    page = new_page()
    login(page, remote.username, PASSWORD)
    page.wait_for_url("**/home/")
    problems += audit(page, "/poisoning/predict/", "#predict-form button[type=submit]", [("#id_value-clump_thickness", "999")])
    problems += audit(page, "/accounts/profile/", "main form.card button[type=submit]", [("#id_profile-email", "not-an-email")])
    problems += audit(page, "/accounts/profile/password/", "main form button[type=submit]")

    assert problems == []
