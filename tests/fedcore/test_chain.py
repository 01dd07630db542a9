import pytest

from fedcore import chain
from fedcore.signing import Identity


def test_canonical_json_is_stable_and_strict():
    assert chain.canonical_json({"b": 1, "a": [0.1, "é", None, True]}) == '{"a":[0.1,"é",null,true],"b":1}'.encode()
    for bad in ({"x": float("nan")}, {"x": float("inf")}, {1: "int key"}, {"x": object()}):
        with pytest.raises(chain.CanonicalError):
            chain.canonical_json(bad)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 33])
def test_every_leaf_has_a_valid_proof(n):
    leaves = [chain.entry_hash("k", {"i": i}) for i in range(n)]
    root = chain.merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        proof = chain.merkle_proof(leaves, i)
        assert chain.verify_proof(leaf, proof, root)
        if n > 1:
            assert not chain.verify_proof(leaves[(i + 1) % n], proof, root)
    assert not chain.verify_proof(leaves[0], [["R", "zz"]], root)


def test_seal_and_votes():
    a, b, c = (Identity.from_seed(bytes([i])) for i in range(3))
    header = chain.Header(0, chain.GENESIS_PREV, chain.merkle_root([]), "t", a.fingerprint, 0)
    sig = chain.seal(a, header)
    assert chain.verify_seal(a.public_pem, header, sig) and not chain.verify_seal(b.public_pem, header, sig)
    auth = chain.AuthoritySet([a.public_pem, b.public_pem, c.public_pem])
    assert auth.in_turn(4) == b.public_pem
    d = Identity.generate()
    assert auth.apply_vote(a.fingerprint, "add", d.public_pem) is None
    assert auth.apply_vote(b.fingerprint, "add", d.public_pem) == "added"
    with pytest.raises(ValueError, match="only a current authority"):
        auth.apply_vote(Identity.generate().fingerprint, "remove", a.public_pem)


def _chain(blocks_spec):
    """Blocks (sealer, [(kind, payload), ...]) linked from genesis, each sealed by its sealer."""
    blocks, prev = [], chain.GENESIS_PREV
    for height, (sealer, payloads) in enumerate(blocks_spec):
        entries = [chain.StoredEntry(i, kind, chain.canonical_json(p).decode(), chain.entry_hash(kind, p))
                   for i, (kind, p) in enumerate(payloads)]
        header = chain.Header(height, prev, chain.merkle_root([e.payload_hash for e in entries]), "t",
                              sealer.fingerprint, len(entries))
        blocks.append(chain.StoredBlock(height, prev, header.merkle_root, "t", sealer.fingerprint,
                                        chain.seal(sealer, header), header.block_hash(), len(entries), entries))
        prev = header.block_hash()
    return blocks


def test_a_sealer_cannot_cast_votes_in_other_authorities_names():
    a, b, c, mallory = (Identity.from_seed(s) for s in (b"a", b"b", b"c", b"mallory"))
    genesis = [a.public_pem, b.public_pem, c.public_pem]
    # a seals a block whose votes name b and c: adding mallory, who then seals in turn
    forged = [("vote", {"voter": v.fingerprint, "action": "add", "subject": mallory.public_pem, "at": "t"})
              for v in (b, c)]
    report = chain.verify_chain(_chain([(a, forged), (b, []), (c, []), (mallory, [])]), genesis)
    assert not report.intact and report.block == 0 and "not signed by the authority" in report.problem
    # a's key signing in b's name does not help either
    stolen = [("vote", {**chain.sign_vote(a, action="add", subject_pem=mallory.public_pem, at="t"),
                        "voter": b.fingerprint})]
    assert not chain.verify_chain(_chain([(a, stolen)]), genesis).intact
    # votes signed by their voters go through, whoever seals them
    signed = [("vote", chain.sign_vote(v, action="add", subject_pem=mallory.public_pem, at="t")) for v in (b, c)]
    assert chain.verify_chain(_chain([(a, signed), (b, []), (c, []), (mallory, [])]), genesis).intact
    # nor can a sealer replay a signed vote once its effect was undone
    removal = [("vote", chain.sign_vote(v, action="remove", subject_pem=mallory.public_pem, at="t2"))
               for v in (a, b, c)]
    spec = [(a, signed), (b, []), (c, []), (mallory, []), (a, removal), (c, []), (a, signed)]
    assert chain.verify_chain(_chain(spec[:6]), genesis).intact
    report = chain.verify_chain(_chain(spec), genesis)
    assert not report.intact and report.block == 6 and "replay" in report.problem


P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _reencoded(vote: dict) -> list[dict]:
    """The same signed vote written differently: what a sealer could re-post as a 'new' vote."""
    r, s = vote["signature"][:64], int(vote["signature"][64:], 16)
    return [
        {**vote, "signature": vote["signature"].upper()},
        {**vote, "note": "again"},
        {**vote, "signature": r + f"{P256_ORDER - s:064x}"},  # ECDSA's other valid signature
    ]


@pytest.mark.parametrize("variant", range(3), ids=["upper-case hex", "extra field", "malleated signature"])
def test_a_re_encoded_replay_of_a_signed_vote_is_refused(variant):
    a, b, c, mallory = (Identity.from_seed(s) for s in (b"a", b"b", b"c", b"mallory"))
    genesis = [a.public_pem, b.public_pem, c.public_pem]
    adds = [chain.sign_vote(v, action="add", subject_pem=mallory.public_pem, at="t") for v in (b, c)]
    removal = [("vote", chain.sign_vote(v, action="remove", subject_pem=mallory.public_pem, at="t2"))
               for v in (a, b, c)]
    replay = [("vote", _reencoded(v)[variant]) for v in adds]
    spec = [(a, [("vote", v) for v in adds]), (b, []), (c, []), (mallory, []), (a, removal), (c, []), (a, replay),
            (mallory, [])]
    report = chain.verify_chain(_chain(spec), genesis)
    assert not report.intact and report.block == 6 and report.entry == 0, report.problem
    assert ("lowercase hex", "exactly the fields", "replay of a vote")[variant] in report.problem


def test_a_removed_authoritys_open_votes_no_longer_count():
    a, b, c, d, e = (Identity.from_seed(s) for s in (b"a", b"b", b"c", b"d", b"e"))
    auth = chain.AuthoritySet([x.public_pem for x in (a, b, c, d)])
    assert auth.cast(chain.sign_vote(d, action="add", subject_pem=e.public_pem, at="1")) is None
    for v in (a, b, c):
        auth.cast(chain.sign_vote(v, action="remove", subject_pem=d.public_pem, at="2"))
    assert d.public_pem not in auth.authorities
    # one vote of the three current authorities is no majority, whatever d voted before
    assert auth.cast(chain.sign_vote(a, action="add", subject_pem=e.public_pem, at="3")) is None
    assert auth.cast(chain.sign_vote(b, action="add", subject_pem=e.public_pem, at="3")) == "added"


@pytest.mark.parametrize("field", ["subject", "action", "at"])
def test_a_signed_vote_with_a_field_that_is_not_text_breaks_the_chain_with_a_reason(field):
    a, b, c = (Identity.from_seed(s) for s in (b"a", b"b", b"c"))
    vote = {"voter": a.fingerprint, "action": "add", "subject": b.public_pem, "at": "t", field: ["x"]}
    vote["signature"] = a.sign(chain._vote_message(vote)).hex()  # a hostile authority signs it
    report = chain.verify_chain(_chain([(a, [("vote", vote)])]), [a.public_pem, b.public_pem, c.public_pem])
    assert not report.intact and report.block == 0 and "text" in report.problem


def test_a_digest_exported_before_the_first_block_checks_out_against_any_chain_grown_from_it():
    a, b = Identity.from_seed(b"\x01"), Identity.from_seed(b"\x02")
    genesis = [a.public_pem, b.public_pem]
    empty = chain.verify_chain([], genesis)
    digest = {"height": empty.height, "block_hash": empty.digest}
    assert digest == {"height": -1, "block_hash": chain.GENESIS_PREV}
    assert chain.verify_chain([], genesis, expected_digest=digest).intact
    grown = _chain([(a, [("n", {"i": 1})]), (b, [("n", {"i": 2})])])
    assert chain.verify_chain(grown, genesis, expected_digest=digest).intact
    forged = chain.verify_chain(grown, genesis, expected_digest={"height": -1, "block_hash": "1" * 64})
    assert not forged.intact and "genesis hash" in forged.problem


@pytest.mark.parametrize("stored", ['{"a":NaN}', '{"a":1e999}', '"\\ud800"', "[" * 100_000 + "]" * 100_000])
def test_a_payload_rewritten_to_json_with_no_canonical_form_is_named_not_a_crash(stored):
    a = Identity.from_seed(b"\x01")
    blocks = _chain([(a, [("n", {"i": 1}), ("n", {"i": 2})])])
    blocks[0].entries[1].payload = stored
    report = chain.verify_chain(blocks, [a.public_pem])
    assert not report.intact and (report.block, report.entry) == (0, 1) and "canonical JSON" in report.problem


def test_an_authority_is_one_key_however_its_pem_is_written():
    ids = [Identity.from_seed(bytes([i])) for i in range(4)]
    crlf = ids[3].public_pem.replace("\n", "\r\n")
    auth = chain.AuthoritySet([i.public_pem for i in ids[:3]])
    assert auth.apply_vote(ids[0].fingerprint, "add", ids[3].public_pem) is None
    assert auth.apply_vote(ids[1].fingerprint, "add", crlf) == "added"  # the same subject: a majority of 2
    for voter in ids[:3]:  # adding it again changes nothing
        assert auth.apply_vote(voter.fingerprint, "add", crlf) is None
    assert auth.fingerprints == [i.fingerprint for i in ids]
    for voter in ids[:3]:
        outcome = auth.apply_vote(voter.fingerprint, "remove", ids[2].public_pem.replace("\n", "\r\n"))
    assert outcome == "removed" and auth.fingerprints == [ids[0].fingerprint, ids[1].fingerprint, ids[3].fingerprint]
