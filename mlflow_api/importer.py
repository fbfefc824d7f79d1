"""Copy an MLflow tracking server's model registry (and, if asked, its experiments and runs) into ours:
the logic of ``manage.py import_mlflow``.

MLflow is read over its REST API with urllib3 (never the ``mlflow`` package); everything is written
through our services (``mlmodels.services``, ``experiments.services``, ``experiments.runs``), so the
same rules hold as for the API and the pages. The mapping is the MLflow facade's (``mlflow_api``):

- a registered model is a model (name, description, tags), owned by the import's owner, created as
  the MLflow facade creates one (without versions) in one transaction with its origin tag
  ``mlflow.import.source`` = ``<host>/<name>``;
- each MLflow version (in MLflow's order) is one new version of ours whose artifact is the folder at
  the version's download URI, read through MLflow's artifact proxy (``mlflow-artifacts:`` URIs; any
  other scheme is skipped with the reason). Every file is streamed in chunks to a temporary file,
  then stored by ``version_create_with_files``: all of the version or nothing. Our numbers are our
  own sequence, so they are MLflow's as long as MLflow's have no gaps (a deleted version) and none
  was skipped; the tag ``mlflow.import.source`` = ``<host>/<name>/<N>`` on each version says which
  MLflow version it is, and is how a rerun recognises it (one stopped between storing a version and
  tagging it is recognised by its files: the model's newest version, untagged, same paths, sizes and
  sha256). The description is the version's note; MLflow's version
  tags are its tags; its stage is the tag ``mlflow.import.stage``; its run the tag
  ``mlflow.import.run_id``;
- aliases point at the versions those tags name;
- the stage of MLflow's newest version becomes the model's lifecycle (through ``lifecycle_move``,
  one legal move at a time: development -> staging [-> production], or -> archived) when the model
  is still in development here; a move our rules refuse (an unsafe artifact, a production move
  needing an approval) is skipped with the reason, never forced;
- with runs: an experiment is an experiment of the owner (MLflow's tags as ``key=value`` strings,
  ``mlflow.note.content`` as its description, found again by the tag ``mlflow.import.source=…`` or
  by name); each active run is a run of ours (new run id; the tag ``mlflow.import.source`` names
  MLflow's) with its params, every point of its metric histories, its tags, status and times,
  written in one transaction: a run is copied whole or not at all.

Idempotent and resumable: what is already here (recognised by the origin tags) is counted "already
there" and not copied again; a model, tag or alias whose value here differs from MLflow's is left as
it is here and reported as skipped. Nothing is ever deleted or overwritten here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from urllib3.util.retry import Retry

from accounts.roles import can_approve
from experiments import runs as run_services
from experiments import services as experiment_services
from experiments.models import Experiment, Run, RunTag
from mlflow_api.shapes import MLFLOW_TO_STAGE
from mlmodels import folders, services
from mlmodels.models import MAX_FILES_PER_VERSION, MLModel, ModelVersion, Stage
from registry.validators import name_key, normalize_name

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
# Our tags recording where an imported object came from (and what MLflow said of it).
SOURCE_TAG = "mlflow.import.source"
STAGE_TAG = "mlflow.import.stage"
RUN_ID_TAG = "mlflow.import.run_id"
NOTE_TAG = "mlflow.note.content"  # an MLflow experiment's description
PROXY_SCHEME = "mlflow-artifacts"
CHUNK_BYTES = 1024 * 1024
PAGE = 100
RUNS_PAGE = 500
HISTORY_PAGE = 10_000
# The path from development to each stage, one legal move (mlmodels.models.ALLOWED_MOVES) at a time.
STAGE_PATHS = {
    Stage.STAGING: (Stage.STAGING,),
    Stage.PRODUCTION: (Stage.STAGING, Stage.PRODUCTION),
    Stage.ARCHIVED: (Stage.ARCHIVED,),
}


class MlflowUnavailable(Exception):
    """The import cannot go on: the server is unreachable, refuses the credentials, or is not MLflow."""


class MlflowRequestError(Exception):
    """One request failed (its object is skipped): an HTTP error answer, or a transfer cut short."""


class _Skip(Exception):
    """An object that cannot be copied, and why (a line of the summary)."""


# --- reading MLflow ------------------------------------------------------------------------------------


class MlflowClient:
    """MLflow's REST API and artifact proxy over plain HTTP (urllib3), with a bearer token or basic
    auth; connection errors, 429 and 5xx answers are retried a few times with backoff."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 60,
        retries: int = 3,
    ):
        parts = urlsplit(tracking_uri or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"The tracking URI must be an http(s):// URL of an MLflow server, not {tracking_uri!r}.")
        self.base_url = tracking_uri.rstrip("/")
        # What the origin tags name: the server's host (and path, when MLflow is served under one).
        self.host = (parts.netloc + parts.path).rstrip("/")
        headers = {"User-Agent": "model-registry-import-mlflow"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif username is not None:
            basic = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        retry = Retry(
            total=retries,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=None,  # every call here reads (the POSTs are searches)
            raise_on_status=False,
        )
        self._headers = headers
        self._pool = urllib3.PoolManager(retries=retry, timeout=urllib3.Timeout(connect=10, read=timeout))

    def _send(self, method: str, url: str, *, headers: dict | None = None, **kwargs) -> urllib3.BaseHTTPResponse:
        # A request's own headers replace the pool's in urllib3: the credentials go along each time.
        headers = {**self._headers, **(headers or {})}
        try:
            return self._pool.request(method, url, headers=headers, **kwargs)
        except urllib3.exceptions.MaxRetryError as error:
            raise MlflowUnavailable(f"Cannot reach the MLflow server at {self.base_url}: {error.reason}") from None
        except urllib3.exceptions.HTTPError as error:
            raise MlflowUnavailable(f"Cannot reach the MLflow server at {self.base_url}: {error}") from None

    def _check(self, response: urllib3.BaseHTTPResponse, what: str) -> None:
        if response.status < 400:
            return
        body = response.data[:2000] if response.status != 401 else b""
        if response.status in (401, 403):
            reason = "Unauthorized" if response.status == 401 else "Forbidden"
            raise MlflowUnavailable(
                f"The MLflow server at {self.base_url} answered {response.status} {reason} to {what}: "
                "check --token, or --username and --password."
            )
        try:
            message = json.loads(body).get("message") or body.decode(errors="replace")
        except (ValueError, AttributeError):
            message = body.decode(errors="replace")
        raise MlflowRequestError(f"{what} answered {response.status}: {message.strip()[:300]}")

    def call(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None) -> dict:
        """The JSON answer of MLflow's ``API/path``."""
        url = f"{self.base_url}{API}/{path}"
        if params:
            url += "?" + urlencode(params, quote_via=quote)
        if body is None:
            response = self._send(method, url)
        else:
            response = self._send(method, url, body=json.dumps(body), headers={"Content-Type": "application/json"})
        self._check(response, f"{method} {path}")
        try:
            answer = json.loads(response.data or b"{}")
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise MlflowUnavailable(
                f"{self.base_url} did not answer {path} with MLflow's JSON: is it an MLflow tracking server?"
            )
        return answer

    def pages(self, method: str, path: str, key: str, **fields) -> Iterator[dict]:
        """Every item under ``key`` of a paged search (MLflow's page tokens)."""
        token = None
        while True:
            page = dict(fields, page_token=token) if token else dict(fields)
            answer = self.call(method, path, **({"params": page} if method == "GET" else {"body": page}))
            yield from answer.get(key) or []
            token = answer.get("next_page_token")
            if not token:
                return

    def list_artifacts(self, path: str) -> list[tuple[str, int | None]]:
        """Every file under the proxy path ``path`` (recursing into folders): (relative path, size)."""
        found: list[tuple[str, int | None]] = []
        folders_left = [""]
        while folders_left:
            below = folders_left.pop()
            listed = f"{path}/{below}".rstrip("/") if below else path
            url = f"{self.base_url}{ARTIFACTS}?{urlencode({'path': listed}, quote_via=quote)}"
            response = self._send("GET", url)
            self._check(response, f"listing {listed}")
            try:
                entries = json.loads(response.data or b"{}").get("files") or []
            except (ValueError, AttributeError):
                raise MlflowRequestError(f"listing {listed} did not answer with MLflow's JSON") from None
            for entry in entries:
                relative = f"{below}/{entry['path']}" if below else entry["path"]
                if entry.get("is_dir"):
                    folders_left.append(relative)
                else:
                    size = entry.get("file_size")
                    found.append((relative, int(size) if size is not None else None))
            if len(found) > MAX_FILES_PER_VERSION:
                raise _Skip(f"more than {MAX_FILES_PER_VERSION} files, more than a version of ours holds")
        return sorted(found)

    def download(self, path: str, sink: IO[bytes], *, limit: int) -> tuple[int, str]:
        """Stream the file at the proxy path ``path`` into ``sink`` in chunks (never whole in memory);
        returns its size and sha256."""
        url = f"{self.base_url}{ARTIFACTS}/{quote(path, safe='/')}"
        response = self._send("GET", url, preload_content=False, headers={"Accept-Encoding": "identity"})
        try:
            self._check(response, f"downloading {path}")
            digest, size = hashlib.sha256(), 0
            try:
                for chunk in response.stream(CHUNK_BYTES):
                    size += len(chunk)
                    if size > limit:
                        raise _Skip(f"{path} is larger than MAX_UPLOAD_BYTES ({limit} bytes)")
                    digest.update(chunk)
                    sink.write(chunk)
            except urllib3.exceptions.HTTPError as error:
                raise MlflowRequestError(f"downloading {path} was cut short: {error}") from None
            return size, digest.hexdigest()
        finally:
            response.release_conn()


def proxy_path(uri: str) -> str | None:
    """The artifact proxy path of a download URI (``mlflow-artifacts:/1/models/m-…/artifacts`` or
    ``mlflow-artifacts://host/1/<run>/artifacts/model``), or None for a scheme we cannot read."""
    parts = urlsplit(uri or "")
    if parts.scheme != PROXY_SCHEME:
        return None
    path = parts.path.strip("/")
    return path or None


# --- progress and summary ------------------------------------------------------------------------------


class Progress(Protocol):
    """Where the importer says how far it is: one ``start`` per stage, one ``step`` per item."""

    def start(self, stage: str, total: int | None) -> None: ...

    def step(self, label: str) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    def start(self, stage: str, total: int | None) -> None:
        pass

    def step(self, label: str) -> None:
        pass

    def close(self) -> None:
        pass


class TqdmProgress:
    """A tqdm bar per stage on ``file`` (stderr): the models, then each experiment's runs."""

    def __init__(self, file, *, disable: bool | None = None):
        self.file, self.disable, self.bar = file, disable, None

    def start(self, stage: str, total: int | None) -> None:
        from tqdm import tqdm  # the command's only, so the tests and the import need not load it

        self.close()
        self.bar = tqdm(total=total, desc=stage, unit="", file=self.file, disable=self.disable, dynamic_ncols=True)

    def step(self, label: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(label[:40], refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


KINDS = ("models", "versions", "tags", "aliases", "stages", "lifecycle", "experiments", "runs")
ONE = {"aliases": "alias", "lifecycle": "lifecycle of"}


@dataclass
class Summary:
    """What an import did: per kind, how many were created, already there, skipped (with why)."""

    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    existing: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, what, reason)
    seconds: float = 0.0

    def add(self, kind: str) -> None:
        self.created[kind] += 1

    def there(self, kind: str) -> None:
        self.existing[kind] += 1

    def skip(self, kind: str, what: str, reason: str) -> None:
        self.skipped.append((kind, what, reason))

    def skipped_count(self, kind: str) -> int:
        return sum(1 for skipped_kind, _, _ in self.skipped if skipped_kind == kind)

    @property
    def copied_anything(self) -> bool:
        return any(self.created.values())

    def lines(self, *, kinds: tuple[str, ...] = KINDS) -> list[str]:
        lines = [f"{'':12} {'created':>8} {'already there':>14} {'skipped':>8}"]
        for kind in kinds:
            lines.append(f"{kind:12} {self.created[kind]:>8} {self.existing[kind]:>14} {self.skipped_count(kind):>8}")
        for kind, what, reason in self.skipped:
            lines.append(f"skipped {ONE.get(kind, kind[:-1])} {what}: {reason}")
        if not self.copied_anything:
            lines.append("Nothing new to copy: everything MLflow has that can be copied is already here.")
        return lines


def _tags_of(items: Any) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or [] if isinstance(item, dict) and "key" in item}


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        messages = []
        if hasattr(error, "error_dict"):
            for name, errors in error.message_dict.items():
                messages.extend(f"{name}: {message}" if name != "__all__" else message for message in errors)
        else:
            messages = error.messages
        return "; ".join(messages)[:500]
    return str(error)[:500]


# --- writing ours --------------------------------------------------------------------------------------


class Importer:
    """One import from ``client`` into the registry, as ``owner`` (who owns what it creates and is
    the actor of every change). ``limit``: only the first ``limit`` registered models (MLflow's name
    order) this time; a later run copies the rest."""

    def __init__(
        self,
        client: MlflowClient,
        *,
        owner,
        with_runs: bool = False,
        limit: int | None = None,
        progress: Progress | None = None,
    ):
        self.client = client
        self.owner = owner
        self.with_runs = with_runs
        self.limit = limit
        self.progress = progress or NoProgress()
        self.summary = Summary()
        self.host = client.host
        # MLflow run id -> the run of ours it was copied into (imported versions link it).
        self.imported_runs: dict[str, Run] = {}

    def run(self) -> Summary:
        started = time.monotonic()
        # Fails early (unreachable, 401, not MLflow) before anything is written.
        self.client.call("GET", "registered-models/search", params={"max_results": 1})
        try:
            if self.with_runs:
                self.import_experiments()
            models = []
            for model in self.client.pages("GET", "registered-models/search", "registered_models", max_results=PAGE):
                models.append(model)
                if self.limit is not None and len(models) >= self.limit:
                    break
            self.progress.start("models", len(models))
            for model in models:
                self.import_model(model["name"])
                self.progress.step(model["name"])
        finally:
            self.progress.close()
        self.summary.seconds = time.monotonic() - started
        return self.summary

    # --- models ---

    def _imported_model(self, name: str) -> MLModel | None:
        """Our model of that name if it is this import's (its origin tag); raises _Skip for another
        model holding the name."""
        model = MLModel.objects.filter(name_key=name_key(normalize_name(name))).select_related("owner").first()
        if model is None:
            return None
        if model.tags.get(SOURCE_TAG) == f"{self.host}/{name}":
            return model
        raise _Skip(
            f"the name is taken here by {model.owner.username}'s model #{model.pk}, which was not imported from "
            f"{self.host}"
        )

    def import_model(self, name: str) -> None:
        try:
            registered = self.client.call("GET", "registered-models/get", params={"name": name})["registered_model"]
            model = self._imported_model(name)
        except (_Skip, MlflowRequestError, KeyError) as error:
            self.summary.skip("models", name, str(error))
            return
        if model is not None:
            self.summary.there("models")
        else:
            model = self._create_model(name, registered.get("description") or "")
            if model is None:
                return
        self._sync_tags(model, None, _tags_of(registered.get("tags")), what=name)
        numbers = self.import_versions(model, name)
        self.import_aliases(model, name, registered.get("aliases") or [], numbers)

    def _create_model(self, name: str, description: str) -> MLModel | None:
        """The model, without versions (as MLflow's registered-models/create makes one), and its
        origin tag, in one transaction: there is no model of this import without its origin."""
        for attempt in (description, ""):
            try:
                with transaction.atomic():
                    model = services.model_create(
                        owner=self.owner, actor=self.owner, name=name, description=attempt, initial_version=False
                    )
                    services.tag_set(model=model, actor=self.owner, key=SOURCE_TAG, value=f"{self.host}/{name}")
            except ValidationError as error:
                if attempt and "description" in getattr(error, "error_dict", {}):
                    self.summary.skip("models", f"{name} (its description)", _reason(error))
                    continue
                self.summary.skip("models", name, _reason(error))
                return None
            except PermissionDenied as error:
                self.summary.skip("models", name, str(error))
                return None
            self.summary.add("models")
            return model
        return None

    def _sync_tags(
        self,
        model: MLModel,
        version: ModelVersion | None,
        wanted: dict[str, str],
        *,
        what: str,
        count: bool = True,
        follow: bool = False,
    ) -> None:
        """Set each tag of ``wanted`` that ``model`` (or ``version``) lacks. One it has with another
        value is kept (``follow``: our own bookkeeping tags take MLflow's value)."""
        number = None if version is None else version.version_number
        for key, value in wanted.items():
            current = (model.tags if version is None else version.tags).get(key)
            label = f"{what} {key}"
            if current == value:
                if count:
                    self.summary.there("tags")
                continue
            if current is not None and not follow:
                self.summary.skip("tags", label, f"is {current[:80]!r} here, kept (MLflow has {value[:80]!r})")
                continue
            try:
                services.tag_set(model=model, actor=self.owner, key=key, value=value, version_number=number)
            except (ValidationError, PermissionDenied) as error:
                self.summary.skip("tags", label, _reason(error))
                continue
            if version is not None:
                version.tags = {**version.tags, key: value}
            if count:
                self.summary.add("tags")

    # --- versions ---

    def _mlflow_versions(self, name: str) -> list[dict]:
        if "'" not in name:
            quoted = f"'{name}'"
        elif '"' not in name:
            quoted = f'"{name}"'
        else:
            raise _Skip("its name holds both kinds of quotes, which MLflow's search filter cannot express")
        found = self.client.pages(
            "GET", "model-versions/search", "model_versions", filter=f"name={quoted}", max_results=1000
        )
        return sorted((v for v in found if v.get("name") == name), key=lambda v: int(v["version"]))

    def import_versions(self, model: MLModel, name: str) -> dict[str, int]:
        """Copy MLflow's versions of ``name`` not here yet; returns MLflow's number -> ours for every
        version that is here."""
        try:
            versions = self._mlflow_versions(name)
        except (_Skip, MlflowRequestError) as error:
            self.summary.skip("versions", f"{name} (all)", str(error))
            return {}
        ours = {
            version.tags.get(SOURCE_TAG): version
            for version in model.versions.only("id", "version_number", "tags", "model_id")
            if version.tags.get(SOURCE_TAG)
        }
        numbers: dict[str, int] = {}
        for mlflow_version in versions:
            number = str(mlflow_version["version"])
            source = f"{self.host}/{name}/{number}"
            what = f"{name}/{number}"
            version = ours.get(source)
            if version is not None:
                self.summary.there("versions")
            else:
                try:
                    version = self._import_version(model, mlflow_version, source)
                except (_Skip, MlflowRequestError) as error:
                    self.summary.skip("versions", what, str(error))
                    continue
                except (ValidationError, PermissionDenied) as error:
                    self.summary.skip("versions", what, _reason(error))
                    continue
            numbers[number] = version.version_number
            self._sync_tags(model, version, _tags_of(mlflow_version.get("tags")), what=what)
            stage = mlflow_version.get("current_stage") or "None"
            bookkeeping = {STAGE_TAG: stage} if stage != "None" or STAGE_TAG in version.tags else {}
            if mlflow_version.get("run_id"):
                bookkeeping[RUN_ID_TAG] = mlflow_version["run_id"]
            if STAGE_TAG in bookkeeping:
                if version.tags.get(STAGE_TAG) == stage:
                    self.summary.there("stages")
                else:
                    self.summary.add("stages")
            self._sync_tags(model, version, bookkeeping, what=what, count=False, follow=True)
        if versions and str(versions[-1]["version"]) in numbers:
            self.import_stage(model, name, versions[-1], numbers[str(versions[-1]["version"])])
        return numbers

    def _import_version(self, model: MLModel, mlflow_version: dict, source: str) -> ModelVersion:
        """Stream the version's files to temporary files, then record them as one version of ours
        (all or nothing) and tag it with its origin."""
        name, number = mlflow_version["name"], mlflow_version["version"]
        status = mlflow_version.get("status") or "READY"
        if status != "READY":
            raise _Skip(f"its status in MLflow is {status}, not READY")
        try:
            uri = self.client.call("GET", "model-versions/get-download-uri", params={"name": name, "version": number})
            uri = uri.get("artifact_uri") or mlflow_version.get("source") or ""
        except MlflowRequestError:
            uri = mlflow_version.get("source") or ""
        path = proxy_path(uri)
        if path is None:
            scheme = urlsplit(uri).scheme or "a local path"
            raise _Skip(
                f"its artifacts are at {uri[:120]!r} ({scheme}), which this importer cannot read: only "
                f"{PROXY_SCHEME}: URIs, through the MLflow server's artifact proxy (mlflow server --serve-artifacts)"
            )
        listing = self.client.list_artifacts(path)
        if not listing:
            raise _Skip(f"no files under {uri}")
        limit = settings.MAX_UPLOAD_BYTES
        too_large = [relative for relative, size in listing if size is not None and size > limit]
        if too_large:
            raise _Skip(f"{too_large[0]} is larger than MAX_UPLOAD_BYTES ({limit} bytes)")
        folders.validate_file_set(relative for relative, _ in listing)  # before any byte is read
        with ExitStack() as stack:
            files, digests = [], set()
            for relative, listed_size in listing:
                sink = stack.enter_context(tempfile.TemporaryFile(prefix="mlflow-import-"))
                size, sha256 = self.client.download(f"{path}/{relative}", sink, limit=limit)
                if listed_size is not None and size != listed_size:
                    raise MlflowRequestError(f"{relative} was {size} bytes, not the {listed_size} listed")
                sink.seek(0)
                sink.size = size  # what the service's size check reads
                files.append((relative, sink))
                digests.add((relative, size, sha256))
            version = self._stopped_copy(model, digests)
            if version is None:
                data = {}
                run = self.imported_runs.get(mlflow_version.get("run_id") or "")
                if run is not None:
                    data["experiment"] = run.experiment
                description = mlflow_version.get("description") or ""
                note = description or f"MLflow version {number}"
                try:
                    version = services.version_create_with_files(
                        model=model, actor=self.owner, files=files, note=note, data=data, run=run
                    )
                except ValidationError as error:
                    if not (description and "note" in getattr(error, "error_dict", {})):
                        raise
                    self.summary.skip("versions", f"{name}/{number} (its description)", _reason(error))
                    for _, sink in files:
                        sink.seek(0)
                    version = services.version_create_with_files(
                        model=model,
                        actor=self.owner,
                        files=files,
                        note=f"MLflow version {number}",
                        data=data,
                        run=run,
                    )
                self.summary.add("versions")
            else:
                self.summary.there("versions")
        version.tags = dict(version.tags or {})
        self._sync_tags(model, version, {SOURCE_TAG: source}, what=f"{name}/{number}", count=False, follow=True)
        return version

    def _stopped_copy(self, model: MLModel, files: set[tuple[str, int, str]]) -> ModelVersion | None:
        """The version an earlier import recorded with exactly these files but stopped before tagging
        with its origin: the model's newest version, untagged, same paths, sizes and sha256."""
        newest = model.versions.order_by("-version_number").first()
        if newest is None or SOURCE_TAG in (newest.tags or {}) or newest.file_count != len(files):
            return None
        stored = set(newest.files.values_list("path", "size", "sha256"))
        return newest if stored == files else None

    def import_stage(self, model: MLModel, name: str, newest: dict, number: int) -> None:
        """The stage of MLflow's newest version as the model's lifecycle, while that version is our
        current one and the model has not left development here."""
        stage = MLFLOW_TO_STAGE.get(str(newest.get("current_stage") or "None").lower(), Stage.DEVELOPMENT)
        model.refresh_from_db(fields=["lifecycle", "latest_version"])
        if stage == Stage.DEVELOPMENT or number != model.latest_version:
            return
        what = name
        if model.lifecycle == stage:
            self.summary.there("lifecycle")
            return
        if model.lifecycle != Stage.DEVELOPMENT:
            kept = f"is {model.lifecycle} here, kept (MLflow's newest version is {stage})"
            self.summary.skip("lifecycle", what, kept)
            return
        if stage == Stage.PRODUCTION and settings.PRODUCTION_NEEDS_APPROVAL and not can_approve(self.owner):
            self.summary.skip(
                "lifecycle", what, f"production needs an approval here; {self.owner.username} cannot approve it"
            )
            return
        for step in STAGE_PATHS[stage]:
            try:
                services.lifecycle_move(
                    model=model, actor=self.owner, to_stage=step, comment=f"MLflow stage of version {newest['version']}"
                )
            except (ValidationError, PermissionDenied) as error:
                self.summary.skip("lifecycle", what, f"the move to {step} was refused: {_reason(error)}")
                return
        self.summary.add("lifecycle")

    # --- aliases ---

    def import_aliases(self, model: MLModel, name: str, aliases: list[dict], numbers: dict[str, int]) -> None:
        model.refresh_from_db(fields=["aliases"])
        for entry in aliases:
            alias, mlflow_number = entry.get("alias", ""), str(entry.get("version"))
            what = f"{name}@{alias}"
            target = numbers.get(mlflow_number)
            current = (model.aliases or {}).get(alias)
            if target is None:
                self.summary.skip("aliases", what, f"its version {mlflow_number} was not imported")
            elif current == target:
                self.summary.there("aliases")
            elif current is not None:
                self.summary.skip("aliases", what, f"points at version {current} here, kept")
            else:
                try:
                    request = services.alias_set(model=model, actor=self.owner, alias=alias, version_number=target)
                except (ValidationError, PermissionDenied) as error:
                    self.summary.skip("aliases", what, _reason(error))
                    continue
                if request is not None:
                    self.summary.skip("aliases", what, f"protected here: approval request #{request.pk} waits")
                else:
                    self.summary.add("aliases")

    # --- experiments and runs ---

    def import_experiments(self) -> None:
        experiments = list(
            self.client.pages("GET", "experiments/search", "experiments", max_results=PAGE, view_type="ACTIVE_ONLY")
        )
        for mlflow_experiment in experiments:
            what = mlflow_experiment.get("name", "")
            try:
                experiment = self._experiment(mlflow_experiment)
            except (ValidationError, PermissionDenied) as error:
                self.summary.skip("experiments", what, _reason(error))
                continue
            self.import_runs(experiment, mlflow_experiment)

    def _experiment(self, mlflow_experiment: dict) -> Experiment:
        name = normalize_name(mlflow_experiment["name"])
        source = f"{SOURCE_TAG}={self.host}/experiments/{mlflow_experiment['experiment_id']}"
        mine = Experiment.objects.filter(owner=self.owner)
        experiment = mine.tagged(source).first() or mine.filter(name=name).first()
        if experiment is not None:
            self.summary.there("experiments")
            return experiment
        tags = _tags_of(mlflow_experiment.get("tags"))
        description = tags.pop(NOTE_TAG, "")
        experiment = experiment_services.experiment_create(
            owner=self.owner,
            actor=self.owner,
            name=name,
            description=description,
            tags=[f"{key}={value}" for key, value in tags.items()] + [source],
        )
        self.summary.add("experiments")
        return experiment

    def import_runs(self, experiment: Experiment, mlflow_experiment: dict) -> None:
        self.progress.start(f"runs of {experiment.name}", None)
        runs = self.client.pages(
            "POST",
            "runs/search",
            "runs",
            experiment_ids=[str(mlflow_experiment["experiment_id"])],
            run_view_type="ACTIVE_ONLY",
            max_results=RUNS_PAGE,
        )
        for mlflow_run in runs:
            info = mlflow_run.get("info") or {}
            run_id = info.get("run_id") or info.get("run_uuid") or ""
            source = f"{self.host}/runs/{run_id}"
            found = (
                RunTag.objects.filter(key=SOURCE_TAG, value=source, run__experiment__owner=self.owner)
                .select_related("run__experiment")
                .first()
            )
            if found is not None:
                run = found.run
                self.summary.there("runs")
            else:
                try:
                    run = self._import_run(experiment, mlflow_run, source)
                except (MlflowRequestError, ValidationError, PermissionDenied) as error:
                    self.summary.skip("runs", f"{experiment.name}/{run_id}", _reason(error))
                    self.progress.step(run_id)
                    continue
                self.summary.add("runs")
            self.imported_runs[run_id] = run
            self.progress.step(info.get("run_name") or run_id)

    def _import_run(self, experiment: Experiment, mlflow_run: dict, source: str) -> Run:
        """One run, read whole from MLflow first (every point of every metric), then written in one
        transaction: a run is here with all of its data or not at all."""
        info, data = mlflow_run.get("info") or {}, mlflow_run.get("data") or {}
        run_id = info.get("run_id") or info.get("run_uuid")
        metrics = []
        for key in sorted({metric["key"] for metric in data.get("metrics") or []}):
            for point in self.client.pages(
                "GET", "metrics/get-history", "metrics", run_id=run_id, metric_key=key, max_results=HISTORY_PAGE
            ):
                metrics.append(
                    {key_: point[key_] for key_ in ("key", "value", "timestamp", "step") if point.get(key_) is not None}
                )
        params = [{"key": p["key"], "value": p.get("value", "")} for p in data.get("params") or []]
        tags = [{"key": key, "value": value} for key, value in _tags_of(data.get("tags")).items()]
        with transaction.atomic():
            run = run_services.run_create(
                experiment=experiment,
                actor=self.owner,
                name=info.get("run_name") or None,
                start_time=info.get("start_time"),
                tags={SOURCE_TAG: source},
            )
            for batch in _chunks(params, run_services.MAX_PARAMS_TAGS_PER_BATCH):
                run_services.run_log_batch(run=run, actor=self.owner, params=batch)
            for batch in _chunks(tags, run_services.MAX_PARAMS_TAGS_PER_BATCH):
                run_services.run_log_batch(run=run, actor=self.owner, tags=batch)
            for batch in _chunks(metrics, run_services.MAX_METRICS_PER_BATCH):
                run_services.run_log_batch(run=run, actor=self.owner, metrics=batch)
            run_services.run_update(
                run=run, actor=self.owner, status=info.get("status") or None, end_time=info.get("end_time")
            )
        return run


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
