"""The ledger on the real database: tampering by raw SQL is detected and located, concurrent
appenders from several processes leave one valid chain, proofs, seals, model authenticity."""

from __future__ import annotations

import io
import json
import multiprocessing
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from fedcore import chain
from fedcore.signing import Identity
from ledger import selectors, services
from ledger.models import Authority, Block, Entry
from ledger.tests.appender import append_many


def fill(blocks=3, per_block=5):
    for b in range(blocks):
        services.ledger_append(entries=[("update", {"experiment": "e1", "round": b, "hospital": h, "x": 0.5 + h})
                                        for h in range(per_block)])


def sql(statement, params=()):
    with connection.cursor() as cur:
        cur.execute(statement, params)


def block_id(height):
    return Block.objects.get(height=height).pk


@pytest.mark.django_db
def test_append_seals_in_turn_and_is_idempotent():
    services.ledger_init(authorities=3)
    fill(3, 5)
    assert list(Block.objects.order_by("height").values_list("height", flat=True)) == [0, 1, 2]
    fps = list(Authority.objects.order_by("id").values_list("fingerprint", flat=True))
    assert [Block.objects.get(height=h).authority for h in range(3)] == fps[:3]
    services.ledger_append(entries=[("update", {"experiment": "e1", "round": 0, "hospital": 0, "x": 0.5})])
    assert Entry.objects.count() == 15 and Block.objects.count() == 3  # already on chain: stored once
    big = services.ledger_append(entries=[("n", {"i": i}) for i in range(250)])
    assert [b.entry_count for b in big] == [100, 100, 50]
    report = selectors.ledger_verify()
    assert report.intact and report.height == 5 and report.entries == 265


@pytest.mark.django_db
@pytest.mark.parametrize("tamper, problem, where", [
    (lambda: sql("UPDATE ledger_entry SET payload = REPLACE(payload, '0.5', '0.9') WHERE round_no = 1 AND hospital = 0"),
     "payload modified", (1, 0)),
    (lambda: sql("DELETE FROM ledger_entry WHERE round_no = 2 AND hospital = 3"), "entry deleted", (2, 3)),
    (lambda: sql("INSERT INTO ledger_entry (block_id, `index`, kind, payload, payload_hash, experiment) VALUES (%s, 5, 'update', '{}', %s, '')"
                 if connection.vendor == "mysql" else
                 "INSERT INTO ledger_entry (block_id, \"index\", kind, payload, payload_hash, experiment) VALUES (%s, 5, 'update', '{}', %s, '')",
                 (block_id(1), chain.entry_hash("update", {}))), "payload modified|entry inserted", (1, None)),
    (lambda: sql("UPDATE ledger_entry SET payload_hash = %s WHERE round_no = 0 AND hospital = 1", ("0" * 64,)),
     "payload modified", (0, 1)),
    (lambda: sql("UPDATE ledger_block SET prev_hash = %s WHERE height = 2", ("f" * 64,)), "link broken", (2, None)),
    (lambda: sql("UPDATE ledger_block SET signature = %s WHERE height = 1", ("00" * 64,)), "bad seal", (1, None)),
    (lambda: sql("UPDATE ledger_block SET signature = UPPER(signature) WHERE height = 1"), "bad seal", (1, None)),
    (lambda: sql("UPDATE ledger_block SET timestamp = '2020-01-01T00:00:00.000+00:00' WHERE height = 0"), "header modified", (0, None)),
    (lambda: [sql("DELETE FROM ledger_entry WHERE block_id = %s", (block_id(1),)),
              sql("DELETE FROM ledger_block WHERE height = 1")], "missing or inserted", (2, None)),
    (lambda: [sql("DELETE FROM ledger_entry WHERE block_id = %s", (block_id(2),)),
              sql("DELETE FROM ledger_block WHERE height = 2")], "deleted from the end", (None, None)),
    # the lookup columns are not hashed, but a lookup must never find an entry under another round
    (lambda: sql("UPDATE ledger_entry SET round_no = 7 WHERE round_no = 2 AND hospital = 4"), "differs from its sealed", (2, 4)),
    (lambda: sql("UPDATE ledger_entry SET experiment = 'e2' WHERE round_no = 1 AND hospital = 2"), "differs from its sealed", (1, 2)),
    (lambda: sql("UPDATE ledger_entry SET hospital = NULL WHERE round_no = 0 AND hospital = 3"), "differs from its sealed", (0, 3)),
])
def test_raw_sql_tampering_is_detected_and_located(tamper, problem, where):
    services.ledger_init(authorities=3)
    fill()
    assert selectors.ledger_verify().intact
    tamper()
    report = selectors.ledger_verify()
    assert not report.intact
    assert any(p in report.problem for p in problem.split("|")), report.summary()
    assert report.block == where[0]
    if where[1] is not None:
        assert report.entry == where[1]


@pytest.mark.django_db
def test_reordered_entries_are_detected():
    services.ledger_init(authorities=3)
    fill()
    a, b = Entry.objects.filter(block__height=1).order_by("index")[:2]
    col = "`index`" if connection.vendor == "mysql" else '"index"'
    sql(f"UPDATE ledger_entry SET {col} = 999 WHERE id = %s", (a.pk,))
    sql(f"UPDATE ledger_entry SET {col} = 0 WHERE id = %s", (b.pk,))
    sql(f"UPDATE ledger_entry SET {col} = 1 WHERE id = %s", (a.pk,))
    report = selectors.ledger_verify()
    assert not report.intact and report.block == 1 and "Merkle root" in report.problem


@pytest.mark.django_db
def test_digest_detects_a_rewrite_of_the_whole_chain(tmp_path):
    services.ledger_init(authorities=3)
    fill()
    digest = tmp_path / "d.json"
    call_command("verify_ledger", "--export-digest", str(digest))
    # an attacker with the authorities' keys rebuilds every block from scratch
    Entry.objects.all().delete()
    Block.objects.all().delete()
    sql("UPDATE ledger_chainhead SET height = -1, block_hash = %s", ("0" * 64,))
    services.ledger_append(entries=[("update", {"experiment": "e1", "round": 0, "hospital": 0, "x": 99.0})])
    fill()
    assert selectors.ledger_verify().intact  # internally consistent...
    with pytest.raises(CommandError, match="rewritten|truncated"):
        call_command("verify_ledger", "--digest", str(digest))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="not a FedHealth ledger digest"):
        call_command("verify_ledger", "--digest", str(bad))


@pytest.mark.django_db
def test_inclusion_proofs_verify_and_a_wrong_proof_fails():
    services.ledger_init(authorities=3)
    services.ledger_append(entries=[("n", {"i": i}) for i in range(13)])
    for entry in Entry.objects.all():
        p = selectors.inclusion_proof(entry)
        assert p["valid"]
        assert chain.verify_proof(entry.payload_hash, p["proof"], p["block"]["header"]["merkle_root"])
        assert chain.sha256_hex(chain.canonical_json(p["block"]["header"])) == p["block"]["block_hash"]
    e = Entry.objects.first()
    p = selectors.inclusion_proof(e)
    wrong = [[side, "00" * 32] for side, _ in p["proof"]]
    assert not chain.verify_proof(e.payload_hash, wrong, p["block"]["header"]["merkle_root"])
    assert not chain.verify_proof(Entry.objects.last().payload_hash, p["proof"], p["block"]["header"]["merkle_root"])


@pytest.mark.django_db
def test_seal_by_non_authority_or_out_of_turn_is_rejected():
    services.ledger_init(authorities=3)
    fill(2, 2)
    stranger = Identity.generate()
    b = Block.objects.get(height=1)
    header = chain.Header(b.height, b.prev_hash, b.merkle_root, b.timestamp, stranger.fingerprint, b.entry_count)
    Block.objects.filter(pk=b.pk).update(authority=stranger.fingerprint, signature=chain.seal(stranger, header),
                                         block_hash=header.block_hash())
    report = selectors.ledger_verify()
    assert not report.intact and report.block == 1 and "not an authority" in report.problem


def reseal(settings, height: int, authority: Authority) -> None:
    """The block at ``height`` sealed again, validly, by ``authority``'s own key."""
    ident = Identity.load_encrypted(authority.private_pem_encrypted, settings.LEDGER_AUTHORITY_PASSPHRASE)
    b = Block.objects.get(height=height)
    header = chain.Header(b.height, b.prev_hash, b.merkle_root, b.timestamp, authority.fingerprint, b.entry_count)
    Block.objects.filter(pk=b.pk).update(authority=authority.fingerprint, signature=chain.seal(ident, header),
                                         block_hash=header.block_hash())


@pytest.mark.django_db
def test_out_of_turn_authority_is_rejected(settings):
    auths = services.ledger_init(authorities=3)
    fill(2, 2)
    reseal(settings, 1, auths[2])  # block 1 belongs to authority 1
    report = selectors.ledger_verify()
    assert not report.intact and "out of turn" in report.problem


@pytest.mark.django_db
def test_authorities_change_by_majority_vote_on_chain(settings):
    a1, a2, a3 = services.ledger_init(authorities=3)
    newcomer = Identity.generate()
    new = Authority.objects.create(name="authority-4", public_pem=newcomer.public_pem, fingerprint=newcomer.fingerprint,
                                   private_pem_encrypted=newcomer.export_encrypted(settings.LEDGER_AUTHORITY_PASSPHRASE),
                                   active=False)
    assert services.ledger_vote(voter=a1, action="add", subject_pem=new.public_pem) is None
    assert services.ledger_vote(voter=a2, action="add", subject_pem=new.public_pem) == "added"
    fill(4, 1)
    assert Block.objects.filter(authority=new.fingerprint).exists()
    assert selectors.ledger_verify().intact
    new.refresh_from_db()
    assert new.active
    with pytest.raises(services.LedgerError):
        services.ledger_vote(voter=Authority(name="x", active=False), action="add", subject_pem="")


@pytest.mark.django_db
def test_model_authenticity_check():
    services.ledger_init(authorities=3)
    services.ledger_append(entries=[("global_model", {"experiment": "7", "round": 3, "model_hash": "ab" * 32})])
    assert selectors.verify_model_hash(experiment="7", round_no=3, model_hash="ab" * 32)[0]
    ok, why = selectors.verify_model_hash(experiment="7", round_no=3, model_hash="cd" * 32)
    assert not ok and "do not use" in why
    assert not selectors.verify_model_hash(experiment="7", round_no=4, model_hash="ab" * 32)[0]


@pytest.mark.django_db
def test_a_model_entry_moved_to_another_round_or_damaged_does_not_vouch_for_a_model():
    """The lookup columns only find the entry: the hash comes from the sealed payload, which must
    be sound and name the very experiment and round asked about."""
    services.ledger_init(authorities=3)
    services.ledger_append(entries=[("global_model", {"experiment": "7", "round": 3, "model_hash": "ab" * 32}),
                                    ("global_model", {"experiment": "8", "round": 3, "model_hash": "ee" * 32})])
    poisoned = Entry.objects.get(experiment="8")
    Entry.objects.filter(experiment="7").update(experiment="moved")
    Entry.objects.filter(pk=poisoned.pk).update(experiment="7")  # experiment 8's model passed off as 7's
    ok, why = selectors.verify_model_hash(experiment="7", round_no=3, model_hash="ee" * 32)
    assert not ok and "damaged" in why
    assert not selectors.ledger_verify().intact
    for payload in ('{"experiment":"7","round":3', '{"experiment":"7","model_hash":NaN,"round":3}',
                    '{"experiment":"7","model_hash":"' + "ff" * 32 + '","round":3}', "[1]"):
        Entry.objects.filter(pk=poisoned.pk).update(payload=payload)
        ok, why = selectors.verify_model_hash(experiment="7", round_no=3, model_hash="ff" * 32)
        assert not ok and "damaged" in why, payload


@pytest.mark.django_db(transaction=True)
def test_concurrent_appenders_from_several_processes_leave_one_valid_chain():
    from tests.support import worker_env

    services.ledger_init(authorities=3)
    env = {k: v for k, v in worker_env().items() if k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "FEDHEALTH_VAR_DIR")}
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=append_many, args=(w, 15, env)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    heights = list(Block.objects.order_by("height").values_list("height", flat=True))
    assert heights == list(range(60))  # no gap, no fork, no reuse
    assert Entry.objects.filter(kind="load").count() == 180
    report = selectors.ledger_verify()
    assert report.intact, report.summary()
    assert json.loads(Entry.objects.first().payload)


@pytest.mark.django_db
def test_a_majority_vote_removes_an_authority_whose_later_seals_are_then_refused(settings):
    a1, a2, a3 = services.ledger_init(authorities=3)
    fill(1, 1)  # block 0
    assert services.ledger_vote(voter=a1, action="remove", subject_pem=a3.public_pem) is None  # block 1
    a3.refresh_from_db()
    assert a3.active
    assert services.ledger_vote(voter=a2, action="remove", subject_pem=a3.public_pem) == "removed"  # block 2
    a3.refresh_from_db()
    assert not a3.active
    with pytest.raises(services.LedgerError, match="not an active authority"):
        services.ledger_vote(voter=a3, action="remove", subject_pem=a1.public_pem)
    for i in range(4):  # blocks 3-6, sealed in turn by the two remaining authorities
        services.ledger_append(entries=[("note", {"after_removal": i})])
    sealers = list(Block.objects.filter(height__gte=3).order_by("height").values_list("authority", flat=True))
    assert sealers == [a2.fingerprint, a1.fingerprint, a2.fingerprint, a1.fingerprint]
    assert selectors.ledger_verify().intact
    # the removed authority still holds its key: a block it seals is refused
    reseal(settings, 5, a3)
    report = selectors.ledger_verify()
    assert not report.intact and report.block == 5 and "not an authority" in report.problem


def _candidate(settings, name):
    ident = Identity.generate()
    return Authority.objects.create(name=name, public_pem=ident.public_pem, fingerprint=ident.fingerprint,
                                    private_pem_encrypted=ident.export_encrypted(settings.LEDGER_AUTHORITY_PASSPHRASE),
                                    active=False)


@pytest.mark.django_db
def test_votes_of_an_earlier_change_do_not_count_again_after_it_took_effect(settings):
    a1, a2, a3 = services.ledger_init(authorities=3)
    a4 = _candidate(settings, "authority-4")
    assert services.ledger_vote(voter=a1, action="add", subject_pem=a4.public_pem) is None
    assert services.ledger_vote(voter=a2, action="add", subject_pem=a4.public_pem) == "added"
    a4.refresh_from_db()
    assert a4.active
    assert services.ledger_vote(voter=a1, action="remove", subject_pem=a4.public_pem) is None
    assert services.ledger_vote(voter=a2, action="remove", subject_pem=a4.public_pem) is None  # 2 of 4: no majority
    assert services.ledger_vote(voter=a3, action="remove", subject_pem=a4.public_pem) == "removed"
    a4.refresh_from_db()
    assert not a4.active
    # one new vote is one vote of three: the two add votes before the removal are spent
    assert services.ledger_vote(voter=a1, action="add", subject_pem=a4.public_pem) is None
    a4.refresh_from_db()
    assert not a4.active
    fill(4, 1)
    report = selectors.ledger_verify()
    assert report.intact, report.summary()
    assert not Block.objects.filter(height__gt=5, authority=a4.fingerprint).exists()


@pytest.mark.django_db
def test_an_authority_added_again_seals_in_the_turn_the_chain_gives_it(settings):
    a1, a2, a3 = services.ledger_init(authorities=3)
    a4, a5 = _candidate(settings, "authority-4"), _candidate(settings, "authority-5")
    for voter in (a1, a2):  # 2 of 3
        services.ledger_vote(voter=voter, action="add", subject_pem=a4.public_pem)
    for voter in (a1, a2, a3):  # 3 of 4
        services.ledger_vote(voter=voter, action="add", subject_pem=a5.public_pem)
    for voter in (a1, a2, a3):  # 3 of 5
        services.ledger_vote(voter=voter, action="remove", subject_pem=a4.public_pem)
    for voter in (a1, a2, a3):  # 3 of 4: a4 comes back, now after a5
        services.ledger_vote(voter=voter, action="add", subject_pem=a4.public_pem)
    assert set(Authority.objects.filter(active=True).values_list("name", flat=True)) == {
        "authority-1", "authority-2", "authority-3", "authority-4", "authority-5"}
    fill(5, 1)
    report = selectors.ledger_verify()
    assert report.intact, report.summary()
    last_five = Block.objects.order_by("-height")[:5].values_list("authority", flat=True)
    assert set(last_five) == {a.fingerprint for a in (a1, a2, a3, a4, a5)}


@pytest.mark.django_db
def test_api_query_numbers_are_plain_whole_numbers_and_an_early_digest_checks_out(client, provider):
    services.ledger_init(authorities=3)
    client.force_login(provider)
    genesis = client.get(reverse("api_ledger_verify")).json()
    assert genesis["intact"] and genesis["height"] == -1
    fill()
    grown = client.get(reverse("api_ledger_verify"), {"height": -1, "block_hash": genesis["digest"]}).json()
    assert grown["intact"] and grown["height"] == 2
    blocks = client.get(reverse("api_ledger_blocks"), {"round": "1"}).json()
    assert blocks["count"] == 1
    for url, params, name in ((reverse("api_ledger_blocks"), {"round": "1_0"}, "round"),
                              (reverse("api_ledger_blocks"), {"hospital": "1.0"}, "hospital"),
                              (reverse("api_ledger_verify"), {"height": "\u0661", "block_hash": "0" * 64}, "height"),
                              (reverse("api_ledger_model_check"), {"experiment": "e1", "round": "1_5", "model_hash": "a"}, "round"),
                              (reverse("api_ledger_model_check"), {"experiment": "e1", "model_hash": "a"}, "round")):
        r = client.get(url, params)
        assert r.status_code == 400 and r.json()["error"]["fields"] == {name: ["must be a whole number"]}, (url, params)


@pytest.mark.django_db
def test_the_authority_command_registers_a_candidate_and_votes_it_in_and_out():
    services.ledger_init(authorities=3)
    out = io.StringIO()
    call_command("ledger_authorities", "register", "hospital-board", stdout=out)
    assert re.search(r"^hospital-board +[0-9a-f]{16}  candidate  not sealing$", out.getvalue(), re.M)
    out = io.StringIO()
    call_command("ledger_authorities", "vote", "authority-1", "add", "hospital-board", stdout=out)
    assert "the change needs more votes" in out.getvalue()
    out = io.StringIO()
    call_command("ledger_authorities", "vote", "authority-2", "add", "hospital-board", stdout=out)
    assert "hospital-board now seals blocks" in out.getvalue()
    assert re.search(r"^hospital-board +[0-9a-f]{16}  voted +sealing$", out.getvalue(), re.M)
    fill(4, 1)  # the newcomer takes its turns, and the chain stays valid
    board = Authority.objects.get(name="hospital-board")
    assert Block.objects.filter(authority=board.fingerprint).exists() and selectors.ledger_verify().intact
    for args, message in ((("register", "hospital-board"), "exists already"), (("register", " "), "a name of 1 to 100"),
                          (("vote", "nobody", "add", "authority-1"), "no authority is named 'nobody' (known: authority-1"),
                          (("vote", "authority-1", "keep", "authority-2"), "invalid choice")):
        with pytest.raises(CommandError, match=re.escape(message)):
            call_command("ledger_authorities", *args, stdout=io.StringIO())
    assert Authority.objects.count() == 4  # nothing stored by a refused command


@pytest.mark.django_db
def test_the_verify_api_refuses_a_digest_height_below_minus_one_like_the_digest_file(client, provider):
    services.ledger_init(authorities=3)
    fill(blocks=1)
    client.force_login(provider)
    for height in (-5, -2):
        r = client.get(reverse("api_ledger_verify"), {"height": height, "block_hash": "0" * 64})
        assert r.status_code == 400, r.json()
        assert r.json()["error"]["fields"] == {"height": [selectors.DIGEST_HEIGHT_MESSAGE]}
        with pytest.raises(ValueError, match="not a FedHealth ledger digest"):
            selectors.parse_digest(json.dumps({"format": "fedhealth-ledger-digest/1", "height": height, "block_hash": "x"}))
    head = client.get(reverse("api_ledger_verify")).json()
    r = client.get(reverse("api_ledger_verify"), {"height": head["height"], "block_hash": head["digest"]})
    assert r.status_code == 200 and r.json()["intact"]


@pytest.mark.django_db
def test_a_block_appended_while_the_chain_is_read_is_no_tampering(monkeypatch):
    services.ledger_init(authorities=3)
    fill()
    read = selectors.stored_chain

    def read_then_a_round_appends():
        blocks = read()
        services.ledger_append(entries=[("update", {"experiment": "e1", "round": 9, "hospital": 0, "x": 1.0})])
        return blocks

    monkeypatch.setattr(selectors, "stored_chain", read_then_a_round_appends)
    report = selectors.ledger_verify()
    assert report.intact and report.height == 2, report.summary()
