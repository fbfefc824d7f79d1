"""A client that disconnects in the middle of an upload leaves no row, no stored object and no temporary file.

The uploads go over a raw socket to the live server (a real threaded HTTP server), so the disconnect is
a real one: the server reads an end of stream, or a connection reset, in the middle of the multipart
body, as it would from a client whose connection dropped. Whichever storage the run is configured for
(local files or S3) is looked at through the storage helpers.
"""

import json
import socket
import struct
import threading
import time
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_started
from django.middleware.csrf import CSRF_SECRET_LENGTH
from django.test import Client, RequestFactory
from django.utils.crypto import get_random_string
from rest_framework_simplejwt.tokens import RefreshToken

from mlmodels.models import LifecycleEvent, MLModel, ModelVersion
from mlmodels.storage import artifact_keys
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db(transaction=True)

UPLOAD = "/api/v1/files/upload"
BOUNDARY = "registry-disconnect-test-boundary"
MIB = 1024 * 1024
# What the request announces: a real-looking upload, well under MAX_UPLOAD_BYTES.
ANNOUNCED_FILE_BYTES = 8 * MIB
# What is sent before hanging up: more than FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), so the server
# spools the part to a temporary file whichever upload handlers are configured.
SENT_FILE_BYTES = 3 * MIB
WAIT_SECONDS = 10

# A FIN (the client closed its socket) and a RST (its connection was torn down) reach the server
# differently: an early end of the body, or a ConnectionResetError raised from the read.
HANG_UPS = ["closed", "reset"]


@pytest.fixture
def model(user):
    return MLModelFactory(owner=user, name="churn")


@pytest.fixture
def upload_temp_dir(settings, tmp_path):
    """Django's temporary upload files go to a folder of this test's own, so leftovers can be seen."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


@pytest.fixture
def server_done(live_server):
    """A semaphore released each time the live server has finished with a connection.

    close_request() is the last thing the server's thread does for a connection, after the view has
    returned and whatever response there was has been written, whether the request succeeded, failed
    or its client vanished. The alternatives are not enough: the temporary folder is also empty
    before the server has read the file part, or while the view could still write a row; a second
    request is served by another thread, so it orders nothing; and request_finished is skipped when
    the server's drain of the unread body raises on a reset connection.
    """
    server = live_server.thread.httpd
    done = threading.Semaphore(0)
    close_request = server.close_request

    def close_and_signal(request):
        try:
            close_request(request)
        finally:
            done.release()

    server.close_request = close_and_signal
    yield done
    del server.close_request


@pytest.fixture
def app_started():
    """An event set when the application starts handling a request (before it reads the body)."""
    started = threading.Event()

    def receiver(**kwargs):
        started.set()

    request_started.connect(receiver, weak=False)
    yield started
    request_started.disconnect(receiver)


def wait_until_server_done(done: threading.Semaphore) -> None:
    assert done.acquire(timeout=WAIT_SECONDS), f"the live server still held the connection after {WAIT_SECONDS}s"


def file_bytes(count: int) -> bytes:
    return (bytes(range(256)) * (count // 256 + 1))[:count]


def multipart_envelope(model_id: int) -> tuple[bytes, bytes]:
    """The body before the file's bytes (the model_id field and the file part's headers) and after them."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="model_id"\r\n'
        "\r\n"
        f"{model_id}\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="weights.bin"\r\n'
        "Content-Type: application/octet-stream\r\n"
        "\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return head, tail


def request_headers(live_server, user, content_length: int) -> bytes:
    url = urlsplit(live_server.url)
    token = RefreshToken.for_user(user).access_token
    return (
        f"POST {UPLOAD} HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {content_length}\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode()


def connect(live_server) -> socket.socket:
    url = urlsplit(live_server.url)
    return socket.create_connection((url.hostname, url.port), timeout=WAIT_SECONDS)


def hang_up(sock: socket.socket, how: str) -> None:
    if how == "reset":
        # Linger on, with a zero timeout: close() sends a RST instead of a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def wait_for_temp_file(folder) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not any(folder.iterdir()):
        assert time.monotonic() < deadline, "the server never started spooling the file part to a temporary file"
        time.sleep(0.01)


def state(model) -> dict:
    """Everything an upload may change: the model's file fields, its rows, its stored objects."""
    model = MLModel.objects.get(pk=model.pk)
    return {
        "latest_version": model.latest_version,
        "file": model.file,
        "file_size": model.file_size,
        "file_sha256": model.file_sha256,
        "versions": list(ModelVersion.objects.order_by("pk").values_list("pk", flat=True)),
        "events": list(LifecycleEvent.objects.order_by("pk").values_list("pk", flat=True)),
        # Includes the staged uploads/{uuid}/ objects as well as v{n}/.
        "stored": sorted(artifact_keys(f"users/{model.owner_id}/models/{model.pk}")),
    }


def read_response(sock: socket.socket) -> tuple[int, dict]:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def test_whole_raw_socket_upload_creates_exactly_one_version(live_server, server_done, user, model, upload_temp_dir):
    # The disconnect tests send this same request, cut short: it has to be one the server accepts,
    # or they would pass whatever the server does with a broken upload.
    before = state(model)
    head, tail = multipart_envelope(model.pk)
    content = file_bytes(SENT_FILE_BYTES)
    body = head + content + tail

    with connect(live_server) as sock:
        sock.sendall(request_headers(live_server, user, len(body)) + body)
        status, response = read_response(sock)
    wait_until_server_done(server_done)

    assert status == 201, response
    key = f"users/{user.pk}/models/{model.pk}/v2/weights.bin"
    assert (response["path"], response["size"], response["version"]) == (key, SENT_FILE_BYTES, 2)
    after = state(model)
    assert (after["latest_version"], after["file"], after["file_size"]) == (2, key, SENT_FILE_BYTES)
    assert len(after["versions"]) == len(before["versions"]) + 1
    assert after["stored"] == [key]
    assert not any(upload_temp_dir.iterdir())


@pytest.mark.parametrize("how", HANG_UPS)
def test_client_hanging_up_in_the_middle_of_the_file_leaves_no_row_no_stored_object_and_no_temp_file(
    live_server, server_done, user, model, upload_temp_dir, how
):
    before = state(model)
    head, tail = multipart_envelope(model.pk)
    announced = len(head) + ANNOUNCED_FILE_BYTES + len(tail)

    sock = connect(live_server)
    sock.sendall(request_headers(live_server, user, announced) + head + file_bytes(SENT_FILE_BYTES))
    # Hang up only once the server is part-way through the file, holding a temporary file of it.
    wait_for_temp_file(upload_temp_dir)
    hang_up(sock, how)
    wait_until_server_done(server_done)

    assert state(model) == before
    assert list(upload_temp_dir.iterdir()) == []


@pytest.mark.parametrize("how", HANG_UPS)
def test_client_hanging_up_after_the_headers_leaves_no_row_and_no_stored_object(
    live_server, server_done, app_started, user, model, upload_temp_dir, how
):
    before = state(model)
    head, tail = multipart_envelope(model.pk)
    announced = len(head) + ANNOUNCED_FILE_BYTES + len(tail)

    sock = connect(live_server)
    sock.sendall(request_headers(live_server, user, announced))
    # Hang up once the application has the request: a hang-up the server notices before that never
    # reaches the view, and would prove nothing.
    assert app_started.wait(WAIT_SECONDS), "the request never reached the application"
    hang_up(sock, how)
    wait_until_server_done(server_done)

    assert state(model) == before
    assert list(upload_temp_dir.iterdir()) == []


def page_request_headers(live_server, user, model, content_length: int) -> bytes:
    """The dashboard's upload form, posted with a session and a CSRF token as the page sends it."""
    url = urlsplit(live_server.url)
    browser = Client()
    browser.force_login(user)
    csrf_secret = get_random_string(CSRF_SECRET_LENGTH)
    return (
        f"POST /models/{model.pk}/upload/ HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\n"
        f"Cookie: {settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}; "
        f"{settings.CSRF_COOKIE_NAME}={csrf_secret}\r\n"
        f"X-CSRFToken: {csrf_secret}\r\n"
        "HX-Request: true\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {content_length}\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode()


def page_file_part() -> tuple[bytes, bytes]:
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="weights.bin"\r\n'
        "Content-Type: application/octet-stream\r\n"
        "\r\n"
    ).encode()
    return head, f"\r\n--{BOUNDARY}--\r\n".encode()


def test_whole_raw_socket_page_upload_creates_exactly_one_version(
    live_server, server_done, user, model, upload_temp_dir
):
    head, tail = page_file_part()
    body = head + file_bytes(SENT_FILE_BYTES) + tail

    with connect(live_server) as sock:
        sock.sendall(page_request_headers(live_server, user, model, len(body)) + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    wait_until_server_done(server_done)

    assert received.startswith(b"HTTP/1.1 200"), received[:300]
    assert state(model)["stored"] == [f"users/{user.pk}/models/{model.pk}/v2/weights.bin"]
    assert not any(upload_temp_dir.iterdir())


@pytest.mark.parametrize("how", HANG_UPS)
def test_page_upload_cut_off_in_the_middle_of_the_file_leaves_no_row_no_stored_object_and_no_temp_file(
    live_server, server_done, user, model, upload_temp_dir, how
):
    # The page's form is read first by the CSRF middleware, which swallows a reset connection's
    # read error: the temporary file must go all the same.
    before = state(model)
    head, tail = page_file_part()
    announced = len(head) + ANNOUNCED_FILE_BYTES + len(tail)

    sock = connect(live_server)
    sock.sendall(page_request_headers(live_server, user, model, announced) + head + file_bytes(SENT_FILE_BYTES))
    wait_for_temp_file(upload_temp_dir)
    hang_up(sock, how)
    wait_until_server_done(server_done)

    assert state(model) == before
    assert list(upload_temp_dir.iterdir()) == []


class ResetStream:
    """A request body whose connection was reset: every read raises, as the socket's would."""

    def read(self, *args):
        raise ConnectionResetError(104, "Connection reset by peer")

    readline = read


def test_an_upload_body_that_cannot_be_read_is_answered_400_not_500(user, model, caplog):
    environ = RequestFactory()._base_environ(
        PATH_INFO=UPLOAD,
        REQUEST_METHOD="POST",
        CONTENT_TYPE=f"multipart/form-data; boundary={BOUNDARY}",
        CONTENT_LENGTH=str(ANNOUNCED_FILE_BYTES),
        HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}",
        **{"wsgi.input": ResetStream()},
    )
    statuses = []
    body = b"".join(WSGIHandler()(environ, lambda status, headers, exc_info=None: statuses.append(status)))

    assert statuses == ["400 Bad Request"], body
    assert json.loads(body) == {"detail": "The request body could not be read in full; nothing was saved."}
    assert not [record for record in caplog.records if record.levelname == "ERROR"]
