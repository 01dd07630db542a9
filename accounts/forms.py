from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from .middleware import status_message
from .models import User
from .services import PROFILE_FIELDS, normalize_username, taken


class LoginForm(AuthenticationForm):
    """Tells pending and revoked users why they cannot log in (only once the password is right,
    so the status of an account is not revealed to someone guessing)."""

    def confirm_login_allowed(self, user: User) -> None:
        if not user.is_active:
            raise ValidationError(status_message(user.status), code=user.status)


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = list(PROFILE_FIELDS)
        widgets = {"address": forms.TextInput()}

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if self.instance.pk and email == self.instance.email:
            return email  # unchanged: an edit of the other fields is not refused for a clash stored before
        clash = taken(email=email, exclude_pk=self.instance.pk).get("email")
        if clash:
            raise ValidationError(clash)
        return email


class RegistrationForm(ProfileForm):
    username = forms.CharField(
        max_length=150, help_text="Letters, digits and @/./+/-/_ only; 150 characters at most."
    )
    password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                                help_text=password_validation.password_validators_help_text_html())
    password2 = forms.CharField(label="Password (again)", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    class Meta(ProfileForm.Meta):
        fields = ["username", *PROFILE_FIELDS]

    def clean_username(self) -> str:
        username = normalize_username(self.cleaned_data["username"])  # checked as it will be stored
        limit = User._meta.get_field("username").max_length
        if len(username) > limit:
            raise ValidationError(f"This username has {len(username):,} characters as stored (some characters "
                                  f"stand for several); at most {limit} are allowed.")
        User.username_validator(username)
        clash = taken(username=username).get("username")
        if clash:
            raise ValidationError(clash)
        return username

    def clean(self) -> dict:
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords do not match.")
        elif p1:
            candidate = User(**{f: data.get(f, "") for f in ("username", "email", "full_name")})
            try:
                password_validation.validate_password(p1, candidate)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data


class UserSearchForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=100)
    status = forms.ChoiceField(required=False, choices=[("", "Any status")] + list(User._meta.get_field("status").choices))
    role = forms.ChoiceField(required=False, choices=[("", "Any role")] + list(User._meta.get_field("role").choices))


