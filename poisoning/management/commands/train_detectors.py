from django.core.management.base import BaseCommand, CommandError

from fedhealth.fields import whole_number_argument
from poisoning import services
from poisoning.models import Detector
from training.models import Dataset


class Command(BaseCommand):
    help = "Train the poisoning-status classifiers per dataset and activate the best (skips datasets that have one unless --force)."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", action="append", help="dataset name (repeatable); default: every dataset")
        parser.add_argument("--fraction", type=float, default=0.2, help="share of poisoned records (0.05-0.45)")
        parser.add_argument("--seed", type=whole_number_argument, default=0)
        parser.add_argument("--force", action="store_true", help="train a new version even if one is active")

    def handle(self, *args, **opts):
        if not 0.05 <= opts["fraction"] <= 0.45:
            raise CommandError("--fraction must be between 0.05 and 0.45")
        datasets = Dataset.objects.all()
        if opts["dataset"]:
            datasets = datasets.filter(name__in=opts["dataset"])
            unknown = set(opts["dataset"]) - set(datasets.values_list("name", flat=True))
            if unknown:
                raise CommandError(f"unknown dataset(s): {', '.join(sorted(unknown))}")
        for ds in datasets:
            if not opts["force"] and Detector.objects.filter(dataset=ds, active=True).exists():
                self.stdout.write(f"{ds.name}: predictor already active (use --force for a new version)")
                continue
            det = services.detector_train(dataset=ds, poison_fraction=opts["fraction"], seed=opts["seed"])
            table = "  ".join(f"{n} F1={s['f1']:.3f} (cv {'—' if s['cv_f1'] is None else format(s['cv_f1'], '.3f')})"
                              for n, s in det.scores.items())
            self.stdout.write(f"{ds.name}: v{det.version} active = {det.classifier} (best cross-validated F1); "
                              f"F1 on the held-out test records (cv: on the training records)\n  {table}")
