from accounts.tests.access import LOGIN, REDIRECT, Row, api_only, only


def _dataset(f):
    from training.services import dataset_create_builtin

    return {"pk": dataset_create_builtin(name="pima").pk}


def _experiment(f):
    from training.services import dataset_create_builtin, experiment_create

    exp = experiment_create(name="x", dataset=dataset_create_builtin(name="pima"), n_hospitals=3, rounds_=1, launch=False)
    return {"pk": exp.pk}


ROWS = [
    only("training:dataset_list", "provider"),
    only("training:dataset_upload", "provider"),
    only("training:dataset_synthetic", "provider"),
    only("training:dataset_detail", "provider", kwargs=_dataset),
    only("training:experiment_list", "provider"),
    only("training:experiment_create", "provider"),
    only("training:experiment_detail", "provider", kwargs=_experiment),
    only("training:experiment_progress", "provider", kwargs=_experiment),
    # a queued experiment that was never launched: cancelling it works and redirects
    only("training:experiment_cancel", "provider", ok=REDIRECT, method="post", kwargs=_experiment),
    # an experiment without attack needs no references: a message and back to its page
    only("training:experiment_references", "provider", ok=REDIRECT, method="post", kwargs=_experiment),
    only("training:experiment_serve", "provider", ok=REDIRECT, method="post", kwargs=_experiment),
    only("training:accuracy_results", "provider"),
    only("training:accuracy_chart", "provider"),
    api_only("api_training_datasets", "provider"),
    api_only("api_training_dataset", "provider", kwargs=_dataset),
    api_only("api_training_dataset_upload", "provider", ok=400, method="post"),
    Row("api_training_experiments", {"anonymous": 401, "pending": 403, "remote": 403, "provider": 200, "admin": 403}, api=True),
    api_only("api_training_experiment", "provider", kwargs=_experiment),
    api_only("api_training_results", "provider", kwargs=_experiment),
    api_only("api_training_cancel", "provider", method="post", kwargs=_experiment),
]

__all__ = ["LOGIN", "ROWS"]
