from django.core.management import call_command
from django.core.management.base import BaseCommand

from training import services
from training.models import Dataset, Experiment


class Command(BaseCommand):
    help = ("Load the built-in healthcare datasets and a small synthetic one, train the poisoning-status "
            "predictors and queue one small attacked demo experiment (idempotent).")

    def handle(self, *args, **options):
        for name in ("breast_cancer", "pima", "biopsy"):
            services.dataset_create_builtin(name=name)
        if not Dataset.objects.filter(name="Synthetic EHR (20k)").exists():
            services.dataset_create_synthetic(name="Synthetic EHR (20k)", n_rows=20_000, positive_fraction=0.3, seed=0)
        self.stdout.write(f"{Dataset.objects.count()} datasets ready.")
        call_command("train_detectors", stdout=self.stdout)
        if not Experiment.objects.exists():
            exp = services.experiment_create(
                name="Demo: label flipping vs verification", dataset=Dataset.objects.get(builtin_name="pima"),
                model_kind="logreg", n_hospitals=8, rounds_=5, attack="label_flip", malicious_fraction=0.25,
                defense="verification", encrypted=True, seed=1)
            services.experiment_serve(experiment=exp)  # remote users' risk estimates, once it has finished
            self.stdout.write(f"Demo experiment #{exp.pk} queued; the worker runs it as soon as it starts.")
