from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import selectors, services
from .forms import LoginForm, ProfileForm, RegistrationForm, UserSearchForm
from .models import Role, Status, User
from .permissions import ADMIN, PROVIDER, REMOTE, role_required

HOME_BY_ROLE = {PROVIDER: "dashboard", ADMIN: "accounts:user_list", REMOTE: "remote_home"}


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


def home(request: HttpRequest) -> HttpResponse:
    """The landing URL after login: each role to its own dashboard."""
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    return redirect(HOME_BY_ROLE[request.user.role])


def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:home")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.user_register(
                username=data["username"],
                password=data["password1"],
                **{f: data[f] for f in services.PROFILE_FIELDS},
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)  # a clash may name a field the form does not have
        else:
            messages.success(
                request,
                "Registration received. An administrator must authorize your account before you can log in.",
            )
            return redirect("accounts:login")
    return render(request, "accounts/register.html", {"form": form})


@role_required(REMOTE, PROVIDER, ADMIN)
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request.user, prefix="profile")
    if request.method == "POST" and form.is_valid():
        try:
            services.user_update_profile(user=request.user, **{f: form.cleaned_data[f] for f in form.fields})
        except ValidationError as exc:
            request.user.refresh_from_db()  # the page shows the account as stored, beside the form's errors
            form.add_error(None, exc.messages)  # a clash may name a field the form does not have
        else:
            messages.success(request, "Your profile was saved.")
            return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


@role_required(REMOTE, PROVIDER, ADMIN)
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)
        messages.success(request, "Your password was changed.")
        return redirect("accounts:profile")
    return render(request, "accounts/password_change.html", {"form": form})


def _paginate(request: HttpRequest, queryset, per_page: int = 25):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


@role_required(ADMIN)
def user_list(request: HttpRequest) -> HttpResponse:
    form = UserSearchForm(request.GET or None)
    if not form.is_bound:
        users = selectors.user_list()
    elif form.is_valid():
        f = form.cleaned_data
        users = selectors.user_list(query=f["q"], status=f["status"], role=f["role"])
    else:  # a filter that cannot apply (a NUL, an unknown role) matches nobody; the page says why
        users = selectors.user_list().none()
    return render(
        request,
        "accounts/user_list.html",
        {
            "form": form,
            "page": _paginate(request, users),
            "counts": selectors.user_status_counts(),
            "Status": Status,
        },
    )


@role_required(ADMIN)
@require_POST
def user_set_status(request: HttpRequest, pk: int, status: str) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    if status not in (Status.AUTHORIZED, Status.REVOKED):
        messages.error(request, "Unknown action.")
    else:
        try:
            services.user_set_status(user=user, status=status, actor=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            verb = "authorized" if status == Status.AUTHORIZED else "revoked"
            messages.success(request, f"{user.username} is now {verb}.")
    nxt = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return redirect(nxt if nxt and safe else "accounts:user_list")


@role_required(ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/audit_log.html", {"events": selectors.authorization_events(limit=200)})


@role_required(PROVIDER)
def remote_users(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:100]
    return render(
        request,
        "accounts/remote_users.html",
        {"page": _paginate(request, selectors.remote_user_list(query=query)), "q": query, "Role": Role},
    )
