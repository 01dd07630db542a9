"""Run a federated experiment from the shell, with the options of the launch page."""

import sys
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from fedcore.attacks import ATTACKS
from fedcore.data import parse_whole_number
from fedcore.rounds import DEFENSES
from fedhealth.fields import whole_number_argument
from training import services
from training.models import Dataset, Experiment


class Command(BaseCommand):
    help = "Launch an experiment through Celery (or --eager in this process), show progress, print the results."

    def add_arguments(self, p):
        p.add_argument("--dataset", default="Breast cancer (WDBC)", help="dataset name or id")
        p.add_argument("--name", default="")
        p.add_argument("--model", choices=["mlp", "logreg"], default="mlp")
        p.add_argument("--hospitals", type=whole_number_argument, default=10)
        p.add_argument("--rounds", type=whole_number_argument, default=10)
        p.add_argument("--partition", choices=["iid", "dirichlet"], default="iid")
        p.add_argument("--alpha", type=float, default=0.5)
        p.add_argument("--epochs", type=whole_number_argument, default=2)
        p.add_argument("--lr", type=float, default=0.01)
        p.add_argument("--batch-size", type=whole_number_argument, default=32)
        p.add_argument("--seed", type=whole_number_argument, default=0)
        p.add_argument("--attack", choices=list(ATTACKS), default="none")
        p.add_argument("--fraction", type=float, default=0.3)
        p.add_argument("--defense", choices=list(DEFENSES), default="verification")
        p.add_argument("--plaintext", action="store_true", help="verify in plaintext instead of under SMPC")
        p.add_argument("--eager", action="store_true", help="run the tasks in this process (no broker, no worker)")
        p.add_argument("--timeout", type=float, default=3600)

    def handle(self, *args, **o):
        ds = None
        try:  # an id in plain digits ("١" is a name, as str.isdigit would not say); else, or if no id, a name
            ds = Dataset.objects.filter(pk=parse_whole_number(o["dataset"])).first()
        except ValueError:
            pass
        ds = ds or Dataset.objects.filter(name=o["dataset"]).first()
        if ds is None:
            raise CommandError(f"no dataset {o['dataset']!r}; run load_demo_data or see the datasets page")
        if o["eager"]:
            from fedhealth.celery import app

            app.conf.task_always_eager = True
        try:
            exp = services.experiment_create(
                name=o["name"] or f"shell {ds.name} {o['attack']}/{o['defense']}", dataset=ds, model_kind=o["model"],
                n_hospitals=o["hospitals"], rounds_=o["rounds"], partition=o["partition"], alpha=o["alpha"],
                local_epochs=o["epochs"], learning_rate=o["lr"], batch_size=o["batch_size"], seed=o["seed"],
                attack=o["attack"], malicious_fraction=o["fraction"], defense=o["defense"], encrypted=not o["plaintext"])
        except ValidationError as exc:
            problems = ([f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()] if hasattr(exc, "error_dict")
                        else exc.messages)
            raise CommandError("; ".join(problems)) from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        deadline = time.monotonic() + o["timeout"]
        while True:
            exp.refresh_from_db()
            bar = "#" * (exp.percent // 4)
            sys.stdout.write(f"\r[{bar:<25}] {exp.percent:3d}%  round {min(exp.current_round, exp.rounds)}/{exp.rounds}  hospitals {exp.hospitals_done}/{exp.n_hospitals}  {exp.status}   ")
            sys.stdout.flush()
            if exp.status not in Experiment.ACTIVE or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.stdout.write("")
        if exp.status != Experiment.Status.FINISHED:
            raise CommandError(f"experiment {exp.pk} ended {exp.status}: {exp.error or 'timeout'}")
        for _ in range(40):  # the centralised reference runs as its own task
            if exp.centralised:
                break
            time.sleep(0.5)
            exp.refresh_from_db()
        self.stdout.write(f"{'metric':<12}{'federated':>12}{'centralised':>14}")
        for m in ("accuracy", "precision", "recall", "f1", "roc_auc"):
            fed, cen = (exp.final or {}).get(m), (exp.centralised or {}).get(m)
            self.stdout.write(f"{m:<12}{fed if fed is not None else float('nan'):>12.4f}{cen if cen is not None else float('nan'):>14.4f}")
        if exp.attack != "none" and exp.detection:
            d = exp.detection
            self.stdout.write(f"detection: precision {d['precision']}, recall {d['recall']}, false-positive rate {d['false_positive_rate']}")
        self.stdout.write(f"experiment id {exp.pk}")
