"""/api/v1/auth/: register, login (username or email), refresh, logout, me."""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password
from rest_framework_simplejwt.views import TokenRefreshView

from accounts import services
from accounts.models import ApiKey, User
from accounts.permissions import IsSuperuser, NotWithApiKey
from accounts.roles import roles_of
from registry.api.serializers import ErrorSerializer, StrictSerializer
from registry.api.throttles import AuthRateThrottle


class UserSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField(help_text="superuser, approver and/or service_account.")

    class Meta:
        model = User
        fields = ("id", "username", "email", "is_superuser", "is_service_account", "roles", "date_joined")
        read_only_fields = fields

    def get_roles(self, user) -> list[str]:
        return roles_of(user)


class ServiceAccountCreateSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")


class RegisterSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, style={"input_type": "password"})


class LoginSerializer(StrictSerializer):
    username = serializers.CharField(required=False, help_text="Username or email address.")
    email = serializers.CharField(required=False, help_text="Email address (instead of username).")
    password = serializers.CharField(write_only=True, style={"input_type": "password"})

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if not (attrs.get("username") or attrs.get("email")):
            raise serializers.ValidationError({"username": ["Give a username or an email address."]})
        return attrs


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField(default="bearer")


class RefreshSerializer(TokenRefreshSerializer):
    refresh = serializers.CharField()
    access = serializers.CharField(read_only=True)

    def validate(self, attrs):
        # SimpleJWT looks the user up with .get(): a deleted user's token would be a 500, not a 401.
        payload = self._payload(attrs["refresh"])
        user_id = payload.get("user_id")
        if user_id is not None:
            user = get_user_model().objects.filter(pk=user_id, is_active=True).only("password").first()
            if user is None:
                raise AuthenticationFailed("No active account found for the given token.", "no_active_account")
            # Issued under an earlier password (changed in a way that did not blacklist it, or a token
            # from before tokens carried the claim): its access tokens would be refused anyway.
            claim = payload.get(jwt_settings.REVOKE_TOKEN_CLAIM)
            if jwt_settings.CHECK_REVOKE_TOKEN and claim != get_md5_hash_password(user.password):
                raise AuthenticationFailed("The user's password has been changed; log in again.", "password_changed")
        return super().validate(attrs)

    def _payload(self, raw: str) -> dict:
        try:
            return RefreshToken(raw).payload
        except TokenError:
            return {}


class LogoutSerializer(StrictSerializer):
    refresh = serializers.CharField()


class RefreshResponseSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


@extend_schema(tags=["auth"])
class RegisterView(GenericAPIView):
    """Create an account (403 when registration is closed)."""

    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [AuthRateThrottle]
    serializer_class = RegisterSerializer

    @extend_schema(
        responses={
            201: UserSerializer,
            400: OpenApiResponse(description="Field errors"),
            403: ErrorSerializer,
            429: OpenApiResponse(ErrorSerializer, description="Too many attempts from this client address"),
        },
        examples=[
            OpenApiExample(
                "New account",
                value={"username": "ada", "email": "ada@example.com", "password": "a long passphrase"},
                request_only=True,
            )
        ],
    )
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["auth"])
class LoginView(GenericAPIView):
    """Exchange a username (or email) and password for an access and a refresh token."""

    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [AuthRateThrottle]
    serializer_class = LoginSerializer

    def get_authenticate_header(self, request):
        # Without authentication classes DRF would answer bad credentials with 403, not 401.
        return 'Bearer realm="api"'

    @extend_schema(
        responses={
            200: TokenPairSerializer,
            401: ErrorSerializer,
            429: OpenApiResponse(
                ErrorSerializer,
                description="Too many attempts from this client address, or sign-in locked out after repeated "
                "failures for this username or address (Retry-After says when to try again)",
            ),
        },
        examples=[
            OpenApiExample(
                "By username", value={"username": "ada", "password": "a long passphrase"}, request_only=True
            ),
            OpenApiExample(
                "By email", value={"email": "ada@example.com", "password": "a long passphrase"}, request_only=True
            ),
        ],
    )
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            user = services.user_authenticate(
                request=request, login=data.get("username") or data["email"], password=data["password"]
            )
        except services.SignInLockedOut as locked:
            raise Throttled(wait=locked.retry_after, detail=str(locked)) from None
        if user is None:
            raise AuthenticationFailed(services.failed_sign_in_message())
        if refusal := services.api_password_sign_in_refusal(user):
            raise AuthenticationFailed(refusal)
        refresh = RefreshToken.for_user(user)
        return Response({"access": str(refresh.access_token), "refresh": str(refresh), "token_type": "bearer"})


@extend_schema(tags=["auth"], responses={200: RefreshResponseSerializer, 401: ErrorSerializer})
class RefreshView(TokenRefreshView):
    """Trade a refresh token for a new access token and a new refresh token; the old one stops working."""

    serializer_class = RefreshSerializer
    throttle_classes = [AuthRateThrottle]


@extend_schema(tags=["auth"])
class LogoutView(GenericAPIView):
    """Revoke a refresh token of the signed-in user."""

    permission_classes = [IsAuthenticated]
    serializer_class = LogoutSerializer

    @extend_schema(responses={205: None, 400: OpenApiResponse(description="Field errors")})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            token = RefreshToken(serializer.validated_data["refresh"])
        except TokenError as error:
            raise serializers.ValidationError({"refresh": [str(error)]}) from None
        if str(token.payload.get("user_id")) != str(request.user.pk):
            raise serializers.ValidationError({"refresh": ["This refresh token belongs to another user."]})
        token.blacklist()
        return Response(status=status.HTTP_205_RESET_CONTENT)


@extend_schema(tags=["auth"])
class MeView(GenericAPIView):
    """The signed-in user."""

    serializer_class = UserSerializer

    def get(self, request):
        return Response(self.get_serializer(request.user).data)


@extend_schema(tags=["service accounts"])
class ServiceAccountsView(GenericAPIView):
    """Accounts for pipelines (superusers only): no password sign-in; they act through API keys."""

    permission_classes = [IsSuperuser]
    serializer_class = ServiceAccountCreateSerializer
    queryset = User.objects.none()

    @extend_schema(summary="List service accounts", responses=UserSerializer(many=True))
    def get(self, request):
        accounts = User.objects.filter(is_service_account=True).order_by("username")
        page = self.paginate_queryset(accounts)
        return self.get_paginated_response(UserSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a service account",
        responses={201: UserSerializer, 400: OpenApiResponse(description="Field errors"), 403: ErrorSerializer},
    )
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = services.service_account_create(actor=request.user, **serializer.validated_data)
        return Response(UserSerializer(account).data, status=status.HTTP_201_CREATED)


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ("id", "name", "prefix", "scope", "created_at", "expires_at", "last_used_at")
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The full key. Shown in this answer only: store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = (*ApiKeySerializer.Meta.fields, "key")
        read_only_fields = fields


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=ApiKey.Scope.choices)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Never expires when absent.")


def _created_key(*, actor, user, data: dict) -> Response:
    """A new key of ``user``, answered with the full key: the only time it is shown."""
    key, raw = services.api_key_create(actor=actor, user=user, **data)
    return Response({**ApiKeySerializer(key).data, "key": raw}, status=status.HTTP_201_CREATED)


@extend_schema(tags=["auth"])
class ApiKeyViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The signed-in user's API keys. Managed with a password or SSO sign-in (a JWT or a session),
    never with a key (403): a stolen key cannot mint more."""

    permission_classes = [IsAuthenticated, NotWithApiKey]
    serializer_class = ApiKeySerializer
    queryset = ApiKey.objects.none()  # for the schema; requests get their user's keys below

    def get_queryset(self):
        return ApiKey.objects.filter(user=self.request.user, revoked_at__isnull=True)

    def get_serializer_class(self):
        return ApiKeyCreateSerializer if self.action == "create" else ApiKeySerializer

    @extend_schema(summary="List your API keys (never the keys themselves)")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Create an API key",
        responses={
            201: ApiKeyCreatedSerializer,
            400: OpenApiResponse(description="Field errors"),
            403: ErrorSerializer,
        },
        examples=[
            OpenApiExample("A pipeline's key", value={"name": "nightly-training", "scope": "write"}, request_only=True)
        ],
    )
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _created_key(actor=request.user, user=request.user, data=serializer.validated_data)

    @extend_schema(summary="Revoke an API key (it stops working at once)", responses={204: None, 404: ErrorSerializer})
    def destroy(self, request, pk=None):
        services.api_key_revoke(actor=request.user, key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["service accounts"])
class ServiceAccountApiKeysView(GenericAPIView):
    """Make an API key for a service account: superusers, signed in with a password or SSO (a key
    cannot mint keys, for its own user or any other)."""

    permission_classes = [IsSuperuser, NotWithApiKey]
    serializer_class = ApiKeyCreateSerializer
    queryset = User.objects.none()

    @extend_schema(
        summary="Create an API key for a service account",
        responses={
            201: ApiKeyCreatedSerializer,
            400: OpenApiResponse(description="Field errors"),
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def post(self, request, pk: int):
        account = get_object_or_404(User.objects.filter(is_service_account=True), pk=pk)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _created_key(actor=request.user, user=account, data=serializer.validated_data)
