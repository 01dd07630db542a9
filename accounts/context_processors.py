from django.urls import NoReverseMatch, reverse

from .models import Role

# The provider's result pages, grouped under one menu so that the top bar fits on one line.
PROVIDER_RESULTS = [
    ("Accuracy results", "training:accuracy_results"),
    ("Accuracy chart", "training:accuracy_chart"),
    ("Status ratio chart", "poisoning:ratio_chart"),
    ("Status ratio results", "poisoning:ratio_results"),
]


def navigation(request):
    """The navigation of the current user's role (templates/base.html renders it).

    Each entry is a dict: ``label``, ``url``, ``active`` (the page is this entry's or under it, as
    a dataset's page is under Datasets), ``current`` (the page is this entry's), and for a menu
    ``children`` (entries of the same shape, ``url`` then empty)."""
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated):
        return {"nav": _resolve([("Log in", "accounts:login"), ("Register", "accounts:register")], request)}
    if user.role == Role.SERVICE_PROVIDER:
        nav = [
            ("Dashboard", "dashboard"),
            ("Datasets", "training:dataset_list"),
            ("Experiments", "training:experiment_list"),
            ("Results", PROVIDER_RESULTS),
            ("Predictions", "poisoning:prediction_list"),
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
    """The entries of the pages that exist (a menu none of whose pages exist is left out), the
    one whose address is the longest start of the current page's marked active."""
    urls = {}
    for label, target in items:
        for _child, name in (target if isinstance(target, list) else [(label, target)]):
            try:
                urls[name] = reverse(name)
            except NoReverseMatch:
                pass
    section = max((u for u in urls.values() if request.path.startswith(u)), key=len, default=None)

    def entry(label, name):
        url = urls[name]
        return {"label": label, "url": url, "active": url == section, "current": url == request.path, "children": []}

    resolved = []
    for label, target in items:
        if isinstance(target, list):
            children = [entry(child, name) for child, name in target if name in urls]
            if children:
                resolved.append({"label": label, "url": "", "active": any(c["active"] for c in children),
                                 "current": False, "children": children})
        elif target in urls:
            resolved.append(entry(label, target))
    return resolved
