from django.core.management.base import BaseCommand

from training import services
from training.models import Dataset


class Command(BaseCommand):
    help = "Load the built-in healthcare datasets and a small synthetic one (idempotent)."

    def handle(self, *args, **options):
        for name in ("breast_cancer", "pima", "biopsy"):
            services.dataset_create_builtin(name=name)
        if not Dataset.objects.filter(name="Synthetic EHR (20k)").exists():
            services.dataset_create_synthetic(name="Synthetic EHR (20k)", n_rows=20_000, positive_fraction=0.3, seed=0)
        self.stdout.write(f"{Dataset.objects.count()} datasets ready.")
        try:
            from django.core.management import call_command

            call_command("train_detectors", stdout=self.stdout)
        except Exception as exc:  # noqa: BLE001 - the detectors are optional for the demo data
            self.stdout.write(f"Poisoning detectors not trained: {exc}")
