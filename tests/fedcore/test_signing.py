"""Identities, signatures and AES-GCM share envelopes (signed updates: test_rounds_signing)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedcore.signing import (
    Identity,
    SigningError,
    open_from,
    public_fingerprint,
    seal_for,
    verify_signature,
)

ALICE = Identity.from_seed(b"alice")
BOB = Identity.from_seed(b"bob")
CAROL = Identity.from_seed(b"carol")


def test_signature_is_raw_64_bytes_and_verifies():
    sig = ALICE.sign(b"model hash")
    assert len(sig) == 64
    assert verify_signature(ALICE.public_pem, b"model hash", sig)
    assert not verify_signature(ALICE.public_pem, b"model hash!", sig)
    assert not verify_signature(BOB.public_pem, b"model hash", sig)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=80), st.binary(max_size=200), st.text(max_size=60))
def test_verify_signature_never_raises_on_garbage(sig, data, pem):
    assert verify_signature(pem, data, sig) is False
    assert verify_signature(ALICE.public_pem, data, sig) is False


def test_verify_signature_rejects_wrong_types_without_raising():
    sig = ALICE.sign(b"x")
    assert verify_signature(ALICE.public_pem, "x", sig) is False  # type: ignore[arg-type]
    assert verify_signature(ALICE.public_pem, b"x", None) is False  # type: ignore[arg-type]
    assert verify_signature(None, b"x", sig) is False  # type: ignore[arg-type]


def test_from_seed_is_deterministic_and_distinct():
    assert Identity.from_seed(b"alice").public_pem == ALICE.public_pem
    assert ALICE.public_pem != BOB.public_pem
    assert Identity.generate().public_pem != Identity.generate().public_pem


def test_encrypted_export_round_trips_and_refuses_wrong_passphrase():
    pem = ALICE.export_encrypted("correct horse")
    assert "ENCRYPTED PRIVATE KEY" in pem
    loaded = Identity.load_encrypted(pem, "correct horse")
    assert loaded.public_pem == ALICE.public_pem
    assert verify_signature(ALICE.public_pem, b"m", loaded.sign(b"m"))
    with pytest.raises(SigningError, match="wrong passphrase"):
        Identity.load_encrypted(pem, "wrong horse")
    with pytest.raises(SigningError, match="passphrase is required"):
        ALICE.export_encrypted("")
    with pytest.raises(SigningError, match="not an encrypted private key"):
        Identity.load_encrypted(ALICE.public_pem, "correct horse")
    # a plain key that carries the words in a header line is still a plain key
    plain = ALICE._key.export_key(format="PEM", use_pkcs8=True)
    disguised = plain.replace("-----BEGIN PRIVATE KEY-----\n", "-----BEGIN PRIVATE KEY-----\nComment: ENCRYPTED PRIVATE KEY\n")
    for pem in (plain, disguised, None, ""):
        with pytest.raises(SigningError, match="not an encrypted private key"):
            Identity.load_encrypted(pem, "any passphrase")
    crlf = ALICE.export_encrypted("correct horse").replace("\n", "\r\n")  # as a Windows editor saves it
    assert Identity.load_encrypted(crlf, "correct horse").public_pem == ALICE.public_pem


def test_scalar_round_trip_and_bounds():
    assert Identity.from_scalar(ALICE.scalar).public_pem == ALICE.public_pem
    with pytest.raises(SigningError, match=r"\[1, n-1\]"):
        Identity.from_scalar(0)


def test_a_fingerprint_needs_pem_text():
    with pytest.raises(TypeError, match="PEM text"):
        public_fingerprint(None)


# --- envelopes ---------------------------------------------------------------------------

AD = b"exp|round=1|party=2"


def test_envelope_round_trip():
    env = seal_for(BOB.public_pem, ALICE, b"share bytes", AD)
    assert b"share bytes" not in env
    assert open_from(ALICE.public_pem, BOB, env, AD) == b"share bytes"
    assert seal_for(BOB.public_pem, ALICE, b"share bytes", AD) != env  # fresh nonce each time


@pytest.mark.parametrize("position", [0, 12, 30, -1])
def test_corrupted_envelope_is_rejected(position):
    env = bytearray(seal_for(BOB.public_pem, ALICE, b"share bytes", AD))
    env[position] ^= 0x01
    with pytest.raises(SigningError, match="failed authentication"):
        open_from(ALICE.public_pem, BOB, bytes(env), AD)


@pytest.mark.parametrize("envelope, ad", [("x" * 40, AD), (None, AD), (12345, AD), (b"\0" * 40, "exp|round=1")])
def test_an_envelope_or_associated_data_that_is_not_bytes_is_refused_as_such(envelope, ad):
    with pytest.raises(SigningError, match="are bytes, not"):
        open_from(ALICE.public_pem, BOB, envelope, ad)


def test_envelope_is_bound_to_parties_direction_and_associated_data():
    env = seal_for(BOB.public_pem, ALICE, b"s", AD)
    with pytest.raises(SigningError, match="failed authentication"):
        open_from(ALICE.public_pem, BOB, env, b"exp|round=2|party=2")  # re-addressed
    with pytest.raises(SigningError, match="failed authentication"):
        open_from(ALICE.public_pem, CAROL, env, AD)  # not the recipient
    with pytest.raises(SigningError, match="failed authentication"):
        open_from(CAROL.public_pem, BOB, env, AD)  # not the sender
    with pytest.raises(SigningError, match="failed authentication"):
        open_from(BOB.public_pem, ALICE, env, AD)  # reflected back to its sender
    with pytest.raises(SigningError, match="truncated"):
        open_from(ALICE.public_pem, BOB, env[:20], AD)
    with pytest.raises(SigningError, match="not a valid public key"):
        open_from("garbage", BOB, env, AD)


def _respaced(pem: str) -> list[str]:
    lines = pem.strip().splitlines()
    return [
        pem.replace("\n", "\r\n") + "\r\n",  # pasted into a web form
        "\n" + pem + "\n\n",
        "\n".join(f"  {line} " for line in lines),
        "\n\n".join(lines),
    ]


def test_a_key_has_one_fingerprint_whatever_the_line_endings_and_whitespace_of_its_pem():
    import hashlib


    pem = BOB.public_pem
    # unchanged for the PEM FedHealth writes: fingerprints already sealed in chains stay valid
    assert BOB.fingerprint == public_fingerprint(pem) == hashlib.sha256(pem.strip().encode()).hexdigest()[:16]
    for variant in _respaced(pem):
        assert variant != pem
        assert public_fingerprint(variant) == BOB.fingerprint
        assert verify_signature(variant, b"m", BOB.sign(b"m"))
    assert public_fingerprint(ALICE.public_pem) != BOB.fingerprint
    assert public_fingerprint(" not a key\n") == hashlib.sha256(b"not a key").hexdigest()[:16]  # as before


def test_an_envelope_sealed_to_a_respaced_pem_of_the_recipient_opens():
    for variant in _respaced(BOB.public_pem):
        env = seal_for(variant, ALICE, b"share", b"round 3")
        assert open_from(ALICE.public_pem, BOB, env, b"round 3") == b"share"
    for variant in _respaced(ALICE.public_pem):  # the recipient holds a respaced PEM of the sender
        assert open_from(variant, BOB, seal_for(BOB.public_pem, ALICE, b"share")) == b"share"
