"""Writes on the ledger: authorities, appends (sealed blocks), votes."""

from __future__ import annotations

import functools
import json
import time

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from fedcore import chain
from fedcore.signing import Identity

from .models import Authority, Block, ChainHead, Entry

BLOCK_SIZE = 100


class LedgerError(Exception):
    pass


def private_key_stored(identity: Identity) -> str:
    """An identity's private key as kept at rest: encrypted with the deployment's key passphrase
    (LEDGER_AUTHORITY_PASSPHRASE), for the ledger authorities and for the hospitals alike."""
    return identity.export_encrypted(settings.LEDGER_AUTHORITY_PASSPHRASE)


def private_key_loaded(private_pem_encrypted: str) -> Identity:
    """The identity of a key kept by :func:`private_key_stored`."""
    return _decrypted(private_pem_encrypted, settings.LEDGER_AUTHORITY_PASSPHRASE)


@functools.lru_cache(maxsize=4096)
def _decrypted(private_pem_encrypted: str, passphrase: str) -> Identity:
    # a process decrypts a key once (PBKDF2 takes about 15 ms) and keeps it, as its owner keeps it loaded
    return Identity.load_encrypted(private_pem_encrypted, passphrase)


@transaction.atomic
def ledger_init(*, authorities: int | None = None) -> list[Authority]:
    """Create the genesis authorities once (idempotent)."""
    n = authorities or settings.LEDGER_AUTHORITIES
    existing = list(Authority.objects.filter(genesis=True))
    for i in range(len(existing), n):
        ident = Identity.generate()
        existing.append(Authority.objects.create(
            name=f"authority-{i + 1}", public_pem=ident.public_pem, fingerprint=ident.fingerprint,
            private_pem_encrypted=private_key_stored(ident), genesis=True,
        ))
    ChainHead.objects.get_or_create(id=1)
    return existing


def authority_register(*, name: str) -> Authority:
    """A candidate sealing authority: a new key pair, stored (private key encrypted) but not
    sealing until a majority of the active authorities votes it in (:func:`ledger_vote`)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise LedgerError("an authority needs a name of 1 to 100 characters")
    ident = Identity.generate()
    try:
        with transaction.atomic():  # the unique name decides between two registrations at once
            return Authority.objects.create(name=name, public_pem=ident.public_pem, fingerprint=ident.fingerprint,
                                            private_pem_encrypted=private_key_stored(ident), genesis=False,
                                            active=False)
    except IntegrityError:
        raise LedgerError(f"an authority named {name} exists already") from None


def _chain_authorities(authorities: list[Authority]) -> tuple[chain.AuthoritySet, dict[str, str | None]]:
    """The authority set after the last block, derived exactly as :func:`chain.verify_chain`
    derives it: the genesis authorities (of ``authorities``, every row in id order), then every
    vote on the chain in order through :class:`chain.AuthoritySet` (so votes spent on a change
    that took effect never count again). Also returns each vote's outcome by its payload hash."""
    auth = chain.AuthoritySet([a.public_pem for a in authorities if a.genesis])
    outcomes: dict[str, str | None] = {}
    for payload, h in Entry.objects.filter(kind="vote").order_by("block__height", "index").values_list(
            "payload", "payload_hash"):
        try:
            outcomes[h] = auth.cast(json.loads(payload))
        except ValueError:  # a vote the chain's rule does not count (verify_chain reports it)
            continue
    return auth, outcomes


def _active_authorities() -> list[Authority]:
    """The current sealers in the chain's order (the in-turn sealer of height h is the h % n-th).
    Two queries per append: the authority rows (a handful) and the votes (usually none)."""
    authorities = list(Authority.objects.order_by("id"))
    if not any(a.genesis for a in authorities):
        authorities = ledger_init()
    auth, _ = _chain_authorities(authorities)
    rows = {a.fingerprint: a for a in authorities}  # a key however its PEM was written
    missing = [fp for fp in auth.fingerprints if fp not in rows]
    if missing:
        raise LedgerError(f"{len(missing)} authority key(s) voted onto the chain have no authority record to seal with")
    return [rows[fp] for fp in auth.fingerprints]


def ledger_append(*, entries: list[tuple[str, dict]]) -> list[Block]:
    """Append entries in sealed blocks of up to 100. Safe under concurrency: the chain head row
    is locked for the whole transaction (on SQLite the write transaction itself serialises), so
    heights never repeat or skip, and a failure leaves no partial block. Entries already on the
    chain (same kind and payload) are skipped, so re-running a task stores nothing twice."""
    prepared, seen = [], set()
    for kind, payload in entries:
        text = chain.canonical_json(payload).decode()
        h = chain.entry_hash(kind, payload)
        if h not in seen:
            seen.add(h)
            prepared.append((kind, payload, text, h))
    if not prepared:
        return []
    if transaction.get_connection().in_atomic_block:
        # inside the caller's transaction a retry would only repeat a savepoint of a transaction
        # that a deadlock has already rolled back: the error goes to the caller, whose whole
        # transaction is what can be retried (a round's task retries on OperationalError)
        return _append(prepared)
    for attempt in range(5):
        try:
            return _append(prepared)
        except (IntegrityError, OperationalError):
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    return []


@transaction.atomic
def _append(prepared) -> list[Block]:
    head, _ = ChainHead.objects.select_for_update().get_or_create(id=1)
    existing = set(Entry.objects.filter(payload_hash__in=[p[3] for p in prepared]).values_list("payload_hash", flat=True))
    todo = [p for p in prepared if p[3] not in existing]
    authorities = _active_authorities()
    blocks = []
    for start in range(0, len(todo), BLOCK_SIZE):
        chunk = todo[start : start + BLOCK_SIZE]
        height = head.height + 1
        sealer = authorities[height % len(authorities)]
        identity = private_key_loaded(sealer.private_pem_encrypted)
        header = chain.Header(height, head.block_hash, chain.merkle_root([p[3] for p in chunk]),
                              timezone.now().isoformat(timespec="milliseconds"), sealer.fingerprint, len(chunk))
        block = Block.objects.create(height=height, prev_hash=header.prev_hash, merkle_root=header.merkle_root,
                                     timestamp=header.timestamp, authority=header.authority,
                                     signature=chain.seal(identity, header), block_hash=header.block_hash(),
                                     entry_count=len(chunk))
        Entry.objects.bulk_create([
            Entry(block=block, index=i, kind=kind, payload=text, payload_hash=h,
                  **dict(zip(Entry.LOOKUP_COLUMNS, chain.lookup_fields(payload), strict=True)))
            for i, (kind, payload, text, h) in enumerate(chunk)
        ])
        head.height, head.block_hash = height, block.block_hash
        blocks.append(block)
    if blocks:
        head.save(update_fields=["height", "block_hash"])
    return blocks


@transaction.atomic
def ledger_vote(*, voter: Authority, action: str, subject_pem: str) -> str | None:
    """Record a vote on the chain; when a strict majority of active authorities agrees the
    authority set changes (from the next block on)."""
    if not voter.active:
        raise LedgerError(f"{voter.name} is not an active authority and cannot vote")
    if action not in ("add", "remove"):
        raise LedgerError("a vote adds or removes an authority")
    if not Authority.objects.filter(public_pem=subject_pem).exists():
        raise LedgerError("the subject of a vote must be a registered authority key")
    identity = private_key_loaded(voter.private_pem_encrypted)
    payload = chain.sign_vote(identity, action=action, subject_pem=subject_pem, at=timezone.now().isoformat())
    ledger_append(entries=[("vote", payload)])
    auth, outcomes = _chain_authorities(list(Authority.objects.order_by("id")))
    Authority.objects.filter(public_pem__in=auth.authorities).exclude(active=True).update(active=True)
    Authority.objects.exclude(public_pem__in=auth.authorities).exclude(active=False).update(active=False)
    return outcomes.get(chain.entry_hash("vote", payload))
