from django.core.management.base import BaseCommand

from fedhealth.fields import whole_number_argument
from ledger.services import ledger_init


class Command(BaseCommand):
    help = "Create the ledger's genesis authorities (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--authorities", type=whole_number_argument, default=None)

    def handle(self, *args, authorities=None, **options):
        auths = ledger_init(authorities=authorities)
        self.stdout.write(f"{len(auths)} ledger authorities: " + ", ".join(a.name for a in auths))
