from django.urls import NoReverseMatch, reverse

from .models import Role


def navigation(request):
    """The navigation of the current user's role (templates/partials/nav.html renders it)."""
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated):
        return {"nav": _resolve([("Log in", "accounts:login"), ("Register", "accounts:register")], request)}
    if user.role == Role.SERVICE_PROVIDER:
        nav = [
            ("Dashboard", "dashboard"),
            ("Datasets", "training:dataset_list"),
            ("Experiments", "training:experiment_list"),
            ("Accuracy results", "training:accuracy_results"),
            ("Accuracy chart", "training:accuracy_chart"),
            ("Predictions", "poisoning:prediction_list"),
            ("Status ratio", "poisoning:ratio_chart"),
            ("Ratio results", "poisoning:ratio_results"),
            ("Detectors", "poisoning:detector_list"),
            ("Ledger", "ledger:block_list"),
            ("Remote users", "accounts:remote_users"),
        ]
    elif user.role == Role.ADMIN:
        nav = [("Users", "accounts:user_list"), ("Audit log", "accounts:audit_log")]
    else:
        nav = [
            ("Home", "remote_home"),
            ("Predict status", "poisoning:predict"),
            ("My predictions", "poisoning:my_predictions"),
            ("Profile", "accounts:profile"),
        ]
    return {"nav": _resolve(nav, request)}


def _resolve(items, request):
    """(label, url, active) for each entry whose page exists."""
    resolved = []
    for label, name in items:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        resolved.append((label, url, request.path == url))
    return resolved
