import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ledger.selectors import digest_document, ledger_verify, parse_digest


class Command(BaseCommand):
    help = "Re-hash every entry, rebuild every Merkle root, check every link and seal."

    def add_arguments(self, parser):
        parser.add_argument("--digest", help="check against a digest exported earlier (JSON file)")
        parser.add_argument("--export-digest", help="write the digest of the verified chain to this file")

    def handle(self, *args, digest=None, export_digest=None, **options):
        expected = None
        if digest:
            try:
                expected = parse_digest(Path(digest).read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
        report = ledger_verify(expected_digest=expected)
        if export_digest and report.intact:
            Path(export_digest).write_text(json.dumps(digest_document(report), indent=2))
        if not report.intact:
            raise CommandError(report.summary())
        self.stdout.write(self.style.SUCCESS(report.summary()) + f" ({report.entries} entries)")
