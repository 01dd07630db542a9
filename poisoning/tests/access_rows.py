from accounts.tests.access import LOGIN, REDIRECT, Row, api_only, only
from training.tests.access_rows import _experiment


def _detector(f):
    """A stored version whose model blob is damaged: activating it is refused with a message (and a redirect)."""
    from poisoning.models import Detector
    from training.services import dataset_create_builtin

    det = Detector.objects.create(dataset=dataset_create_builtin(name="pima"), version=1, classifier="logreg", scores={},
                                  poison_fraction=0.2, model_blob=b"x", model_sha256="0" * 64)
    return {"pk": det.pk}


NO_BATCH = {"batch": "00000000-0000-4000-8000-000000000000"}

ROWS = [
    only("poisoning:detector_list", "provider"),
    only("poisoning:detector_train", "provider", ok=400, method="post"),
    only("poisoning:detector_activate", "provider", ok=REDIRECT, method="post", kwargs=_detector),
    only("poisoning:predict", "remote"),
    only("poisoning:predict_batch", "remote", ok=400, method="post"),
    only("poisoning:my_predictions", "remote"),
    # a batch that is not theirs (here: nobody's) is not found, for owners and the provider alike
    Row("poisoning:batch_download", {"anonymous": LOGIN, "pending": LOGIN, "remote": 404, "provider": 404, "admin": 403},
        kwargs=NO_BATCH),
    only("poisoning:prediction_list", "provider"),
    only("poisoning:download", "provider"),
    only("poisoning:experiment_updates_csv", "provider", kwargs=_experiment),
    only("poisoning:ratio_chart", "provider"),
    only("poisoning:ratio_results", "provider"),
    Row("api_poisoning_detectors", {"anonymous": 401, "pending": 403, "remote": 200, "provider": 200, "admin": 403}, api=True),
    Row("api_poisoning_predictions", {"anonymous": 401, "pending": 403, "remote": 200, "provider": 200, "admin": 403}, api=True),
    # posting a prediction is the remote user's; an empty payload is refused field by field
    Row("api_poisoning_predictions", {"anonymous": 401, "pending": 403, "remote": 400, "provider": 403, "admin": 403},
        api=True, method="post"),
    api_only("api_poisoning_batch", "remote", ok=400, method="post"),
    api_only("api_poisoning_export", "provider"),
    api_only("api_poisoning_ratio", "provider"),
    api_only("api_poisoning_updates", "provider", kwargs=_experiment),
]
