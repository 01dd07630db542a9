"""The ledger explorer's pages as the provider sees them."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ledger import services
from ledger.models import Authority, Block, Entry


@pytest.fixture
def ledger(db):
    services.ledger_init(authorities=3)
    services.ledger_append(entries=[("global_model", {"experiment": "e1", "round": 1, "model_hash": "ab" * 32})])
    return Block.objects.get(height=0)


def test_the_block_page_shows_the_header_and_the_authority_by_name(client, provider, ledger):
    client.force_login(provider)
    page = client.get(reverse("ledger:block_detail", args=[0])).content.decode()
    name = Authority.objects.get(fingerprint=ledger.authority).name
    assert "<title>Block 0" in page
    for value in (ledger.block_hash, ledger.merkle_root, ledger.signature, ledger.sealed_at, name):
        assert value in page
    assert "Global model" in page
    listing = client.get(reverse("ledger:block_list")).content.decode()
    assert name in listing


def test_the_block_list_shows_the_recent_verification_and_recomputes_it_when_a_block_is_added(client, provider, ledger):
    from unittest import mock

    from fedcore import chain

    client.force_login(provider)
    with mock.patch.object(chain, "verify_chain", wraps=chain.verify_chain) as verify:
        for page in ("1", "2", "1"):  # browsing the list does not re-verify the whole chain each time
            listing = client.get(reverse("ledger:block_list"), {"page": page}).content.decode()
        assert verify.call_count == 1
        assert "Intact</span> up to height 0" in listing and "verified" in listing
        services.ledger_append(entries=[("global_model", {"experiment": "e1", "round": 2, "model_hash": "cd" * 32})])
        listing = client.get(reverse("ledger:block_list")).content.decode()
        assert verify.call_count == 2 and "Intact</span> up to height 1" in listing


def test_the_entry_page_names_the_kind_in_words(client, provider, ledger):
    client.force_login(provider)
    entry = Entry.objects.get(block=ledger)
    page = client.get(reverse("ledger:entry_detail", args=[entry.pk])).content.decode()
    assert "Global model entry 0 of block 0" in page and "Global_model" not in page


@pytest.mark.parametrize("content", [
    b'{"format":"fedhealth-ledger-digest/1","height":Infinity,"block_hash":"x"}',
    b'{"format":"fedhealth-ledger-digest/1","height":1e400,"block_hash":"x"}',
    b'{"format":"fedhealth-ledger-digest/1","height":3.7,"block_hash":"x"}',
    b'{"format":"fedhealth-ledger-digest/1","height":true,"block_hash":"x"}',
    b'{"format":"fedhealth-ledger-digest/1","height":0,"block_hash":7}',
    b'{"format":"fedhealth-ledger-digest/1","height":-5,"block_hash":"x"}',
    b"[" * 100_000,
])
def test_a_malformed_digest_is_refused_with_a_clear_error(client, provider, ledger, content):
    client.force_login(provider)
    r = client.post(reverse("ledger:verify"), {"digest": SimpleUploadedFile("d.json", content[:9_000])})
    assert r.status_code == 200 and "not a FedHealth ledger digest" in r.content.decode()


def test_verifying_against_a_digest_without_choosing_a_file_says_so(client, provider, ledger):
    client.force_login(provider)
    r = client.post(reverse("ledger:verify"))
    assert r.status_code == 200 and "choose the digest file" in r.content.decode()


def test_a_digest_saved_with_a_byte_order_mark_is_verified(client, provider, ledger):
    client.force_login(provider)
    digest = client.get(reverse("ledger:digest")).content
    r = client.post(reverse("ledger:verify"), {"digest": SimpleUploadedFile("d.json", b"\xef\xbb\xbf" + digest)})
    page = r.content.decode()
    assert r.status_code == 200 and "not a FedHealth ledger digest" not in page
    assert "Checked against the exported digest of height 0" in page


def test_the_explorer_finds_a_round_and_a_round_that_is_not_a_whole_number_matches_no_block(client, provider, ledger):
    client.force_login(provider)
    found = client.get(reverse("ledger:block_list"), {"round": "1"})
    assert [b.height for b in found.context["page"].object_list] == [0]
    assert [b.height for b in client.get(reverse("ledger:block_list"), {"round": "7"}).context["page"].object_list] == []
    for params in ({"round": "abc"}, {"round": "1.0"}, {"round": "1_0"}, {"hospital": "x", "round": "1"}):
        page = client.get(reverse("ledger:block_list"), params)  # used to ignore the filter and list every block
        assert page.status_code == 200 and list(page.context["page"].object_list) == [], params
        assert "not a whole number, so no block matches" in page.content.decode()


@pytest.mark.parametrize("damage, problem", [
    ({"index": 9999}, "outside its block"),
    ({"payload": '{"experiment":"e1","round":1'}, "not valid JSON"),
    ({"payload": '{"a":NaN}'}, "not valid JSON"),
    ({"payload": '{"experiment":"e1","model_hash":"' + "cd" * 32 + '","round":1}'}, "does not hash"),
    ({"payload_hash": "zz" * 32}, "does not hash"),  # not hexadecimal: no Merkle path can be built either
])
def test_a_damaged_entry_is_shown_as_stored_and_its_proof_fails_with_the_reason(client, provider, ledger, damage, problem):
    entry = Entry.objects.get()
    Entry.objects.filter(pk=entry.pk).update(**damage)
    client.force_login(provider)
    page = client.get(reverse("ledger:entry_detail", args=[entry.pk]))
    assert page.status_code == 200 and "does not verify" in page.content.decode() and problem in page.content.decode()
    proof = client.get(reverse("api_ledger_proof", args=[entry.pk]))
    assert proof.status_code == 200
    assert proof.json()["valid"] is False and problem in proof.json()["problem"]


def _verify_against(client, digest: dict) -> str:
    import json

    r = client.post(reverse("ledger:verify"), {"digest": SimpleUploadedFile("d.json", json.dumps(digest).encode())})
    assert r.status_code == 200
    return r.content.decode()


def test_a_digest_of_a_rewritten_block_gives_the_verdict_once_and_counts_only_the_blocks_before_it(client, provider, ledger):
    import json

    services.ledger_append(entries=[("global_model", {"experiment": "e1", "round": 2, "model_hash": "cd" * 32})])
    client.force_login(provider)
    digest = json.loads(client.get(reverse("ledger:digest")).content)
    page = _verify_against(client, {**digest, "block_hash": "ee" * 32})
    assert page.count("chain rewritten") == 1 and "broken at" not in page and "First problem" not in page
    assert "Broken</span> at block 1: chain rewritten: this block differs from the exported digest" in page
    # block 1 differs from the digest, so only block 0 counts, and the count says it stops at the break
    assert "Block 0 (1 entry) passed every check before the problem was found." in page
    assert "entries verified" not in page


def test_a_digest_of_a_missing_height_names_no_block(client, provider, ledger):
    import json

    services.ledger_append(entries=[("global_model", {"experiment": "e1", "round": 2, "model_hash": "cd" * 32})])
    client.force_login(provider)
    digest = json.loads(client.get(reverse("ledger:digest")).content)
    page = _verify_against(client, {**digest, "height": 999})
    assert "Broken</span> — the exported digest&#x27;s height 999 is missing (chain truncated)" in page
    assert page.count("chain truncated") == 1 and "block 2" not in page and "(block" not in page
    assert "Blocks 0 to 1 (2 entries) passed every check before the problem was found." in page
    report = client.get(reverse("api_ledger_verify"), {"height": 999, "block_hash": digest["block_hash"]}).json()
    assert report["block"] is None and report["summary"] == "broken: the exported digest's height 999 is missing (chain truncated)"
