"""Artifact scans of the formats beyond plain pickles (mlmodels/scans.py): ONNX models read field by
field without their weights, MLflow MLmodel files through yaml.safe_load, joblib files with their
arrays and their compression (bombs included), and what the model page shows of a scan."""

import io
import os
import pickle
import random
import re
import struct
import tracemalloc
import zlib

import joblib
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from sklearn.linear_model import LogisticRegression

from mlmodels.scans import CLEAN, ERROR, UNKNOWN, UNSAFE, scan_artifact, scan_bytes
from mlmodels.tests.factories import MLModelFactory
from mlmodels.tests.test_scans import Payload, safetensors_file, upload
from registry.celery import app

MiB = 1024 * 1024


@pytest.fixture
def scans_in_process():
    """Tasks run in this process once the change commits (as on the embedded defaults)."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed():`` the change inside is delivered as if its transaction committed."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# --- ONNX ------------------------------------------------------------------------------------------------


def onnx_model(*initializers: TensorProto) -> onnx.ModelProto:
    """A small graph as exporters write one: a batch dimension by name, its weights as initializers."""
    weights = helper.make_tensor("W", TensorProto.FLOAT, [4, 2], np.ones(8, dtype=np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "W"], ["logits"]), helper.make_node("Softmax", ["logits"], ["output"])],
        "tiny-classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 2])],
        [weights, *initializers],
    )
    model = helper.make_model(
        graph,
        producer_name="registry-tests",
        producer_version="1.0",
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
    )
    onnx.checker.check_model(model)
    return model


ONNX_METADATA = {
    "ir_version": onnx.IR_VERSION,
    "producer_name": "registry-tests",
    "producer_version": "1.0",
    "opset_imports": [{"domain": "", "version": 17}, {"domain": "ai.onnx.ml", "version": 3}],
    "graph_name": "tiny-classifier",
    "inputs": [{"name": "input", "type": "float32", "shape": ["batch", 4]}],
    "outputs": [{"name": "output", "type": "float32", "shape": ["batch", 2]}],
    "nodes": 2,
    "initializers": 1,
}


class CountingFile(io.BytesIO):
    """A file that counts the bytes read from it."""

    bytes_read = 0

    def read(self, size=-1):
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def test_an_onnx_model_is_clean_with_its_opsets_inputs_and_outputs():
    report = scan_bytes(onnx_model().SerializeToString(), file_name="model.onnx")

    assert (report.status, report.format, report.findings) == (CLEAN, "onnx", [])
    assert report.metadata == ONNX_METADATA


def test_a_truncated_onnx_model_is_unknown():
    content = onnx_model().SerializeToString()

    report = scan_bytes(content[: len(content) // 2], file_name="model.onnx")

    assert report.status == UNKNOWN
    assert report.metadata["reason"].startswith("not a readable ONNX model")


def test_random_bytes_named_onnx_are_unknown():
    report = scan_bytes(random.Random(7).randbytes(64 * 1024), file_name="x.onnx")

    assert (report.status, report.format) == (UNKNOWN, "unknown")


def test_a_pickle_named_onnx_is_still_read_as_the_pickle_it_is():
    report = scan_bytes(pickle.dumps(Payload(os.system, "echo owned")), file_name="model.onnx")

    assert (report.status, report.findings) == (UNSAFE, ["posix.system"])


def test_an_onnx_model_with_a_large_initializer_is_read_without_reading_its_weights():
    weights = helper.make_tensor("big", TensorProto.FLOAT, [50 * MiB // 4], vals=bytes(50 * MiB), raw=True)
    stream = CountingFile(onnx_model(weights).SerializeToString())

    report = scan_artifact(stream, file_name="model.onnx")

    assert report.metadata == {**ONNX_METADATA, "initializers": 2}
    assert stream.bytes_read < 4096  # the header's fields, the weights skipped by seeking


# --- MLflow MLmodel ---------------------------------------------------------------------------------------

# As mlflow.sklearn.log_model (MLflow 3) writes it.
MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.7.2
is_signature_from_type_hint: false
mlflow_version: 3.4.0
model_id: m-5b2b1d0f3c7e4a3a9f0e6f1f2d3c4b5a
model_size_bytes: 1003
model_uuid: m-5b2b1d0f3c7e4a3a9f0e6f1f2d3c4b5a
prompts: null
run_id: 0f3a6c1e2b7d4e8f9a0b1c2d3e4f5a6b
signature:
  inputs: '[{"type": "double", "name": "sepal length (cm)", "required": true}, {"type":
    "double", "name": "sepal width (cm)", "required": true}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
  params: null
type_hint_from_example: false
utc_time_created: '2025-10-01 09:30:12.345678'
"""


def test_an_mlmodel_file_gives_its_flavors_signature_and_run():
    report = scan_bytes(MLMODEL.encode(), file_name="MLmodel")

    assert (report.status, report.format, report.findings) == (CLEAN, "mlflow", [])
    assert report.metadata == {
        "flavors": {
            "python_function": {
                "loader_module": "mlflow.sklearn",
                "model_path": "model.pkl",
                "predict_fn": "predict",
                "python_version": "3.11.7",
            },
            "sklearn": {
                "code": None,
                "pickled_model": "model.pkl",
                "serialization_format": "cloudpickle",
                "sklearn_version": "1.7.2",
            },
        },
        "signature": {
            "inputs": {
                "columns": [
                    {"type": "double", "name": "sepal length (cm)", "required": True},
                    {"type": "double", "name": "sepal width (cm)", "required": True},
                ],
                "total": 2,
            },
            "outputs": {"columns": [{"type": "tensor", "dtype": "int64", "shape": [-1]}], "total": 1},
        },
        "model_uuid": "m-5b2b1d0f3c7e4a3a9f0e6f1f2d3c4b5a",
        "run_id": "0f3a6c1e2b7d4e8f9a0b1c2d3e4f5a6b",
        "utc_time_created": "2025-10-01 09:30:12.345678",
        "mlflow_version": "3.4.0",
    }


def test_a_python_tag_in_an_mlmodel_file_is_never_constructed(tmp_path):
    marker = tmp_path / "owned"
    content = f'flavors:\n  python_function: !!python/object/apply:os.system ["touch {marker}"]\n'

    report = scan_bytes(content.encode(), file_name="MLmodel")

    assert report.status == UNKNOWN
    assert "python/object/apply:os.system" in report.metadata["reason"]
    assert not marker.exists()


def test_an_mlmodel_file_over_the_size_cap_is_unknown():
    content = MLMODEL + "# padding\n" * (1024 * 1024 // 10)

    report = scan_bytes(content.encode(), file_name="MLmodel")

    assert report.status == UNKNOWN
    assert "over 1048576 bytes" in report.metadata["reason"]


# --- scikit-learn pickles and joblib files, plain and compressed ------------------------------------------


@pytest.fixture(scope="module")
def sklearn_model():
    return LogisticRegression().fit([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 0, 1])


def joblib_bytes(value, **options) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(value, buffer, **options)
    return buffer.getvalue()


JOBLIB_IMPORTS = [
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "numpy.dtype",
    "numpy.ndarray",
    "sklearn.linear_model._logistic.LogisticRegression",
]


def test_a_pickled_scikit_learn_model_is_clean_and_lists_its_imports(sklearn_model):
    report = scan_bytes(pickle.dumps(sklearn_model), file_name="model.pkl")

    assert (report.status, report.format, report.findings) == (CLEAN, "pickle", [])
    imports = report.metadata["imports"]
    assert {"sklearn.linear_model._logistic.LogisticRegression", "numpy.ndarray", "numpy.dtype"} <= set(imports)
    assert any(name.endswith("multiarray._reconstruct") for name in imports)  # numpy's array rebuilder


@pytest.mark.parametrize("protocol", [None, 0, 2])
def test_a_joblib_file_with_numpy_arrays_is_clean_its_array_bytes_stepped_over(sklearn_model, protocol):
    # joblib writes each array's raw bytes between the opcodes: read as opcodes they would be noise.
    report = scan_bytes(joblib_bytes(sklearn_model, protocol=protocol), file_name="model.joblib")

    assert (report.status, report.format, report.findings) == (CLEAN, "joblib", [])
    assert set(JOBLIB_IMPORTS) <= set(report.metadata["imports"])


@pytest.mark.parametrize(
    ("compress", "compression"),
    [(3, "zlib"), (("gzip", 3), "gzip"), (("bz2", 3), "bz2"), (("xz", 3), "xz"), (("lzma", 3), "lzma")],
)
def test_a_compressed_joblib_model_is_decompressed_and_clean(sklearn_model, compress, compression):
    report = scan_bytes(joblib_bytes(sklearn_model, compress=compress), file_name="model.joblib")

    assert (report.status, report.format, report.findings) == (CLEAN, "joblib", [])
    assert report.metadata == {"compression": compression, "imports": JOBLIB_IMPORTS}


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("xz", 3)])
def test_a_joblib_file_that_runs_code_after_its_arrays_is_unsafe(compress):
    model = {"coef": np.ones((3, 4)), "hook": Payload(os.system, "echo owned"), "bias": np.zeros(3)}

    report = scan_bytes(joblib_bytes(model, compress=compress), file_name="model.pkl")

    assert (report.status, report.format, report.findings) == (UNSAFE, "joblib", ["posix.system"])


def test_a_joblib_file_whose_array_runs_past_its_end_is_an_error_not_clean():
    content = joblib_bytes({"coef": np.ones(1000)})

    report = scan_bytes(content[:-100], file_name="model.joblib")

    assert report.status == ERROR
    assert "could not be followed" in report.metadata["reason"]


class CraftedWrapper:
    """Pickles to joblib's array wrapper built by calling its class, which joblib.dump never does:
    joblib.load would then read raw bytes where a scan that missed it reads opcodes."""

    def __reduce__(self):
        from joblib.numpy_pickle import NumpyArrayWrapper

        return NumpyArrayWrapper, (np.ndarray, (2,), "C", np.dtype("f8")), {"allow_mmap": False}


def test_an_array_wrapper_made_the_way_joblib_never_makes_one_is_an_error_not_clean():
    content = joblib_bytes({"coef": np.ones(3), "odd": CraftedWrapper()})

    report = scan_bytes(content, file_name="model.joblib")

    assert report.status == ERROR
    assert "could not be followed: an array wrapper used the way joblib does not use it" in report.metadata["reason"]


def test_a_compressed_pickle_under_another_name_is_not_decompressed():
    content = zlib.compress(pickle.dumps(Payload(os.system, "echo owned")))

    assert scan_bytes(content, file_name="data.z").status == UNKNOWN


def zlib_bomb(prefix: bytes, mebibytes: int) -> bytes:
    """A valid zlib stream that inflates to ``prefix`` then ``mebibytes`` MiB of zeros, built from
    one compressed mebibyte repeated: after a full flush the compressor starts afresh, so every further
    mebibyte compresses to the same bytes."""
    compressor = zlib.compressobj(9)
    zeros = bytes(MiB)
    first = compressor.compress(prefix + zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()
    # The Adler-32 of the whole: zeros leave its first sum alone and add it to the second once each.
    checksum = zlib.adler32(prefix + zeros)
    low, high = checksum & 0xFFFF, checksum >> 16
    high = (high + (mebibytes - 1) * MiB * low) % 65521
    return first + again * (mebibytes - 1) + end[:-4] + struct.pack(">I", high << 16 | low)


def scanned_with_peak_memory(content: bytes, file_name: str):
    tracemalloc.start()
    try:
        report = scan_bytes(content, file_name=file_name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return report, peak


def test_a_zlib_bomb_of_zeros_is_unknown_without_being_inflated():
    bomb = zlib_bomb(b"", 1024)  # a GiB of zeros, in a MiB

    report, peak = scanned_with_peak_memory(bomb, "model.joblib")

    assert report.status == UNKNOWN
    assert report.metadata["reason"] == "zlib-compressed data that is not a pickle"
    assert peak < 16 * MiB


def test_a_pickle_that_inflates_beyond_the_limit_is_unknown_and_stops_there(settings):
    settings.MAX_UPLOAD_BYTES = MiB  # inflating stops at four times this
    # A pickle of one GiB of bytes: PROTO 4, then BINBYTES8 and its length.
    bomb = zlib_bomb(b"\x80\x04\x8e" + struct.pack("<Q", 1024 * MiB), 1024)

    report, peak = scanned_with_peak_memory(bomb, "model.joblib")

    assert (report.status, report.format) == (UNKNOWN, "joblib")
    assert report.metadata["reason"].startswith(f"decompressed beyond {4 * MiB} bytes")
    assert peak < 32 * MiB


def test_a_call_before_the_limit_still_makes_a_bomb_unsafe(settings):
    settings.MAX_UPLOAD_BYTES = MiB
    call = pickle.dumps(Payload(os.system, "echo owned"), protocol=4)[:-1]  # without its STOP
    bomb = zlib_bomb(call + b"0\x8e" + struct.pack("<Q", 1024 * MiB), 1024)  # POP, then a GiB of bytes

    report = scan_bytes(bomb, file_name="model.pkl")

    assert (report.status, report.findings) == (UNSAFE, ["posix.system"])
    assert report.metadata["reason"].startswith("decompressed beyond")


# --- the model page ---------------------------------------------------------------------------------------


def scan_region(content: str, number: int) -> str:
    """The scan partial of version ``number`` on the model page."""
    found = re.search(rf'<div id="scan-v{number}" class="scan">(.*?)</div>', content, re.S)
    assert found, f"no scan details for v{number}"
    return found.group(1)


@pytest.mark.django_db
def test_the_model_page_shows_an_unsafe_uploads_findings_and_why_it_is_refused(
    owner_api, owner_client, user, scans_in_process, committed
):
    model = MLModelFactory(owner=user)
    with committed():
        number = upload(owner_api, model, pickle.dumps(Payload(os.system, "echo owned")), "model.pkl")

    region = scan_region(owner_client.get(f"/models/{model.pk}/").content.decode(), number)

    assert "Unsafe: loading this file would call posix.system." in region
    assert "cannot go to production nor receive a protected alias" in region
    assert '<details class="scan-details" open>' in region  # the findings open, not folded away
    assert "<dt>Format</dt><dd>pickle</dd>" in region
    assert "<li><code>posix.system</code></li>" in region


@pytest.mark.django_db
def test_the_model_page_shows_an_onnx_uploads_inputs_and_outputs(
    owner_api, owner_client, user, scans_in_process, committed
):
    model = MLModelFactory(owner=user)
    with committed():
        number = upload(owner_api, model, onnx_model().SerializeToString(), "model.onnx")

    region = scan_region(owner_client.get(f"/models/{model.pk}/").content.decode(), number)

    summary = "ONNX opset 17 · inputs: input [batch, 4] float32 · outputs: output [batch, 2] float32"
    assert f"</span>{summary}</summary>" in region
    assert "<dt>Opsets</dt><dd>ai.onnx 17, ai.onnx.ml 3</dd>" in region
    assert '<details class="scan-details">' in region  # a clean file's details start folded


@pytest.mark.django_db
def test_a_stored_file_waiting_for_its_scan_says_so_and_a_version_without_a_file_shows_nothing(
    owner_api, owner_client, user
):
    model = MLModelFactory(owner=user)
    number = upload(owner_api, model, safetensors_file({"w": ("F32", [3, 3], 36)}), "model.safetensors")

    content = owner_client.get(f"/models/{model.pk}/").content.decode()

    assert "Scan pending" in scan_region(content, number)
    assert 'id="scan-v1"' not in content  # the factory's first version has no file


@pytest.mark.django_db
def test_scan_details_cost_the_model_page_no_query(
    owner_api, owner_client, user, scans_in_process, committed, django_assert_max_num_queries
):
    model = MLModelFactory(owner=user)
    files = [
        (onnx_model().SerializeToString(), "model.onnx"),
        (pickle.dumps(Payload(os.system, "echo owned")), "model.pkl"),
        (safetensors_file({"w": ("F32", [3, 3], 36)}), "model.safetensors"),
        (MLMODEL.encode(), "MLmodel"),
    ]
    for content, name in files:
        with committed():
            upload(owner_api, model, content, name)

    # The budget of the page without scans (mlmodels/tests/test_pages.py): user; model; versions;
    # events; alias changes; approval requests.
    with django_assert_max_num_queries(6):
        content = owner_client.get(f"/models/{model.pk}/").content.decode()

    assert "safetensors · 1 tensor · 9 parameters · F32" in scan_region(content, 4)
    assert "MLflow model · flavors python_function, sklearn" in scan_region(content, 5)
