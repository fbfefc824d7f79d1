"""Every route of the project refuses anonymous requests, except an explicit allowlist.

The walker below visits every URL pattern of a urlconf (recursively through includes), builds a concrete
URL for it, sends an anonymous GET, POST, PUT, PATCH and DELETE, and reports each answer that is not a
refusal: 401 or 403 (the API) or a redirect to the login page (HTML pages). A route added without
protection therefore fails ``test_every_route_refuses_anonymous_requests``; the tests after it prove that
the walker notices such a route.
"""

from __future__ import annotations

import contextlib
import io
import sys
import types
import uuid
from dataclasses import dataclass, field

# re's own parser (the project targets Python 3.11+), so generated URLs follow re's reading of a pattern.
from re import _constants as sre_constants
from re import _parser as sre_parse
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, include, path, re_path, resolve, reverse
from django.urls.converters import IntConverter, PathConverter, SlugConverter, StringConverter, UUIDConverter
from django.urls.resolvers import RegexPattern, RoutePattern

from experiments.tests.factories import ExperimentFactory
from mlmodels import services
from mlmodels.tests.factories import MLModelFactory

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# Routes that may answer anonymous requests, each with its reason. Keys are URL names (namespaced) or,
# for an unnamed pattern, its full route as ``Route.route`` spells it. Nothing else is allowed in.
PUBLIC_ROUTES = {
    # API auth: how an anonymous client becomes a signed-in one.
    "api:auth-login": "exchanges credentials for tokens",
    "api:auth-register": "creates an account (403 when REGISTRATION_OPEN is false)",
    "api:auth-refresh": "trades a refresh token (the credential itself) for new tokens",
    # The browsable API's session login and logout pages (rest_framework.urls).
    "rest_framework:login": "session login form of the browsable API",
    "rest_framework:logout": "session logout of the browsable API",
    # Operations endpoints and API documentation: monitors, and people exploring the API, have no account.
    "health": "load balancers and monitors probe it without credentials",
    # MLflow's REST API answers a path it does not serve with its ENDPOINT_NOT_FOUND, signed in or not:
    # it reads nothing and tells nothing but that the path is not served.
    "mlflow-endpoint-not-found": "MLflow's ENDPOINT_NOT_FOUND for paths the MLflow API does not serve",
    "mlflow-artifacts-endpoint-not-found": "the same for paths under mlflow-artifacts/ it does not serve",
    # MLflow's server-info: what the server offers (no multipart, no workspaces), fixed flags that name
    # no object or user; public in MLflow too ("clients use it to learn how the server is set up
    # before they authenticate").
    "mlflow-server-info": "MLflow's fixed capability flags, asked before signing in",
    "schema": "the OpenAPI schema",
    "swagger-ui": "Swagger UI, reading the public schema",
    # The login pages (where every other page sends anonymous visitors) and self-registration.
    "admin:login": "the admin login page",
    "login": "the dashboard's login page",
    "register": "creates an account (a 403 page when REGISTRATION_OPEN is false)",
    "logout": "logging out needs no account (it only ends a session, POST only)",
    # allauth's sign-in pages (accounts.urls includes allauth.urls): where single sign-on starts, where
    # the IdP sends the browser back, and what a failed sign-in shows.
    "account_inactive": "tells a deactivated user that their account is inactive",
    "openid_connect_login": "starts a single sign-on (404 for an unknown provider)",
    "openid_connect_callback": "where the IdP sends the browser back; allauth checks state and nonce",
    "socialaccount_login_cancelled": "what a cancelled single sign-on shows",
    "socialaccount_login_error": "what a failed single sign-on shows",
    "accounts/social/login/cancelled/": "allauth's old address of the page above (a redirect to it)",
    "accounts/social/login/error/": "allauth's old address of the page above (a redirect to it)",
    "accounts/signup/": "allauth's registration address, redirected to the registry's own",
    "not-offered": "allauth's password reset and email pages, a 404 here: the registry sends no mail",
    # Static files: whitenoise serves them outside the urlconf today; should django.conf.urls.static's
    # static() pattern ever be added (it is unnamed), its files are public assets.
    "^static/(?P<path>.*)$": "public assets (css, js)",
    # Browsers fetch /favicon.ico on their own, signed in or not: it redirects to the public static icon.
    "favicon": "redirects to the static favicon.svg, a public asset",
    # Any unknown path under /api/ answers a JSON 404 (registry.api.errors.api_not_found): it serves
    # nothing, whoever asks.
    "^api/": "the JSON 404 catch-all under /api/",
}
# Deliberately NOT in the list: /api/v1/files/signed/<token>. Its signed token stands in for the sign-in,
# so an anonymous request with a bad token must be refused with 403, which counts as protected.

# Values that give each URL parameter a plausible, resolvable value, by parameter name first, then by
# path() converter; re_path groups without a match here get a value generated from their regex.
VALUES_BY_NAME = {
    "pk": ("1",),
    "id": ("1",),
    "object_id": ("1",),
    "content_type_id": ("1",),
    "number": ("1",),
    # DRF's format suffix: "json" in re_path routes, ".json" through its drf_format_suffix converter.
    "format": ("json", ".json"),
    "token": ("x",),
    "path": ("users/1/models/1/v1/x.bin",),
}
VALUES_BY_CONVERTER = {
    IntConverter: "1",
    PathConverter: "users/1/models/1/v1/x.bin",
    SlugConverter: "x",
    StringConverter: "x",
    UUIDConverter: str(uuid.UUID(int=1)),
}
GENERIC_VALUES = ("1", "x", "users/1/models/1/v1/x.bin")


@dataclass(frozen=True)
class Route:
    route: str  # every level's pattern joined as ResolverMatch.route does: "api/v1/models/(?P<pk>[^/.]+)/$"
    name: str | None  # namespaced URL name, e.g. "api:models-detail"
    url: str  # a concrete URL that resolves to this pattern
    callback: object = field(compare=False, repr=False)

    @property
    def key(self) -> str:
        return self.name or self.route


@dataclass(frozen=True)
class Finding:
    route: str
    name: str | None
    method: str
    url: str
    status: int
    location: str = ""

    def __str__(self) -> str:
        where = f" -> {self.location}" if self.location else ""
        return f"{self.method:6} {self.url}  [{self.name or self.route}]  answered {self.status}{where}"


@dataclass
class Walk:
    routes: list[Route]
    findings: list[Finding]  # answers to anonymous requests that are not refusals
    errors: list[str]  # patterns the walker could not turn into a URL resolving back to them


# --- building concrete URLs ---------------------------------------------------------------------------


class _Unsupported(Exception):
    pass


_CANDIDATE_CHARS = "x1a0Z-_.~" + "".join(chr(c) for c in range(33, 127))


def _in_class(items, char: str) -> bool:
    code = ord(char)
    negate = False
    hit = False
    for op, av in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            hit = hit or code == av
        elif op is sre_constants.RANGE:
            hit = hit or av[0] <= code <= av[1]
        elif op is sre_constants.CATEGORY:
            tests = {
                sre_constants.CATEGORY_DIGIT: char.isdigit(),
                sre_constants.CATEGORY_NOT_DIGIT: not char.isdigit(),
                sre_constants.CATEGORY_WORD: char.isalnum() or char == "_",
                sre_constants.CATEGORY_NOT_WORD: not (char.isalnum() or char == "_"),
                sre_constants.CATEGORY_SPACE: char.isspace(),
                sre_constants.CATEGORY_NOT_SPACE: not char.isspace(),
            }
            if av not in tests:
                raise _Unsupported(f"character category {av}")
            hit = hit or tests[av]
        else:
            raise _Unsupported(f"character class item {op}")
    return hit != negate


def _pieces(parsed, names: dict[int, str]) -> list[tuple[str | None, str]]:
    """A shortest-ish string the parsed regex matches, as (group name or None, text) pieces. An optional
    single element (``/?``) is included, so trailing slashes appear as DRF clients send them."""
    out: list[tuple[str | None, str]] = []
    for op, av in parsed:
        if op is sre_constants.LITERAL:
            out.append((None, chr(av)))
        elif op is sre_constants.NOT_LITERAL:
            out.append((None, next(c for c in _CANDIDATE_CHARS if ord(c) != av)))
        elif op is sre_constants.ANY:
            out.append((None, "x"))
        elif op is sre_constants.IN:
            char = next((c for c in _CANDIDATE_CHARS if _in_class(av, c)), None)
            if char is None:
                raise _Unsupported(f"no printable character in class {av}")
            out.append((None, char))
        elif op in (
            sre_constants.MAX_REPEAT,
            sre_constants.MIN_REPEAT,
            getattr(sre_constants, "POSSESSIVE_REPEAT", None),
        ):
            low, high, sub = av
            count = low if low > 0 else (1 if high == 1 else 0)
            for _ in range(count):
                out.extend(_pieces(sub, names))
        elif op is sre_constants.SUBPATTERN:
            group, _add_flags, _del_flags, sub = av
            inner = _pieces(sub, names)
            if group in names:
                out.append((names[group], "".join(text for _, text in inner)))
            else:
                out.extend(inner)
        elif op is sre_constants.BRANCH:
            out.extend(_pieces(av[1][0], names))
        elif op is sre_constants.AT:
            continue  # ^, $, \A, \Z: anchors match no text
        else:
            raise _Unsupported(f"regex operator {op}")
    return out


def _candidates(pattern, name: str) -> list[str]:
    values = []
    values.extend(VALUES_BY_NAME.get(name, ()))
    if isinstance(pattern, RoutePattern):
        converter = pattern.converters.get(name)
        for converter_class, value in VALUES_BY_CONVERTER.items():
            if type(converter) is converter_class:
                values.append(value)
    values.extend(GENERIC_VALUES)
    return values


def concrete_part(pattern, values: dict[str, str] | None = None) -> str:
    """A concrete URL part matched by one level's pattern (a path() route or a re_path regex), with each
    parameter given a plausible value; ``values`` overrides the defaults by parameter name."""
    regex = pattern.regex
    names = {index: name for name, index in regex.groupindex.items()}
    pieces = _pieces(sre_parse.parse(regex.pattern, regex.flags), names)

    def matches(candidate_pieces) -> bool:
        text = "".join(text for _, text in candidate_pieces)
        match = regex.match(text)
        return bool(match) and match.end() == len(text)

    if not matches(pieces):
        raise _Unsupported(f"generated text does not match {regex.pattern!r}")
    for index, (name, _text) in enumerate(pieces):
        if name is None:
            continue
        preferred = [*([values[name]] if values and name in values else []), *_candidates(pattern, name)]
        for candidate in preferred:
            trial = [*pieces[:index], (name, candidate), *pieces[index + 1 :]]
            match = regex.match("".join(text for _, text in trial))
            if matches(trial) and match.group(name) == candidate:
                pieces = trial
                break
    return "".join(text for _, text in pieces)


def iter_routes(urlconf=None, values: dict[str, str] | None = None) -> tuple[list[Route], list[str]]:
    """Every endpoint of ``urlconf`` (default: ROOT_URLCONF) with a concrete URL that resolves to it."""
    routes: list[Route] = []
    errors: list[str] = []

    def visit(patterns, prefix_route: str, prefix_url: str, namespace: str | None) -> None:
        for entry in patterns:
            route = URLResolver._join_route(prefix_route, str(entry.pattern))
            try:
                url = prefix_url + concrete_part(entry.pattern, values)
            except _Unsupported as error:
                errors.append(f"{route}: cannot build a URL ({error})")
                continue
            if isinstance(entry, URLResolver):
                inner = entry.namespace
                child_namespace = f"{namespace}:{inner}" if namespace and inner else (inner or namespace)
                visit(entry.url_patterns, route, url, child_namespace)
            elif isinstance(entry, URLPattern):
                name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
                routes.append(Route(route=route, name=name, url="/" + url, callback=entry.callback))

    visit(get_resolver(urlconf).url_patterns, "", "", None)

    # Each URL must reach its own pattern, or the walk would probe another route twice instead.
    reachable = []
    for index, route in enumerate(routes):
        match = resolve(route.url, urlconf)
        if any(match.func is earlier.callback and match.route == earlier.route for earlier in routes[:index]):
            # An earlier pattern shadows this one (the registry's own page in place of allauth's): nothing
            # can reach it, so there is nothing to protect.
            continue
        if match.func is not route.callback or match.route != route.route:
            errors.append(f"{route.route}: built {route.url!r}, which resolves to {match.route!r}")
        reachable.append(route)
    return reachable, errors


# --- probing ------------------------------------------------------------------------------------------


def _login_paths(urlconf=None) -> set[str]:
    paths = {urlsplit(resolve_url(settings.LOGIN_URL)).path}
    with contextlib.suppress(NoReverseMatch):  # a urlconf without the admin
        paths.add(reverse("admin:login", urlconf=urlconf))
    return paths


def _ends_at_login(client: Client, response, login_paths: set[str], hops: int = 3) -> bool:
    """A redirect that takes the browser to the login page, directly or within a few local hops (the
    admin's logout sends an anonymous visitor to the admin index, which sends them to its login)."""
    for _ in range(hops):
        if response.status_code not in (301, 302, 303, 307, 308):
            return False
        target = urlsplit(response["Location"])
        if target.netloc:
            return False
        if target.path in login_paths:
            return True
        response = client.get(target.path)
    return False


def _refused(client: Client, response, login_paths: set[str]) -> bool:
    return response.status_code in (401, 403) or _ends_at_login(client, response, login_paths)


def walk(urlconf=None, values: dict[str, str] | None = None, public=PUBLIC_ROUTES) -> Walk:
    """Probe every route of ``urlconf`` anonymously; report answers that are not refusals."""
    routes, errors = iter_routes(urlconf, values)
    client = Client(raise_request_exception=False)
    login_paths = _login_paths(urlconf)
    findings: list[Finding] = []
    for route in routes:
        if route.key in public:
            continue
        answers = {method: client.generic(method, route.url) for method in METHODS}
        refused = {method for method, response in answers.items() if _refused(client, response, login_paths)}
        for method, response in answers.items():
            if method in refused:
                continue
            if response.status_code == 405:
                # A method the route does not have is fine only when every method it does have
                # (HEAD and OPTIONS aside) refused us: then nothing answers anonymously.
                allowed = {m.strip().upper() for m in response.get("Allow", "").split(",") if m.strip()}
                supported = allowed - {"HEAD", "OPTIONS"}
                if supported and supported <= refused:
                    continue
            findings.append(
                Finding(
                    route=route.route,
                    name=route.name,
                    method=method,
                    url=route.url,
                    status=response.status_code,
                    location=response.get("Location", ""),
                )
            )
    return Walk(routes=routes, findings=findings, errors=errors)


def _report(result: Walk) -> str:
    lines = [f"{len(result.findings)} anonymous request(s) were not refused:"]
    lines += [f"  {finding}" for finding in result.findings]
    if result.errors:
        lines.append(f"{len(result.errors)} pattern(s) the walker could not probe:")
        lines += [f"  {error}" for error in result.errors]
    return "\n".join(lines)


# --- tests --------------------------------------------------------------------------------------------


@pytest.fixture
def seeded(user):
    """Real rows, so detail and file routes point at objects that exist."""
    experiment = ExperimentFactory(owner=user)
    model = MLModelFactory(owner=user, experiment=experiment)
    data = io.BytesIO(b"weights")
    data.name = "weights.bin"
    version = services.model_attach_file(model=model, actor=user, file=data)
    return {"pk": str(model.pk), "path": version.file, "number": "1"}


@pytest.mark.django_db
def test_every_route_refuses_anonymous_requests(seeded):
    result = walk(values=seeded)

    if result.findings or result.errors:
        pytest.fail(_report(result), pytrace=False)
    # The walk really covered the project: API, pages and admin, file routes included.
    names = {route.name for route in result.routes}
    for expected in (
        "dashboard",
        "admin:index",
        "admin:accounts_user_change",
        "api:api-root",
        "api:models-list",
        "api:models-detail",
        "api:models-rollback",
        "api:experiments-detail",
        "api:auth-me",
        "api:auth-logout",
        "api:files-upload",
        "api:files-download",
        "api:files-presigned-url",
        "api:files-signed-download",
        # MLflow's artifact proxy: list, file (GET, PUT, DELETE), multipart and presigned refusals.
        "mlflow-artifacts-list",
        "mlflow-artifacts-file",
        "mlflow-artifacts-multipart",
        "mlflow-artifacts-presigned",
    ):
        assert expected in names
    # Every allowlisted name that exists is a real route (a renamed route must not stay allowlisted).
    keys = {route.key for route in result.routes}
    assert set(PUBLIC_ROUTES) - keys == {"^static/(?P<path>.*)$"}


@pytest.mark.django_db
def test_signed_download_with_a_bad_token_is_refused_not_allowlisted(client):
    response = client.get(reverse("api:files-signed-download", args=["x"]))

    assert response.status_code == 403
    assert "api:files-signed-download" not in PUBLIC_ROUTES


# A throwaway urlconf: the project's routes plus one that answers anyone.
def unprotected_view(request):
    return HttpResponse("open to anyone")


urlpatterns = [
    path("", include("registry.urls")),
    path("route-coverage-probe/", unprotected_view, name="route-coverage-probe"),
]


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_walker_reports_an_unprotected_route(seeded):
    result = walk(urlconf=__name__, values=seeded)

    assert not result.errors, _report(result)
    assert result.findings == [
        Finding(
            route="route-coverage-probe/",
            name="route-coverage-probe",
            method=method,
            url="/route-coverage-probe/",
            status=200,
        )
        for method in METHODS
    ], _report(result)


def _get_only_open_view(request, **kwargs):
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, OPTIONS"})
    return HttpResponse("open to anyone")


@pytest.fixture
def probe_urlconf():
    """A urlconf module of its own: a GET-only view open to anyone, a redirect elsewhere than the login
    page, and a re_path route with an optional trailing slash and a parameter, protected by a login."""
    module = types.ModuleType("route_coverage_probe_urls")
    module.urlpatterns = [
        path("probe/get-only/<int:pk>", _get_only_open_view, name="get-only"),
        path("probe/elsewhere/", lambda request: HttpResponseRedirect("/somewhere/"), name="elsewhere"),
        re_path(r"^probe/guarded/(?P<slug>[a-z]+)/?$", login_required(_get_only_open_view), name="guarded"),
    ]
    sys.modules[module.__name__] = module
    yield module.__name__
    del sys.modules[module.__name__]


@pytest.mark.django_db
def test_walker_flags_405_when_the_supported_method_is_open_and_redirects_elsewhere(settings, probe_urlconf):
    settings.ROOT_URLCONF = probe_urlconf
    result = walk(urlconf=probe_urlconf, public={})

    assert not result.errors, _report(result)
    assert [route.url for route in result.routes] == ["/probe/get-only/1", "/probe/elsewhere/", "/probe/guarded/x/"]
    found = {(finding.name, finding.method, finding.status) for finding in result.findings}
    assert found == {
        ("get-only", "GET", 200),
        *{("get-only", method, 405) for method in METHODS[1:]},
        *{("elsewhere", method, 302) for method in METHODS},
    }, _report(result)


@pytest.mark.parametrize(
    ("regex", "expected"),
    [
        (r"^register/?$", "register/"),
        (r"^models/(?P<pk>[^/.]+)/versions/(?P<number>[0-9]+)/rollback/$", "models/1/versions/1/rollback/"),
        (r"^models\.(?P<format>[a-z0-9]+)/?$", "models.json/"),
        (r"^(?P<app_label>accounts|auth)/$", "accounts/"),
        (r"(?P<url>.*)$", "1"),
    ],
)
def test_concrete_part_fills_re_path_regexes(regex, expected):
    assert concrete_part(RegexPattern(regex)) == expected


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("download/<path:path>", "download/users/1/models/1/v1/x.bin"),
        ("signed/<str:token>", "signed/x"),
        ("r/<int:content_type_id>/<path:object_id>/", "r/1/1/"),
        ("things/<slug:slug>/<uuid:key>", f"things/x/{uuid.UUID(int=1)}"),
    ],
)
def test_concrete_part_fills_path_converters(route, expected):
    assert concrete_part(RoutePattern(route)) == expected


def test_concrete_part_refuses_what_it_cannot_fill():
    with pytest.raises(_Unsupported):
        concrete_part(RegexPattern(r"^(?P<a>x)(?P=a)$"))


# --- API keys: a read key never writes, a write key is never refused for being a key ----------------

KEY_MANAGEMENT_ROUTES = {"api:auth-api-keys-list", "api:auth-api-keys-detail", "api:service-account-api-keys"}
READ_ONLY = "This API key is read-only."
NO_KEYS_HERE = "API keys cannot manage API keys; sign in with your password."


def _authenticates(route: Route) -> bool:
    """Whether the route's view runs the API's authentication (the signed download takes its own token
    and none: a key is nothing to it, and the anonymous walk covers it)."""
    view_class = getattr(route.callback, "cls", None)
    return view_class is not None and bool(view_class().get_authenticators())


def _api_routes(values) -> list[Route]:
    routes, errors = iter_routes(values=values)
    assert not errors, errors
    return [r for r in routes if r.url.startswith("/api/v1/") and r.key not in PUBLIC_ROUTES and _authenticates(r)]


def _snapshot() -> dict:
    """Every row of the apps' tables, but the key's once-a-minute ``last_used_at`` and cache rows."""
    from django.apps import apps

    rows = {}
    for model in apps.get_models():
        if model._meta.app_label not in {"accounts", "mlmodels", "experiments", "auth", "token_blacklist"}:
            continue
        if model._meta.db_table == "accounts_throttle_cache":
            continue
        rows[model._meta.label] = [
            {k: v for k, v in row.items() if k != "last_used_at"} for row in model.objects.order_by("pk").values()
        ]
    return rows


def _key_client(user, scope: str) -> Client:
    from accounts import services as account_services

    _, raw = account_services.api_key_create(actor=user, user=user, name=f"walk-{scope}", scope=scope)
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.mark.django_db
def test_a_read_key_never_changes_anything_and_reads_everywhere(seeded, user):
    """The rule: on every API v1 route that authenticates, every POST, PUT, PATCH and DELETE with a read
    key answers exactly 403 "read-only", refused by the authentication itself before permissions,
    method dispatch, body parsing or the handler (so not even a 400 or a 405 runs any code of the view),
    and no row of the database changes; every GET is not refused for auth reasons (no 401, no 403), but
    on the key-management routes, which refuse every key. The key's user is a superuser, so no
    ownership or role rule refuses a GET: only the key could."""
    user.is_superuser = True
    user.save()
    client = _key_client(user, "read")
    routes = _api_routes(seeded)
    assert {"api:models-detail", "api:files-upload", "api:auth-logout"} <= {r.name for r in routes}
    before = _snapshot()
    wrong = []
    for route in routes:
        for method in METHODS[1:]:
            response = client.generic(method, route.url, "{}", content_type="application/json")
            detail = (
                response.json().get("detail")
                if response.get("Content-Type", "").startswith("application/json")
                else None
            )
            if response.status_code != 403 or detail != READ_ONLY:
                wrong.append(f"{method} {route.url} [{route.key}] answered {response.status_code}: {detail}")
        response = client.get(route.url)
        if route.key in KEY_MANAGEMENT_ROUTES:
            if response.status_code != 403 or response.json()["detail"] != NO_KEYS_HERE:
                wrong.append(f"GET {route.url} [{route.key}] answered {response.status_code}, not the no-keys 403")
        elif response.status_code in (401, 403):
            wrong.append(f"GET {route.url} [{route.key}] refused a read key: {response.status_code}")
    assert not wrong, "\n".join(wrong)
    assert _snapshot() == before


@pytest.mark.django_db
def test_a_write_key_is_refused_only_by_the_key_management_routes(seeded, user):
    """A write key of a superuser (so no ownership or role rule refuses it): no answer on any API v1
    route is 401, and none is 403 but the key-management routes' (with their message)."""
    user.is_superuser = True
    user.save()
    client = _key_client(user, "write")
    wrong = []
    for route in _api_routes(seeded):
        for method in METHODS:
            response = client.generic(method, route.url, "{}", content_type="application/json")
            refused = response.status_code in (401, 403)
            if route.key in KEY_MANAGEMENT_ROUTES:
                if response.status_code != 403 or response.json()["detail"] != NO_KEYS_HERE:
                    wrong.append(f"{method} {route.url} [{route.key}] answered {response.status_code}")
            elif refused:
                wrong.append(f"{method} {route.url} [{route.key}] refused a write key: {response.status_code}")
    assert not wrong, "\n".join(wrong)
