from accounts.tests.access import Row, api_only, only


def _entry(f):
    from ledger.models import Entry
    from ledger.services import ledger_append

    ledger_append(entries=[("note", {"experiment": "x", "round": 1, "hospital": 2, "n": f["make_user"]().pk})])
    return {"pk": Entry.objects.latest("id").pk}


def _block(f):
    _entry(f)
    return {"height": 0}


ROWS = [
    only("ledger:block_list", "provider"),
    only("ledger:block_detail", "provider", kwargs=_block),
    only("ledger:entry_detail", "provider", kwargs=_entry),
    only("ledger:verify", "provider"),
    only("ledger:digest", "provider"),
    api_only("api_ledger_blocks", "provider"),
    api_only("api_ledger_verify", "provider"),
    api_only("api_ledger_proof", "provider", kwargs=_entry),
    Row("api_ledger_model_check", {"anonymous": 401, "pending": 403, "remote": 200, "provider": 200, "admin": 403},
        api=True, data={"experiment": "x", "round": 1, "model_hash": "ab"}),
]
