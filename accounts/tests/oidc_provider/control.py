"""Changes to the provider's database, run in a process of its own with the provider's settings.

    python -m accounts.tests.oidc_provider.control COMMAND JSON-ARGUMENTS

The test process runs the registry's settings, so it cannot open this project's models itself.
"""

import json
import os
import sys

import django


def init(client_id: str, client_secret: str) -> None:
    from allauth.idp.oidc.models import Client
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    client = Client(
        id=client_id,
        name="registry",
        type=Client.Type.CONFIDENTIAL,
        skip_consent=True,
        scopes="openid\nprofile\nemail",
        grant_types=Client.GrantType.AUTHORIZATION_CODE,
        response_types=Client.ResponseType.CODE,
    )
    client.set_secret(client_secret)
    client.save()


def register_redirect_uri(client_id: str, uri: str) -> None:
    from allauth.idp.oidc.models import Client

    client = Client.objects.get(id=client_id)
    client.set_redirect_uris([uri])
    client.save(update_fields=["redirect_uris"])


def set_user(username: str, password: str, email: str, groups: list[str]) -> None:
    from allauth.account.models import EmailAddress
    from django.contrib.auth.models import Group, User
    from django.db import transaction

    with transaction.atomic():
        user, _ = User.objects.get_or_create(username=username)
        user.email = email
        user.set_password(password)
        user.save()
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in groups])
        # The IdP takes the email claim from allauth's addresses, not from User.email.
        EmailAddress.objects.filter(user=user).delete()
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)


COMMANDS = {"init": init, "register_redirect_uri": register_redirect_uri, "set_user": set_user}

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "accounts.tests.oidc_provider.settings")
    django.setup()
    COMMANDS[sys.argv[1]](**json.loads(sys.argv[2]))
