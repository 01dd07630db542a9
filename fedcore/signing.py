"""Identities, signatures and encrypted envelopes for shares in transit (pycryptodome).

Every hospital and every ledger authority holds an :class:`Identity` (an ECDSA P-256 key pair).

* Signatures are raw ``r || s`` (64 bytes) over SHA-256. Signing uses deterministic nonces
  (RFC 6979, allowed by FIPS 186-5): a weak or repeated random ``k`` would leak the private key,
  and a derived ``k`` removes that risk. The signatures are ordinary ECDSA signatures and are
  verified with the FIPS 186-3 verifier.
* A hospital's update is signed over its SHA-256 bound to experiment, round and hospital
  (:func:`fedcore.rounds.binding`); :func:`fedcore.rounds.check_signature` rejects a forged,
  tampered, re-addressed or replayed one.
* :func:`seal_for` / :func:`open_from` carry secret shares between parties: static ECDH
  (P-256) + HKDF-SHA256 to an AES-256-GCM key bound to both public keys and to the
  associated data, so an envelope can be neither read nor re-addressed by anyone else.
"""

from __future__ import annotations

import functools
import hashlib
import secrets

from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.DH import key_agreement
from Crypto.Protocol.KDF import HKDF
from Crypto.PublicKey import ECC
from Crypto.Signature import DSS

CURVE = "P-256"
# Order n of the P-256 base point (FIPS 186-4, D.1.2.3): private scalars live in [1, n-1].
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_NAMES = {"NIST P-256", "p256", "P-256", "prime256v1", "secp256r1"}
_GCM_NONCE, _GCM_TAG = 12, 16


class SigningError(ValueError):
    """A key or envelope problem, with a reason a person can read."""


class Identity:
    """An ECDSA P-256 key pair. Construct with :meth:`generate`, :meth:`from_seed` or
    :meth:`load_encrypted`; the private key never leaves the object unencrypted."""

    def __init__(self, key: ECC.EccKey) -> None:
        if not key.has_private():
            raise SigningError("an identity needs a private key, not only a public key")
        if key.curve not in _P256_NAMES:
            raise SigningError(f"the key is on {key.curve}, expected P-256")
        self._key = key

    @classmethod
    def generate(cls) -> Identity:
        return cls(ECC.generate(curve=CURVE))

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """A reproducible identity for simulated hospitals of a seeded experiment and tests.

        The private scalar is SHA-256(seed) reduced into [1, n-1]; never use it for real keys.
        """
        d = int.from_bytes(hashlib.sha256(b"fedhealth-identity|" + seed).digest(), "big")
        return cls(ECC.construct(curve=CURVE, d=d % (P256_ORDER - 1) + 1))

    @classmethod
    def from_scalar(cls, d: int) -> Identity:
        """The identity whose private scalar is ``d`` (e.g. rebuilt from Shamir shares)."""
        if not 1 <= d < P256_ORDER:
            raise SigningError("a P-256 private scalar must lie in [1, n-1]")
        return cls(ECC.construct(curve=CURVE, d=d))

    @property
    def scalar(self) -> int:
        """The private scalar; only for secret-sharing the key (Bonawitz recovery)."""
        return int(self._key.d)

    @property
    def public_pem(self) -> str:
        return self._key.public_key().export_key(format="PEM")

    @property
    def fingerprint(self) -> str:
        return public_fingerprint(self.public_pem)

    def sign(self, data: bytes) -> bytes:
        """64-byte raw ``r || s`` ECDSA signature of SHA-256(data)."""
        return DSS.new(self._key, "deterministic-rfc6979").sign(SHA256.new(data))

    def export_encrypted(self, passphrase: str) -> str:
        """PKCS#8 PEM, protected with PBKDF2-HMAC-SHA256 (100k iterations) and AES-256-CBC."""
        if not passphrase:
            raise SigningError("a passphrase is required to store a private key")
        return self._key.export_key(
            format="PEM",
            passphrase=passphrase,
            use_pkcs8=True,
            protection="PBKDF2WithHMAC-SHA256AndAES256-CBC",
            prot_params={"iteration_count": 100_000},
        )

    @classmethod
    def load_encrypted(cls, pem: str, passphrase: str) -> Identity:
        # An unencrypted PEM would load whatever the passphrase: refuse it, keys are stored encrypted
        # (its first line must say so: a header line of a plain key could carry the words too).
        if not isinstance(pem, str) or pem.strip().splitlines()[:1] != ["-----BEGIN ENCRYPTED PRIVATE KEY-----"]:
            raise SigningError(
                "not an encrypted private key (expected an ENCRYPTED PRIVATE KEY PEM)"
            )
        try:
            key = ECC.import_key(pem, passphrase=passphrase)
        except (ValueError, IndexError, TypeError) as exc:
            raise SigningError(
                "cannot decrypt the private key: wrong passphrase or damaged key"
            ) from exc
        return cls(key)

    def agree(self, peer_public_pem: str, info: bytes) -> bytes:
        """Static ECDH with the peer's public key, then HKDF-SHA256 to 32 bytes bound to ``info``.

        Both sides obtain the same key, which is what pairwise masks and envelopes need.
        """
        peer = _load_public(peer_public_pem)
        return key_agreement(
            static_priv=self._key,
            static_pub=peer,
            kdf=lambda z: HKDF(z, 32, salt=b"fedhealth-ecdh", hashmod=SHA256, context=info),
        )


def _tidy_pem(pem: str) -> str:
    """The PEM's lines without surrounding whitespace or blank lines, joined by "\n": the same
    key pasted with CRLF line endings or stray spaces reads as the same text."""
    return "\n".join(line.strip() for line in pem.splitlines() if line.strip())


@functools.lru_cache(maxsize=4096)  # a verifier sees the same few keys again and again
def _load_public(pem: str) -> ECC.EccKey:
    try:
        key = ECC.import_key(_tidy_pem(pem))
    except (ValueError, IndexError, TypeError) as exc:
        raise SigningError("not a valid public key") from exc
    if key.curve not in _P256_NAMES:
        raise SigningError(f"public key is on {key.curve}, expected P-256")
    return key.public_key()


@functools.lru_cache(maxsize=4096)
def public_fingerprint(public_pem: str) -> str:
    """Short stable name of a public key: the first 16 hex digits of SHA-256 of its canonical
    PEM (the key parsed and exported again, as :attr:`Identity.public_pem` writes it), so line
    endings and whitespace do not change it, and fingerprints already sealed in ledger blocks
    and votes stay what they were. Text that is not a public key is hashed as it stands."""
    if not isinstance(public_pem, str):
        raise TypeError(f"a public key is PEM text, not {type(public_pem).__name__}")
    try:
        canonical = _load_public(public_pem).export_key(format="PEM")
    except (SigningError, TypeError, AttributeError):
        canonical = public_pem
    return hashlib.sha256(canonical.strip().encode()).hexdigest()[:16]


def verify_signature(public_pem: str, data: bytes, signature: bytes) -> bool:
    """True only for a valid signature; garbage (key, signature or data type) gives False."""
    try:
        DSS.new(_load_public(public_pem), "fips-186-3").verify(SHA256.new(data), signature)
    except (ValueError, TypeError, AttributeError, IndexError):
        return False
    return True


# --- encrypted envelopes for shares in transit -------------------------------------------


def _envelope_key(
    me: Identity, peer_public_pem: str, sender_pem: str, recipient_pem: str, associated_data: bytes
) -> bytes:
    # Binding both public keys in order makes the key direction-specific: an envelope from A to
    # B cannot be reflected back to A as if B had sent it.
    info = b"|".join(
        [
            b"fedhealth-envelope-v1",
            public_fingerprint(sender_pem).encode(),
            public_fingerprint(recipient_pem).encode(),
            hashlib.sha256(associated_data).digest(),
        ]
    )
    return me.agree(peer_public_pem, info)


def seal_for(
    recipient_public_pem: str,
    sender_identity: Identity,
    plaintext: bytes,
    associated_data: bytes = b"",
) -> bytes:
    """Encrypt ``plaintext`` for one recipient: ECDH + HKDF-SHA256 + AES-256-GCM.

    Layout: nonce (12) || tag (16) || ciphertext. ``associated_data`` (experiment, round,
    party, ...) is authenticated, not encrypted: the recipient must supply the same bytes.
    """
    key = _envelope_key(
        sender_identity,
        recipient_public_pem,
        sender_identity.public_pem,
        recipient_public_pem,
        associated_data,
    )
    cipher = AES.new(key, AES.MODE_GCM, nonce=secrets.token_bytes(_GCM_NONCE))
    cipher.update(associated_data)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    return cipher.nonce + tag + ciphertext


def open_from(
    sender_public_pem: str,
    recipient_identity: Identity,
    envelope: bytes,
    associated_data: bytes = b"",
) -> bytes:
    """Decrypt an envelope from :func:`seal_for`; raise :class:`SigningError` if it was
    tampered with, truncated, sent by someone else, meant for someone else or re-addressed."""
    if not isinstance(envelope, bytes | bytearray | memoryview) or not isinstance(associated_data, bytes | bytearray | memoryview):
        raise SigningError(f"an envelope and its associated data are bytes, not {type(envelope).__name__} "
                           f"and {type(associated_data).__name__}")
    envelope = bytes(envelope)
    if len(envelope) < _GCM_NONCE + _GCM_TAG:
        raise SigningError("envelope is truncated")
    key = _envelope_key(
        recipient_identity,
        sender_public_pem,
        sender_public_pem,
        recipient_identity.public_pem,
        associated_data,
    )
    nonce, tag = envelope[:_GCM_NONCE], envelope[_GCM_NONCE : _GCM_NONCE + _GCM_TAG]
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
    cipher.update(associated_data)
    try:
        return cipher.decrypt_and_verify(envelope[_GCM_NONCE + _GCM_TAG :], tag)
    except ValueError as exc:
        raise SigningError(
            "envelope failed authentication: tampered, re-addressed, "
            "or not between these two parties"
        ) from exc
