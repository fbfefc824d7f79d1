from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.admin import sensitive_post_parameters_m
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from accounts import services
from accounts.models import ApiKey, User


class RegistryUserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "email", "is_service_account")


class RegistryUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = RegistryUserChangeForm
    add_form = RegistryUserCreationForm
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "email", "is_service_account", "usable_password", "password1", "password2"),
            },
        ),
    )
    fieldsets = (
        *DjangoUserAdmin.fieldsets[:2],
        ("Roles", {"fields": ("is_active", "is_service_account", "is_staff", "is_superuser", "groups")}),
        ("Permissions", {"classes": ("collapse",), "fields": ("user_permissions",)}),
        *DjangoUserAdmin.fieldsets[3:],
    )
    readonly_fields = ("last_login", "date_joined", "updated_at")
    list_display = ("username", "email", "is_active", "is_service_account", "is_superuser", "date_joined")
    list_filter = ("is_service_account", "is_superuser", "is_active", "groups")

    def save_model(self, request, obj, form, change):
        if obj.is_service_account and obj.has_usable_password():
            # Whatever the form said: a service account signs in with its API keys only.
            obj.set_unusable_password()
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            services.user_deactivated(user=obj)

    @sensitive_post_parameters_m
    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        # Django's view redirects only once the new password is saved (or the object is missing).
        if request.method == "POST" and response.status_code == 302:
            user = self.get_object(request, unquote(id))
            if user is not None:
                own = user.pk == request.user.pk
                services.user_password_changed(user=user, keep_session_key=request.session.session_key if own else None)
        return response


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are listed and revoked here, never made or edited: a key is created by its user (or, for a
    service account, by a superuser) through the page or the API, and its secret exists only once."""

    list_display = ("name", "user", "prefix", "scope", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter))
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("user", "name", "prefix", "scope", "created_at", "expires_at", "last_used_at", "revoked_at")
    exclude = ("secret_hash",)
    actions = ("revoke_selected",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the change page is a read-only view (the view permission)

    @admin.action(description="Revoke selected keys", permissions=("delete",))
    def revoke_selected(self, request, queryset):
        revoked = 0
        for key in queryset.select_related("user").filter(revoked_at__isnull=True):
            services.api_key_revoke(actor=request.user, key=key)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} API key(s); they stop working at once.")
