from allauth.account import forms as allauth_forms
from django import forms
from django.conf import settings


class RegisterForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username"}))
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password"].help_text = (
            f"At least {settings.PASSWORD_MIN_LENGTH} characters; not a common or all-numeric password, "
            "nor one too like your username or email."
        )


class LoginForm(allauth_forms.LoginForm):
    """allauth's sign-in form, labelled for what it takes here (its link to a password reset by email is
    gone with templates/account/password_reset_help_text.html: the registry sends no mail)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "Username or email"
        self.fields["login"].widget.attrs.update(placeholder="", autocomplete="username")
        self.fields["password"].widget.attrs.update(placeholder="")
