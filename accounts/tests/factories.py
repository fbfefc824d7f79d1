import factory
from django.contrib.auth.models import Group, Permission

from accounts.models import User
from accounts.roles import APPROVE_PERMISSION, APPROVERS_GROUP

TEST_PASSWORD = "a-long-test-password-8731"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password(TEST_PASSWORD)


class ApproverFactory(UserFactory):
    """A member of the approvers group. The group comes from a data migration, which a transactional
    test's flush empties (the flush's post_migrate makes the permission again, not the group), so it
    is made again when it is missing."""

    class Meta:
        skip_postgeneration_save = True  # the hook saves what it changes (the membership)

    @factory.post_generation
    def approvers_group(user, create, extracted, **kwargs):
        if not create:
            return
        group, _ = Group.objects.get_or_create(name=APPROVERS_GROUP)
        app_label, codename = APPROVE_PERMISSION.split(".")
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        user.groups.add(group)
