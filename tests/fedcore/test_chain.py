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
