"""Identities, signed update envelopes and AES-GCM share envelopes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedcore.signing import (
    Identity,
    SignedUpdate,
    SigningError,
    UpdateVerifier,
    VerificationError,
    open_from,
    public_fingerprint,
    seal_for,
    sign_update,
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


def test_scalar_round_trip_and_bounds():
    assert Identity.from_scalar(ALICE.scalar).public_pem == ALICE.public_pem
    with pytest.raises(SigningError, match=r"\[1, n-1\]"):
        Identity.from_scalar(0)


# --- signed updates ----------------------------------------------------------------------

PAYLOAD = b"\x00\x01update-vector-bytes"


@pytest.fixture
def verifier():
    return UpdateVerifier({"h1": ALICE.public_pem, 2: BOB.public_pem})


def _signed(
    identity=ALICE, *, experiment="exp", round_no=1, hospital="h1", payload=PAYLOAD, nonce=None
):
    return sign_update(
        identity,
        experiment=experiment,
        round_no=round_no,
        hospital=hospital,
        payload=payload,
        nonce=nonce,
    )


def _code(verifier, update, payload=PAYLOAD, *, experiment="exp", round_no=1, hospital="h1"):
    with pytest.raises(VerificationError) as info:
        verifier.verify(
            update, payload, experiment=experiment, round_no=round_no, hospital=hospital
        )
    return info.value.code, info.value.reason


def test_genuine_update_is_accepted_once(verifier):
    u = _signed()
    verifier.verify(u, PAYLOAD, experiment="exp", round_no=1, hospital="h1")
    code, reason = _code(verifier, u)
    assert code == VerificationError.REPLAY and "nonce" in reason


def test_a_round_that_is_not_a_whole_number_is_refused_not_truncated(verifier):
    for bad in (1.9, 1.0, True):  # 1.9 used to be read as round 1
        with pytest.raises(TypeError):
            verifier.verify(_signed(), PAYLOAD, experiment="exp", round_no=bad, hospital="h1")
    verifier.verify(_signed(), PAYLOAD, experiment="exp", round_no=np.int64(1), hospital="h1")
    with pytest.raises(TypeError, match="PEM text"):
        public_fingerprint(None)


def test_second_update_of_a_hospital_in_the_same_round_is_a_replay(verifier):
    verifier.verify(_signed(), PAYLOAD, experiment="exp", round_no=1, hospital="h1")
    other = _signed(payload=b"another update")
    code, reason = _code(verifier, other, b"another update")
    assert code == VerificationError.REPLAY and "already submitted" in reason
    # the same hospital is welcome in the next round
    verifier.verify(_signed(round_no=2), PAYLOAD, experiment="exp", round_no=2, hospital="h1")


def test_forged_signature_is_rejected(verifier):
    forged = _signed(identity=CAROL)  # carol signs in the name of h1
    code, reason = _code(verifier, forged)
    assert code == VerificationError.FORGED and "forged signature" in reason
    flipped = dataclasses.replace(_signed(), signature=bytes(64))
    assert _code(verifier, flipped)[0] == VerificationError.FORGED
    # a rejected update does not burn the slot: the genuine one still goes through
    verifier.verify(_signed(), PAYLOAD, experiment="exp", round_no=1, hospital="h1")


def test_envelope_fields_edited_after_signing_break_the_signature(verifier):
    u = _signed(round_no=2)
    edited = dataclasses.replace(u, round_no=1)
    assert _code(verifier, edited)[0] == VerificationError.FORGED


@pytest.mark.parametrize("where", [{"round_no": 2}, {"experiment": "other"}, {"hospital": 2}])
def test_readdressed_update_is_rejected(verifier, where):
    u = _signed(
        **{**{"round_no": 1, "experiment": "exp", "hospital": "h1"}, **where},
        identity=BOB if where.get("hospital") == 2 else ALICE,
    )
    code, reason = _code(verifier, u)
    assert code == VerificationError.READDRESSED and "re-addressed" in reason


def test_tampered_payload_is_rejected(verifier):
    code, reason = _code(verifier, _signed(), PAYLOAD + b"!")
    assert code == VerificationError.TAMPERED and "does not match" in reason


def test_unknown_signer_is_rejected(verifier):
    u = _signed(identity=CAROL, hospital="h9")
    code, reason = _code(verifier, u, hospital="h9")
    assert code == VerificationError.UNKNOWN_SIGNER and "h9" in reason


def test_check_returns_result_objects(verifier):
    u = _signed()
    assert verifier.check(u, PAYLOAD, experiment="exp", round_no=1, hospital="h1").ok
    again = verifier.check(u, PAYLOAD, experiment="exp", round_no=1, hospital="h1")
    assert not again.ok and again.code == VerificationError.REPLAY and again.reason


def test_signed_update_serialises_and_fixed_nonce_reproduces():
    u = _signed(nonce=b"\x01" * 16)
    assert SignedUpdate.from_dict(u.to_dict()) == u
    assert _signed(nonce=b"\x01" * 16) == u
    assert _signed().nonce != _signed().nonce
    with pytest.raises(SigningError, match="malformed"):
        SignedUpdate.from_dict({"experiment": "x"})


@pytest.mark.parametrize("round_no", [1e999, float("nan"), 1.9, None, True, [1]])
def test_a_malformed_round_number_is_a_signing_error(round_no):
    d = {**_signed().to_dict(), "round_no": round_no}
    with pytest.raises(SigningError, match="malformed"):
        SignedUpdate.from_dict(d)


@pytest.mark.parametrize("signed_hash", ["é" * 64, "\ud800" * 64, ""])
def test_a_malformed_signed_hash_is_reported_as_tampered(verifier, signed_hash):
    bad = SignedUpdate.from_dict({**_signed().to_dict(), "payload_sha256": signed_hash})
    assert _code(verifier, bad)[0] == VerificationError.TAMPERED
    result = verifier.check(bad, PAYLOAD, experiment="exp", round_no=1, hospital="h1")
    assert not result.ok and result.code == VerificationError.TAMPERED


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

    from fedcore.signing import public_fingerprint

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
