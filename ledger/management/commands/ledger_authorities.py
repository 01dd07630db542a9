from django.core.management.base import BaseCommand, CommandError

from ledger.models import Authority
from ledger.services import LedgerError, authority_register, ledger_vote


class Command(BaseCommand):
    help = ("List the ledger's sealing authorities, register a candidate, or cast an authority's vote to add or "
            "remove one (the set changes when a strict majority of the active authorities agrees).")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="every authority: name, fingerprint, genesis or voted in, sealing or not")
        register = sub.add_parser("register", help="create a candidate's key pair; it seals once voted in")
        register.add_argument("name")
        vote = sub.add_parser("vote", help="VOTER votes to add or remove SUBJECT (names as `list` shows them)")
        vote.add_argument("voter")
        vote.add_argument("choice", choices=["add", "remove"])
        vote.add_argument("subject")

    def handle(self, *args, action, **options):
        try:
            if action == "register":
                a = authority_register(name=options["name"])
                self.stdout.write(f"{a.name} ({a.fingerprint}) registered; it seals once a majority votes it in.")
            elif action == "vote":
                voter, subject = self._named(options["voter"]), self._named(options["subject"])
                outcome = ledger_vote(voter=voter, action=options["choice"], subject_pem=subject.public_pem)
                change = {"added": f"{subject.name} now seals blocks", "removed": f"{subject.name} no longer seals blocks"}
                self.stdout.write(f"{voter.name}'s vote is on the chain; "
                                  + change.get(outcome, "the change needs more votes") + ".")
        except LedgerError as exc:
            raise CommandError(str(exc)) from exc
        self._list()

    @staticmethod
    def _named(name: str) -> Authority:
        try:
            return Authority.objects.get(name=name)
        except Authority.DoesNotExist:
            known = ", ".join(Authority.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"no authority is named {name!r} (known: {known})") from None

    def _list(self) -> None:
        if not Authority.objects.exists():
            self.stdout.write("No authorities yet: `manage.py ledger_init` creates the genesis set.")
        for a in Authority.objects.order_by("id"):
            origin = "genesis" if a.genesis else "voted" if a.active else "candidate"
            self.stdout.write(f"{a.name:<24} {a.fingerprint}  {origin:<9}  {'sealing' if a.active else 'not sealing'}")
