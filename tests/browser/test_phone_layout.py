"""The pages at phone width (390 x 844): short values stay whole, wide tables say that they
scroll and keep their key column in view, and very long column names do not widen a table."""

import pytest

from ledger import services as ledger_services
from tests.support import PASSWORD, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}

# The words (runs without spaces or hyphens, up to 16 characters) of the .facts values that the
# browser laid out over more than one line.
SPLIT_WORDS = """() => {
  const split = [];
  for (const dd of document.querySelectorAll(".facts dd")) {
    const walker = document.createTreeWalker(dd, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.textContent.matchAll(/(?<![^\\s\\-])[^\\s\\-]{2,16}(?![^\\s\\-])/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (tops.size > 1) split.push(m[0]);
      }
    }
  }
  return split;
}"""


def phone_page(new_page, user):
    page = new_page()
    page.set_viewport_size(PHONE)
    login(page, user.username, PASSWORD)
    return page


def test_short_values_in_fact_lists_are_not_split_mid_word_at_phone_width(new_page, shot, make_user):
    ledger_services.ledger_init(authorities=3)
    ledger_services.ledger_append(entries=[("global_model", {"experiment": "e1", "round": 1, "model_hash": "ab" * 32})])
    page = phone_page(new_page, make_user("service_provider"))
    page.goto("/ledger/blocks/0/")
    shot(page, "block-at-390")
    assert page.evaluate(SPLIT_WORDS) == []
    # the hashes still wrap inside the page instead of widening it
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def lightest_at_right_edge(page, wrap) -> int:
    """The lightest pixel (0-255, the darkest channel) of a 2 px strip just inside the right
    border of ``wrap``, over the middle half of its height: 255 where the background shows white."""
    import io

    from PIL import Image, ImageChops

    box = wrap.bounding_box()
    clip = {"x": box["x"] + box["width"] - 4, "y": box["y"] + box["height"] / 4, "width": 2, "height": box["height"] / 2}
    red, green, blue = Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB").split()
    return ImageChops.darker(red, ImageChops.darker(green, blue)).getextrema()[1]


def key_column_in_view(page, header: str) -> bool:
    wrap = page.locator(".table-wrap").first
    th = wrap.locator("th", has_text=header).first
    return th.bounding_box()["x"] + th.bounding_box()["width"] <= wrap.bounding_box()["x"] + wrap.bounding_box()["width"]


def test_wide_tables_show_that_they_scroll_and_keep_their_key_column_in_view_at_phone_width(new_page, shot, make_user):
    from accounts.services import user_set_status
    from poisoning.models import Prediction
    from poisoning.services import detector_train
    from training.services import dataset_create_builtin, experiment_create

    admin = make_user("admin")
    clinician = make_user("remote_user", "pending", full_name="Ana Lúcia Pereira", organisation="Hospital de São João")
    ds = dataset_create_builtin(name="biopsy")
    experiment_create(name="Biopsy under sign flipping", dataset=ds, n_hospitals=4, rounds_=1, launch=False)
    detector = detector_train(dataset=ds, seed=1)
    for probability in (0.91, 0.12):
        Prediction.objects.create(user=clinician, detector=detector, dataset_name=ds.name, inputs={},
                                  status="Poisoned" if probability > 0.5 else "Benign", probability=probability,
                                  reasons=["clump_thickness 18 is outside the range seen in training"])

    page = phone_page(new_page, admin)
    page.goto("/accounts/users/")
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("w => w.scrollWidth > w.clientWidth")  # the table is wider than the phone
    shot(page, "users-at-390")
    assert key_column_in_view(page, "Action")  # Authorize / Revoke
    assert lightest_at_right_edge(page, wrap) < 245  # a shadow at the right edge: more columns that way
    wrap.evaluate("w => { w.scrollLeft = w.scrollWidth; }")
    assert lightest_at_right_edge(page, wrap) > 250  # scrolled to the end: no shadow left there
    shot(page, "users-scrolled-to-the-end")

    provider = phone_page(new_page, make_user("service_provider"))
    provider.goto("/training/experiments/")
    shot(provider, "experiments-at-390")
    assert key_column_in_view(provider, "Status") and key_column_in_view(provider, "Accuracy")

    user_set_status(user=clinician, status="authorized", actor=admin)
    remote = phone_page(new_page, clinician)
    remote.goto("/poisoning/my-predictions/")
    shot(remote, "my-predictions-at-390")
    assert key_column_in_view(remote, "P(poisoned)")
