"""A separate process appending to the ledger (imported by spawn before Django is set up)."""

import os


def append_many(worker: int, n: int, env: dict) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from ledger.services import ledger_append

    for i in range(n):
        ledger_append(entries=[("load", {"worker": worker, "i": i, "j": j}) for j in range(3)])
