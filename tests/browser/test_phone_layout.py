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
