"""Reads on the ledger: verification, inclusion proofs, model authenticity, search."""

from __future__ import annotations

import dataclasses
import json

from django.db.models import QuerySet

from fedcore import chain

from .models import Authority, Block, ChainHead, Entry


def genesis_authorities() -> list[str]:
    return list(Authority.objects.filter(genesis=True).order_by("id").values_list("public_pem", flat=True))


def stored_chain() -> list[chain.StoredBlock]:
    """Every block with its entries, read in two queries (100,000 entries in a few seconds)."""
    entries: dict[int, list[chain.StoredEntry]] = {}
    for block_id, index, kind, payload, h, *lookup in Entry.objects.order_by("block_id", "index").values_list(
        "block_id", "index", "kind", "payload", "payload_hash", *Entry.LOOKUP_COLUMNS
    ).iterator(chunk_size=5000):
        entries.setdefault(block_id, []).append(chain.StoredEntry(index, kind, payload, h, tuple(lookup)))
    blocks = []
    for b in Block.objects.order_by("height").values_list(
        "id", "height", "prev_hash", "merkle_root", "timestamp", "authority", "signature", "block_hash", "entry_count"
    ):
        blocks.append(chain.StoredBlock(*b[1:], entries=entries.get(b[0], [])))
    return blocks


def ledger_verify(*, expected_digest: dict | None = None) -> chain.Report:
    """The whole chain re-verified, and compared with the head row every append updates: blocks
    deleted from the end leave a chain that is sound as far as it goes, but shorter than its head."""
    # the head is read first: a block appended while the chain is read (every round of a running
    # run) only makes the chain longer than the head read, never shorter
    head = ChainHead.objects.filter(id=1).values_list("height", "block_hash").first()
    report = chain.verify_chain(stored_chain(), genesis_authorities(), expected_digest=expected_digest)
    if report.intact and head is not None and (head[0] > report.height
                                               or (head[0] == report.height and head[1] != report.digest)):
        return dataclasses.replace(
            report, intact=False, block=None,  # as for a digest's missing height: no stored block is at fault
            problem=f"the chain ends at height {report.height}, but its head records height {head[0]} "
                    f"(block hash {head[1][:16]}…): blocks were deleted from the end, or the head was altered")
    return report


def ledger_status(max_age: int = 30) -> dict:
    """A recent verification for dashboards: re-verified when the chain grows, else every ``max_age`` seconds."""
    from django.core.cache import cache
    from django.db.models import Count, Max
    from django.utils import timezone

    head = Block.objects.aggregate(height=Max("height"), blocks=Count("id"))
    key = f"ledger-status-{head['height']}-{head['blocks']}"
    status = cache.get(key)
    if status is None:
        report = ledger_verify()
        status = {"intact": report.intact, "summary": report.summary(), "where": report.where(),
                  "problem": report.problem, "height": report.height,
                  "digest": report.digest, "entries": report.entries, "checked": timezone.now(), "max_age": max_age}
        cache.set(key, status, max_age)
    return status


def digest_document(report: chain.Report) -> dict:
    return {"format": "fedhealth-ledger-digest/1", "height": report.height, "block_hash": report.digest,
            "entries": report.entries}


def authority_names() -> dict[str, str]:
    """Fingerprint -> name of every sealing authority (blocks store the fingerprint)."""
    return dict(Authority.objects.values_list("fingerprint", "name"))


DIGEST_HEIGHT_MESSAGE = "must be -1 (a digest of the empty chain) or a block height (0 or more)"


def expected_digest(height: object, block_hash: object) -> dict:
    """The digest a chain is verified against, from the digest file or the verify API: a whole
    number height of -1 (exported before the first block) or more, and a block hash as text.
    Anything else is a ValueError."""
    if type(height) is not int or height < -1:
        raise ValueError(f"height {DIGEST_HEIGHT_MESSAGE}")
    if not isinstance(block_hash, str):
        raise ValueError("block_hash must be text")
    return {"height": height, "block_hash": block_hash}


def parse_digest(text: str) -> dict:
    """The (height, block_hash) of a digest file written by :func:`digest_document`; anything
    else (other JSON, a height that is not a whole number, NaN or Infinity) is a ValueError.
    A byte-order mark, as some Windows editors write when they save the file, is ignored."""
    try:
        doc = json.loads(text.removeprefix("\ufeff"), parse_constant=_refuse)
        if doc.get("format") != "fedhealth-ledger-digest/1":
            raise ValueError
        return expected_digest(doc["height"], doc["block_hash"])
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise ValueError("not a FedHealth ledger digest (JSON with format, a whole-number height and block_hash)") from None


def _refuse(constant: str):
    raise ValueError(constant)


def inclusion_proof(entry: Entry) -> dict:
    """The entry, its Merkle path and its block's header; ``valid`` when the payload hashes to the
    entry's hash, the path leads to the block's Merkle root and the header to the block hash.
    A damaged entry (payload that is not JSON, an index outside its block) is shown as stored,
    with ``problem`` saying what is wrong."""
    b = entry.block
    hashes = list(b.entries.order_by("index").values_list("payload_hash", flat=True))
    header = chain.Header(b.height, b.prev_hash, b.merkle_root, b.timestamp, b.authority, b.entry_count)
    payload, problem, proof = _payload(entry), "", []
    if payload is None:
        payload, problem = entry.payload, "the stored payload is not valid JSON (modified)"
    elif not _hashes_to_its_hash(entry, payload):
        problem = "the payload does not hash to the entry's hash (modified)"
    try:
        proof = chain.merkle_proof(hashes, entry.index)
    except IndexError:
        problem = problem or f"the entry's index {entry.index} is outside its block of {len(hashes)} (modified)"
    except ValueError:  # bytes.fromhex of a stored hash
        problem = problem or "an entry hash stored in the block is not hexadecimal (modified)"
    if not problem and not chain.verify_proof(entry.payload_hash, proof, b.merkle_root):
        problem = "the Merkle path does not lead to the block's Merkle root"
    if not problem and header.block_hash() != b.block_hash:
        problem = "the block's header does not hash to its block hash"
    return {
        "entry": {"kind": entry.kind, "payload": payload, "payload_hash": entry.payload_hash, "index": entry.index},
        "proof": [list(p) for p in proof],
        "block": {"height": b.height, "block_hash": b.block_hash, "header": json.loads(header.encode()),
                  "signature": b.signature},
        "valid": not problem,
        "problem": problem,
    }


def _payload(entry: Entry):
    """The entry's payload as sealed, or None when the stored text is not strict JSON (NaN and
    Infinity, which no sealed payload holds, included)."""
    try:
        return json.loads(entry.payload, parse_constant=_refuse)
    except (ValueError, RecursionError):
        return None


def _hashes_to_its_hash(entry: Entry, payload) -> bool:
    try:
        return chain.entry_hash(entry.kind, payload) == entry.payload_hash
    except ValueError:  # CanonicalError: a value no canonical payload holds (1e999, a lone surrogate)
        return False


def sealed_model_hash(*, experiment: str, round_no: int) -> str | None:
    """The model hash sealed for that round (None when none is), read from the sealed payload:
    the entry's lookup columns only find it."""
    return _sealed_model(experiment, round_no)[0]


def _sealed_model(experiment: str, round_no: int) -> tuple[str | None, str]:
    """(model hash, problem) of the global model sealed for that round: (None, "") when none is,
    (None, why) when the entry found is damaged."""
    entry = Entry.objects.filter(kind="global_model", experiment=experiment, round_no=round_no).first()
    if entry is None:
        return None, ""
    payload = _payload(entry)
    if (not isinstance(payload, dict) or chain.lookup_fields(payload)[:2] != (experiment, round_no)
            or not isinstance(payload.get("model_hash"), str) or not _hashes_to_its_hash(entry, payload)):
        return None, (f"the ledger entry sealed for experiment {experiment}, round {round_no} is damaged (its payload "
                      "was modified or belongs to another round): do not use this model; verify the whole chain")
    return payload["model_hash"], ""


def verify_model_hash(*, experiment: str, round_no: int, model_hash: str) -> tuple[bool, str]:
    """A hospital checks the model it received against the hash sealed for that round."""
    sealed, problem = _sealed_model(experiment, round_no)
    if problem:
        return False, problem
    if sealed is None:
        return False, f"no global model is sealed for experiment {experiment}, round {round_no}"
    if sealed != model_hash:
        return False, f"model hash {model_hash[:16]}… differs from the sealed {sealed[:16]}…: do not use this model"
    return True, f"matches the hash sealed on the ledger for round {round_no}"


def block_list(*, experiment: str = "", round_no: int | None = None, hospital: int | None = None) -> QuerySet[Block]:
    blocks = Block.objects.all()
    entries = Entry.objects.all()
    filtered = False
    if experiment:
        entries, filtered = entries.filter(experiment=experiment), True
    if round_no is not None:
        entries, filtered = entries.filter(round_no=round_no), True
    if hospital is not None:
        entries, filtered = entries.filter(hospital=hospital), True
    if filtered:
        blocks = blocks.filter(id__in=entries.values("block_id"))
    return blocks.order_by("-height")
