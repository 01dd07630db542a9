"""The ledger's pure part: canonical encoding, hashes, Merkle trees, sealed block headers,
Proof-of-Authority rules and whole-chain verification.

Canonical JSON: UTF-8, keys sorted, no whitespace (separators "," and ":"), non-ASCII kept as
is, integers as integers, floats in Python's shortest round-trip repr (``repr(float)``, e.g.
0.1 -> "0.1", 1e-07 -> "1e-07"), NaN/Infinity refused. Merkle leaves are
``sha256(0x00 || entry_hash)``, nodes ``sha256(0x01 || left || right)`` (domain separation
against second pre-images); an odd node at the end of a level is promoted unchanged.

Checking an inclusion proof without FedHealth (third parties)::

    import hashlib, json
    def h(b): return hashlib.sha256(b).digest()
    def check(entry_hash_hex, proof, merkle_root_hex):
        node = h(b"\\x00" + bytes.fromhex(entry_hash_hex))
        for side, sibling in proof:                  # [["L"|"R", hex], ...] from the API
            s = bytes.fromhex(sibling)
            node = h(b"\\x01" + s + node) if side == "L" else h(b"\\x01" + node + s)
        return node.hex() == merkle_root_hex
    # then: block_hash == sha256(canonical header JSON) and the header holds merkle_root.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field

from .signing import Identity, public_fingerprint, verify_signature


class CanonicalError(ValueError):
    pass


def _check(obj, path="$"):
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise CanonicalError(f"{path}: NaN and Infinity have no canonical encoding")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise CanonicalError(f"{path}: object keys must be strings")
            _check(v, f"{path}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check(v, f"{path}[{i}]")
    elif not (obj is None or isinstance(obj, (str, int, bool))):
        raise CanonicalError(f"{path}: {type(obj).__name__} cannot be encoded")


def canonical_json(obj) -> bytes:
    _check(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_hash(kind: str, payload: dict) -> str:
    return sha256_hex(canonical_json({"kind": kind, "payload": payload}))


def _leaf(h: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(h)).digest()


def _node(a: bytes, b: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + a + b).digest()


def merkle_root(leaf_hashes: list[str]) -> str:
    if not leaf_hashes:
        return sha256_hex(b"")
    level = [_leaf(h) for h in leaf_hashes]
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def merkle_proof(leaf_hashes: list[str], index: int) -> list[tuple[str, str]]:
    if not 0 <= index < len(leaf_hashes):
        raise IndexError("no entry at that index")
    level = [_leaf(h) for h in leaf_hashes]
    proof = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(("L" if sibling < index else "R", level[sibling].hex()))
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level, index = nxt, index // 2
    return proof


def verify_proof(leaf_hash: str, proof, root: str) -> bool:
    try:
        node = _leaf(leaf_hash)
        for side, sibling in proof:
            s = bytes.fromhex(sibling)
            node = _node(s, node) if side == "L" else _node(node, s)
        return node.hex() == root
    except (ValueError, TypeError):
        return False


# --- blocks ------------------------------------------------------------------------------

GENESIS_PREV = "0" * 64


@dataclass
class Header:
    height: int
    prev_hash: str
    merkle_root: str
    timestamp: str
    authority: str  # fingerprint of the sealing authority's public key
    entry_count: int

    def encode(self) -> bytes:
        return canonical_json(asdict(self))

    def block_hash(self) -> str:
        return sha256_hex(self.encode())


def seal(identity: Identity, header: Header) -> str:
    return identity.sign(header.encode()).hex()


def verify_seal(public_pem: str, header: Header, signature_hex: str) -> bool:
    """Whether the seal is the authority's signature of the header, written as sealed: 64 bytes
    in lowercase hex (a copy rewritten in capitals is a modified row, as for votes)."""
    if not isinstance(signature_hex, str) or not _SIGNATURE_HEX.fullmatch(signature_hex):
        return False
    return verify_signature(public_pem, header.encode(), bytes.fromhex(signature_hex))


@dataclass
class AuthoritySet:
    """Proof of Authority (after Clique / Aura): the in-turn sealer of height h is
    ``authorities[h % n]``; membership changes by a strict majority of the current set."""

    authorities: list[str]  # public PEMs, in order
    votes: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (action, subject) -> voters
    cast_votes: set[str] = field(default_factory=set)  # hashes of the signed content of every vote cast

    @property
    def fingerprints(self) -> list[str]:
        return [public_fingerprint(p) for p in self.authorities]

    def in_turn(self, height: int) -> str:
        return self.authorities[height % len(self.authorities)]

    def by_fingerprint(self, fp: str) -> str | None:
        for pem in self.authorities:
            if public_fingerprint(pem) == fp:
                return pem
        return None

    def apply_vote(self, voter_fp: str, action: str, subject_pem: str) -> str | None:
        """Record a vote; returns "added"/"removed" when the majority is reached."""
        if voter_fp not in self.fingerprints:
            raise ValueError("only a current authority may vote")
        if action not in ("add", "remove"):
            raise ValueError("a vote adds or removes an authority")
        # a key is the same authority however its PEM is written (line endings, spacing)
        subject = public_fingerprint(subject_pem)
        key = (action, subject)
        self.votes.setdefault(key, set()).add(voter_fp)
        if len(self.votes[key]) * 2 > len(self.authorities):
            del self.votes[key]
            current = self.by_fingerprint(subject)
            if action == "add" and current is None:
                self.authorities.append(subject_pem)
                return "added"
            if action == "remove" and current is not None and len(self.authorities) > 1:
                self.authorities.remove(current)
                for voters in self.votes.values():  # a former authority's open votes no longer count
                    voters.discard(subject)
                return "removed"
        return None

    def cast(self, payload: object) -> str | None:
        """Apply one vote entry of the chain (see :func:`sign_vote`); its outcome as
        :meth:`apply_vote`. Raises :class:`VoteError` for a vote that is malformed, not signed
        by the current authority it names, or a replay: the same signed content as a vote cast
        before, however re-encoded (an ECDSA signature is malleable, so the signature itself
        cannot tell a replay apart)."""
        if isinstance(payload, dict) and "signature" not in payload:
            raise VoteError("not signed by the authority it names: the vote carries no signature")
        if not isinstance(payload, dict) or set(payload) != {*VOTE_FIELDS, "signature"}:
            raise VoteError(f"a vote holds exactly the fields {', '.join(VOTE_FIELDS)} and signature")
        if not all(isinstance(payload[k], str) for k in payload):
            raise VoteError("every field of a vote is text")
        if not _SIGNATURE_HEX.fullmatch(payload["signature"]):
            raise VoteError("the signature is not 64 bytes in lowercase hex")
        if not vote_signed_by_voter(self, payload):
            raise VoteError("not signed by the authority it names")
        signed = sha256_hex(_vote_message(payload))
        if signed in self.cast_votes:
            raise VoteError("replay of a vote already on the chain")
        self.cast_votes.add(signed)
        return self.apply_vote(payload["voter"], payload["action"], payload["subject"])


class VoteError(ValueError):
    """A vote entry the chain's rule does not count."""


_SIGNATURE_HEX = re.compile(r"[0-9a-f]{128}")


VOTE_FIELDS = ("voter", "action", "subject", "at")


def _vote_message(payload: dict) -> bytes:
    return b"fedhealth-vote|" + canonical_json({k: payload.get(k) for k in VOTE_FIELDS})


def sign_vote(identity: Identity, *, action: str, subject_pem: str, at: str) -> dict:
    """A vote payload signed by the voter itself: the sealer of the block that carries it
    cannot cast votes in other authorities' names."""
    payload = {"voter": identity.fingerprint, "action": action, "subject": subject_pem, "at": at}
    return {**payload, "signature": identity.sign(_vote_message(payload)).hex()}


def vote_signed_by_voter(auth: AuthoritySet, payload: dict) -> bool:
    """True iff the vote carries a valid signature of the current authority it names."""
    voter = auth.by_fingerprint(payload.get("voter"))
    signature = payload.get("signature")
    if voter is None or not isinstance(signature, str):
        return False
    try:
        return verify_signature(voter, _vote_message(payload), bytes.fromhex(signature))
    except (ValueError, CanonicalError):
        return False


# --- verification of a whole chain -------------------------------------------------------

def lookup_fields(payload) -> tuple[str, int | None, int | None]:
    """The (experiment, round, hospital) an entry is looked up by: a database stores them beside
    the payload (indexed), and :func:`verify_chain` checks that they still say what the sealed
    payload says, so that a lookup can never find an entry under another experiment or round."""
    if not isinstance(payload, dict):
        return "", None, None

    def whole(v):
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    return str(payload.get("experiment", ""))[:64], whole(payload.get("round")), whole(payload.get("hospital"))


@dataclass
class StoredEntry:
    index: int
    kind: str
    payload: str  # canonical JSON text as stored
    payload_hash: str
    lookup: tuple | None = None  # the (experiment, round, hospital) stored beside it, if any


@dataclass
class StoredBlock:
    height: int
    prev_hash: str
    merkle_root: str
    timestamp: str
    authority: str
    signature: str
    block_hash: str
    entry_count: int
    entries: list[StoredEntry]

    @property
    def header(self) -> Header:
        return Header(self.height, self.prev_hash, self.merkle_root, self.timestamp, self.authority, self.entry_count)


@dataclass
class Report:
    intact: bool
    height: int  # last good height (-1: none)
    digest: str  # hash of the last good block
    entries: int
    problem: str = ""
    block: int | None = None
    entry: int | None = None

    def where(self) -> str:
        """Where the problem is ("block 17, entry 3"); empty when it is at no block (a missing height)."""
        if self.block is None:
            return ""
        return f"block {self.block}" + (f", entry {self.entry}" if self.entry is not None else "")

    def summary(self) -> str:
        if self.intact:
            return f"intact up to height {self.height}, digest {self.digest}"
        return f"broken at {self.where()}: {self.problem}" if self.block is not None else f"broken: {self.problem}"


def verify_chain(blocks: list[StoredBlock], genesis_authorities: list[str], *, expected_digest: dict | None = None) -> Report:
    """Re-hash every entry, rebuild every Merkle root, check links, heights, seals and turns, and
    that each entry's lookup columns (experiment, round, hospital; not hashed) say what its
    sealed payload says.

    Votes recorded in the chain (kind "vote": voter fingerprint, action, subject PEM, time, and
    the voter's signature of those, see :func:`sign_vote`) change the authority set from the
    next block on.
    """
    auth = AuthoritySet(list(genesis_authorities))
    prev, good_height, good_hash, n_entries = GENESIS_PREV, -1, GENESIS_PREV, 0
    digest_seen = expected_digest is None
    if expected_digest and expected_digest.get("height") == -1:  # exported before the first block
        if expected_digest.get("block_hash") != GENESIS_PREV:
            return Report(False, -1, GENESIS_PREV, 0, "the exported digest's height -1 (no block yet) must carry the "
                          "genesis hash of zeros; this one does not", 0)
        digest_seen = True

    def broken(problem, block, entry=None):
        return Report(False, good_height, good_hash, n_entries, problem, block, entry)

    for expected_height, b in enumerate(blocks):
        if b.height != expected_height:
            return broken(f"height {b.height} where {expected_height} was expected (a block is missing or inserted)", b.height)
        if b.prev_hash != prev:
            return broken("link broken: previous-hash does not match the block before", b.height)
        indices = [e.index for e in b.entries]
        if indices != list(range(len(b.entries))):
            missing = sorted(set(range(max(indices, default=-1) + 1)) - set(indices))
            if missing:
                return broken("entry deleted (index missing)", b.height, missing[0])
            return broken("entries reordered or duplicated", b.height, next(i for i, x in enumerate(indices) if x != i))
        for e in b.entries:
            try:
                payload = json.loads(e.payload)
                canonical, recomputed = canonical_json(payload).decode(), entry_hash(e.kind, payload)
            except (ValueError, UnicodeError, RecursionError):  # CanonicalError: NaN, 1e999, a lone surrogate
                return broken("payload is not valid canonical JSON (modified)", b.height, e.index)
            if canonical != e.payload or recomputed != e.payload_hash:
                return broken("payload modified: its hash no longer matches", b.height, e.index)
            if e.lookup is not None and tuple(e.lookup) != lookup_fields(payload):
                return broken("the experiment, round or hospital stored with the entry differs from its sealed "
                              "payload (modified: a lookup would find it under another experiment or round)",
                              b.height, e.index)
        if len(b.entries) != b.entry_count:
            return broken(f"{len(b.entries)} entries stored, the sealed header says {b.entry_count} (entry inserted or deleted)", b.height)
        root = merkle_root([e.payload_hash for e in b.entries])
        if root != b.merkle_root:
            return broken("Merkle root does not match the entries (entry inserted, deleted or reordered)", b.height)
        header = b.header
        if header.block_hash() != b.block_hash:
            return broken("block hash does not match its header (header modified)", b.height)
        sealer = auth.by_fingerprint(b.authority)
        if sealer is None:
            return broken("sealed by a key that is not an authority", b.height)
        if public_fingerprint(auth.in_turn(b.height)) != b.authority:
            return broken("sealed by an authority out of turn", b.height)
        if not verify_seal(sealer, header, b.signature):
            return broken("bad seal: the signature does not verify", b.height)
        for e in b.entries:
            if e.kind == "vote":
                try:
                    auth.cast(json.loads(e.payload))
                except ValueError as exc:  # VoteError, or apply_vote's refusal
                    return broken(f"invalid vote: {exc}", b.height, e.index)
        if expected_digest and b.height == expected_digest.get("height"):
            if b.block_hash != expected_digest.get("block_hash"):  # so this block is not good: not counted
                return broken("chain rewritten: this block differs from the exported digest", b.height)
            digest_seen = True
        prev, good_height, good_hash = b.block_hash, b.height, b.block_hash
        n_entries += len(b.entries)
    if not digest_seen:  # a problem at no block: the height the digest names is not in the chain
        return broken(f"the exported digest's height {expected_digest.get('height')} is missing (chain truncated)", None)
    return Report(True, good_height, good_hash, n_entries)
