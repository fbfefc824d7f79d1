"""What an artifact file is, and whether loading it could run code: read, never unpickled.

``scan_artifact(stream, file_name=...)`` tells the format and returns a ``ScanReport``: a
``status`` (``clean``, ``unsafe``, ``unknown`` or ``error``), the ``findings`` (the dangerous
imports a pickle would call when loaded, as ``module.name``) and the format's ``metadata``.

Pickles (plain, joblib, and the zip of pickles PyTorch saves) are disassembled by picklescan, which
walks the opcodes without executing any; an import picklescan knows to run code (``os.system``,
``builtins.exec``, ``subprocess.Popen``…) makes the file ``unsafe``, one it neither knows as safe
nor as dangerous is listed in the metadata (``imports``) but leaves it ``clean``: a scikit-learn
model imports its own classes. A joblib file writes its numpy arrays as raw bytes between the
opcodes; the scan follows joblib's loader to step over them, and decompresses a compressed joblib
file (zlib, gzip, bz2, xz, lzma) into a bounded temporary file first.

safetensors, ONNX and MLflow ``MLmodel`` files cannot run code when their loaders read them: a
safetensors header gives the tensors, an ONNX model's protobuf header its opsets, inputs and
outputs (read field by field, the weights skipped by seeking), an ``MLmodel`` YAML file its flavors
and signature (``yaml.safe_load``, which builds no Python object). Anything else is ``unknown``:
the registry cannot vouch for it either way. A ``.onnx`` file that does not parse is read for what
it is instead, so a pickle named ``model.onnx`` is still found.

Scanning is advice and defence in depth, never a reason to load anything on the server.
"""

from __future__ import annotations

import bz2
import io
import itertools
import json
import logging
import lzma
import math
import pickletools
import re
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from math import prod
from typing import IO, Any

import yaml
from django.conf import settings
from picklescan.scanner import SafetyLevel, scan_pickle_bytes, scan_zip_bytes

CLEAN, UNSAFE, UNKNOWN, ERROR = "clean", "unsafe", "unknown", "error"
# Pickle protocol 2+ streams open with PROTO; protocol 0/1 ones with an opcode such as "(" or "}".
_PICKLE_PROTO = 0x80
_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024
# What the scan copies (a decompressed joblib file, a joblib file's opcodes) stays in memory up to
# this size, in a temporary file beyond.
_IN_MEMORY_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024

# picklescan logs every finding as a warning and every unreadable pickle as an error; the report
# carries both.
logging.getLogger("picklescan").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class ScanReport:
    status: str
    format: str
    findings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def scan_artifact(stream: IO[bytes], *, file_name: str) -> ScanReport:
    """The report on the artifact in ``stream`` (binary, seekable, at its start)."""
    name = file_name.rsplit("/", 1)[-1]
    claimed: ScanReport | None = None
    if name.lower().endswith(".onnx"):
        claimed = _onnx(stream)
        if claimed.status != UNKNOWN:
            return claimed
    elif name == "MLmodel":
        # MLflow reads this file with yaml.safe_load and nothing else: its contents are YAML or nothing.
        return _mlmodel(stream)
    elif _PICKLE_SUFFIXES.intersection(name.lower().split(".")[1:]) and (report := _compressed_joblib(stream)):
        # A compressed stream opens with no pickle opcode: nothing but joblib's loader reads it.
        return report
    stream.seek(0)
    report = _by_content(stream, file_name)
    if claimed is not None and report.status == UNKNOWN:
        return claimed  # its reason says why the file is not what its name claims
    return report


def scan_bytes(content: bytes, *, file_name: str) -> ScanReport:
    """``scan_artifact`` of ``content`` (for small files and tests)."""
    return scan_artifact(io.BytesIO(content), file_name=file_name)


def _by_content(stream: IO[bytes], file_name: str) -> ScanReport:
    head = stream.read(8)
    stream.seek(0)
    if len(head) == 8 and (report := _safetensors(stream, head)) is not None:
        return report
    if zipfile.is_zipfile(stream):
        stream.seek(0)
        return _zip(stream, file_name)
    stream.seek(0)
    # Every other file is read as a pickle too: protocols 0 and 1 have no opening mark, and a file
    # that imports something when loaded is a pickle whatever its name.
    scan = _scan_pickle(stream, file_name)
    if scan.globals or head[:1] == bytes([_PICKLE_PROTO]):
        kind = "joblib" if scan.joblib or file_name.endswith(".joblib") else "pickle"
        report = _from_picklescan(scan, kind)
        # Text opening with a letter that is also a protocol-0 opcode (the "c" of MLflow's conda.yaml
        # "channels:" reads as GLOBAL) is no pickle when it cannot be read as one to its end; a text
        # pickle that can, or that names a dangerous import on the way, is still judged as a pickle.
        if report.status == ERROR and head[:1] != bytes([_PICKLE_PROTO]) and not scan.joblib and _is_text(stream):
            return ScanReport(UNKNOWN, "text", metadata={"reason": "text, not a format the registry reads"})
        return report
    return ScanReport(UNKNOWN, "unknown", metadata={"reason": "not a format the registry reads"})


_TEXT_SAMPLE = 64 * 1024


def _is_text(stream: IO[bytes]) -> bool:
    """Whether the start of ``stream`` is UTF-8 text without NUL bytes (a sample: a model file is
    binary long before 64 KiB)."""
    stream.seek(0)
    sample = stream.read(_TEXT_SAMPLE)
    stream.seek(0)
    if b"\x00" in sample:
        return False
    try:
        sample.decode()
    except UnicodeDecodeError as error:
        # A sample cut in the middle of a character is still text.
        return error.start >= len(sample) - 3
    return True


def _zip(stream: IO[bytes], file_name: str) -> ScanReport:
    with zipfile.ZipFile(stream) as archive:
        names = archive.namelist()
    is_torch = any(name.endswith("data.pkl") for name in names)
    stream.seek(0)
    result = scan_zip_bytes(stream, file_name)
    if is_torch or result.scanned_files:
        report = _from_picklescan(_PickleScan(result.globals, result.scan_err), "pytorch" if is_torch else "zip")
        return ScanReport(report.status, report.format, report.findings, {**report.metadata, "files": len(names)})
    return ScanReport(UNKNOWN, "zip", metadata={"files": len(names), "reason": "a zip without pickles"})


@dataclass(frozen=True)
class _PickleScan:
    globals: list
    scan_err: bool
    joblib: bool = False
    reason: str = ""


def _from_picklescan(scan: _PickleScan, kind: str) -> ScanReport:
    dangerous = sorted({f"{g.module}.{g.name}" for g in scan.globals if g.safety == SafetyLevel.Dangerous})
    imports = sorted({f"{g.module}.{g.name}" for g in scan.globals if g.safety != SafetyLevel.Dangerous})
    metadata = {"imports": imports}
    if dangerous:
        return ScanReport(UNSAFE, kind, dangerous, metadata)
    if scan.scan_err:
        return ScanReport(
            ERROR, kind, [], {**metadata, "reason": scan.reason or "the pickle could not be read to its end"}
        )
    return ScanReport(CLEAN, kind, [], metadata)


def _safetensors(stream: IO[bytes], head: bytes) -> ScanReport | None:
    """A safetensors file: a little-endian u64 header length, then that many bytes of JSON."""
    (length,) = struct.unpack("<Q", head)
    if not 2 <= length <= _SAFETENSORS_MAX_HEADER:
        return None
    stream.seek(8)
    header_bytes = stream.read(length)
    stream.seek(0)
    if len(header_bytes) != length or not header_bytes.lstrip().startswith(b"{"):
        return None
    try:
        header = json.loads(header_bytes)
    except ValueError:
        return None
    if not isinstance(header, dict):
        return None
    metadata = header.pop("__metadata__", None)
    tensors = [value for value in header.values() if isinstance(value, dict) and "dtype" in value]
    if len(tensors) != len(header):
        return None
    return ScanReport(
        CLEAN,
        "safetensors",
        metadata={
            "tensors": len(tensors),
            "dtypes": sorted({tensor["dtype"] for tensor in tensors}),
            "parameters": sum(prod(tensor.get("shape") or [1]) for tensor in tensors),
            "metadata": metadata if isinstance(metadata, dict) else {},
        },
    )


# --- joblib: the raw array data between the opcodes ---------------------------------------------------

# joblib.dump pickles each numpy array as this wrapper and writes the array's bytes right after the
# BUILD that gives the wrapper its state; joblib.load reads them back as bytes, never as opcodes.
_JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
# How pickle makes an instance without calling its class (copyreg's helpers; protocols 0 and 1 name
# the module as Python 2 did, which the unpickler maps back).
_COPYREG_NEW = {(module, name) for module in ("copyreg", "copy_reg") for name in ("_reconstructor", "__newobj__")}
_COPYREG_NEW_EX = {("copyreg", "__newobj_ex__"), ("copy_reg", "__newobj_ex__")}
# The values the walk keeps of a container or a literal: enough for an array's shape and dtype,
# never a copy of the model's data.
_MAX_ITEMS = 10_000
_MAX_LITERAL = 1024
_LITERALS = frozenset(
    {
        *("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT"),
        *("STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"),
        *("BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"),
    }
)
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
# A numpy dtype as it pickles: numpy.dtype("f8", False, True), then a state whose flags say whether it
# holds Python objects and, for the flexible kinds (U, S, V), whose size is its item size.
_DTYPE_STRING = re.compile(r"([biufcmMOUSV])(\d{1,9})")


class _Unfollowable(Exception):
    """A joblib file the scan cannot read the way joblib's loader would: the loader could take for
    opcodes what the scan took for array data, or the other way round."""


class _Global:
    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


class _Made:
    """What a call in the pickle would return: its callable and arguments, and the states BUILD
    gave it (a dict merged into its attributes, or the argument of its __setstate__)."""

    __slots__ = ("args", "attributes", "func", "state", "wrapper")

    def __init__(self, func, args, *, wrapper: bool = False):
        self.func, self.args, self.wrapper = func, args, wrapper
        self.attributes: dict = {}
        self.state = None

    def build(self, state) -> None:
        self.state = state
        if not self.wrapper:
            return
        # pickle's load_build for an object without __setstate__: a dict, or (dict, slot dict).
        parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
        for part in parts:
            if not part:
                continue
            if not isinstance(part, _Dict) or part.truncated:
                raise _Unfollowable("an array wrapper's state the scan cannot read")
            self.attributes.update(part)


class _List(list):
    truncated = False


class _Dict(dict):
    truncated = False


class _ClassArgs(tuple):
    """The arguments (the wrapper class first) copyreg makes a wrapper from."""


class _WrapperName(str):
    """The wrapper's name or module as a string: good for naming the class, nothing else (a lookup
    by name would reach it behind the walk's back)."""


_OPAQUE = object()  # a value the walk does not keep: a long string, a buffer, a persistent id, an array


def _is_wrapper_class(value) -> bool:
    return isinstance(value, _Global) and (value.module, value.name) == _JOBLIB_WRAPPER


class _JoblibWalk:
    """Follows a joblib file as ``joblib.load`` reads it: a pickle machine that keeps literal values
    and the calls it would make (never making them), so that it knows each array wrapper's shape and
    dtype, and so how many bytes of array data follow it. The wrapper class and its instances may
    only be used the ways joblib.dump uses them; any other use, and any frame, dtype or state the
    walk cannot read exactly as joblib would, stops it (the file is then an error, not clean)."""

    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        stream.seek(0, io.SEEK_END)
        self.size = stream.tell()
        stream.seek(0)
        self.stack: list = []
        self.marks: list[list] = []
        self.memo: dict = {}
        self.outer: list[tuple[int, int]] = []
        self.nested: list[list[tuple[int, int]]] = []

    def segments(self) -> list[list[tuple[int, int]]]:
        """The byte ranges that are pickle opcodes: the file's pickle (its array data left out), each
        nested pickle of an object array, and whatever follows the pickle's end."""
        try:
            end = self._walk()
        except (ArithmeticError, AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
            raise _Unfollowable(f"the pickle stops making sense ({error})"[:200]) from error
        groups = [self.outer, *self.nested]
        if end < self.size:
            groups.append([(end, self.size)])
        return groups

    def _walk(self) -> int:
        stream = self.stream
        frame_end = None
        kept_from = 0
        for opcode, arg, pos in pickletools.genops(stream):
            end = stream.tell()
            if frame_end is not None and pos >= frame_end:
                frame_end = None
            if frame_end is not None and end > frame_end:
                raise _Unfollowable("an opcode runs past the end of its frame")
            name = opcode.name
            if name == "FRAME":
                if frame_end is not None:
                    raise _Unfollowable("a frame begins inside another")
                frame_end = end + arg
            elif name == "BUILD":
                state = self.stack.pop()
                self._plain(state)
                target = self.stack[-1]
                if _is_wrapper_class(target):
                    raise _Unfollowable("attributes set on the array wrapper class")
                if isinstance(target, _Made):
                    target.build(state)
                    if target.wrapper:
                        # The loader reads the array from the file itself, past any frame it buffered.
                        if frame_end is not None and end != frame_end:
                            raise _Unfollowable("array data inside a pickle frame")
                        frame_end = None
                        self.outer.append((kept_from, end))
                        self._skip_array(target.attributes)
                        kept_from = stream.tell()
                        self.stack[-1] = _OPAQUE
            elif name == "STOP":
                break
            else:
                self._step(name, arg)
        self.outer.append((kept_from, stream.tell()))
        return stream.tell()

    def _step(self, name: str, arg) -> None:
        stack = self.stack
        if name in _LITERALS:
            stack.append(self._literal(arg))
        elif name in _CONSTANTS:
            stack.append(_CONSTANTS[name])
        elif name == "MARK":
            self.marks.append(stack)
            self.stack = []
        elif name == "POP":
            if stack:
                stack.pop()
            else:
                self._pop_mark()
        elif name == "POP_MARK":
            self._pop_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name in ("EMPTY_LIST", "EMPTY_SET"):
            stack.append(_List())
        elif name == "EMPTY_DICT":
            stack.append(_Dict())
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            size = int(name[-1])
            if len(stack) < size:
                raise IndexError("stack underflow")
            items = stack[-size:]
            del stack[-size:]
            stack.append(self._tuple(items))
        elif name == "TUPLE":
            items = self._pop_mark()
            self.stack.append(self._tuple(items))
        elif name in ("LIST", "FROZENSET"):
            items = self._pop_mark()
            made = _List()
            self._extend(made, items)
            self.stack.append(made)
        elif name == "DICT":
            items = self._pop_mark()
            made = _Dict()
            self._set_items(made, items)
            self.stack.append(made)
        elif name == "APPEND":
            value = stack.pop()
            self._extend(stack[-1], [value])
        elif name in ("APPENDS", "ADDITEMS"):
            items = self._pop_mark()
            self._extend(self.stack[-1], items)
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            self._set_items(stack[-1], [key, value])
        elif name == "SETITEMS":
            items = self._pop_mark()
            self._set_items(self.stack[-1], items)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(self.memo[arg])
        elif name == "GLOBAL":
            module, _, global_name = arg.partition(" ")
            stack.append(self._global(module, global_name))
        elif name == "STACK_GLOBAL":
            global_name, module = stack.pop(), stack.pop()
            if not (isinstance(module, str) and isinstance(global_name, str)):
                raise _Unfollowable("a global named by something other than strings")
            stack.append(self._global(module, global_name))
        elif name == "REDUCE":
            args, func = stack.pop(), stack.pop()
            stack.append(self._call(func, args, copyreg_allowed=True))
        elif name == "NEWOBJ":
            args, cls = stack.pop(), stack.pop()
            stack.append(self._new(cls, args))
        elif name == "NEWOBJ_EX":
            kwargs, args, cls = stack.pop(), stack.pop(), stack.pop()
            self._plain(kwargs)
            stack.append(self._call(cls, args))
        elif name in ("OBJ", "INST"):
            items = self._pop_mark()
            if name == "INST":
                module, _, class_name = arg.partition(" ")
                cls = self._global(module, class_name)
            else:
                cls, items = items[0], items[1:]
            for item in items:
                self._plain(item)
            self.stack.append(self._call(cls, tuple(items)))
        elif name == "PERSID" or name == "NEXT_BUFFER":
            stack.append(_OPAQUE)
        elif name == "BINPERSID":
            self._plain(stack.pop())
            stack.append(_OPAQUE)
        elif name in ("PROTO", "READONLY_BUFFER"):
            pass
        else:  # EXT1, EXT2, EXT4 name globals through a registry the scan cannot see
            raise _Unfollowable(f"the opcode {name}")

    def _pop_mark(self) -> list:
        items = self.stack
        self.stack = self.marks.pop()
        return items

    def _literal(self, value):
        if isinstance(value, str):
            if len(value) > _MAX_LITERAL:
                return _OPAQUE
            return _WrapperName(value) if "ArrayWrapper" in value or "numpy_pickle" in value else value
        if isinstance(value, bytes):
            return value if len(value) <= _MAX_LITERAL else _OPAQUE
        if isinstance(value, (int, float)):
            return value
        return _OPAQUE

    def _global(self, module: str, name: str):
        if (module, name) == _JOBLIB_WRAPPER:
            return _Global(module, name)
        if "joblib" in module or "ArrayWrapper" in name:
            raise _Unfollowable(f"the global {module}.{name}"[:200])
        return _Global(module, name)

    def _plain(self, value) -> None:
        """Refuse the wrapper class, its name, its copyreg arguments and its instances anywhere but
        where joblib.dump puts them: a value that never enters a container or a call cannot make an
        array wrapper the walk does not see."""
        if (
            _is_wrapper_class(value)
            or isinstance(value, (_ClassArgs, _WrapperName))
            or (isinstance(value, _Made) and value.wrapper)
        ):
            raise _Unfollowable("an array wrapper used the way joblib does not use it")

    def _tuple(self, items: list):
        if items and _is_wrapper_class(items[0]):
            for item in items[1:]:
                self._plain(item)
            return _ClassArgs(items)
        for item in items:
            self._plain(item)
        return tuple(items) if len(items) <= _MAX_ITEMS else _OPAQUE

    def _extend(self, target, items: list) -> None:
        for item in items:
            self._plain(item)
        if isinstance(target, _List) and not target.truncated:
            target.extend(items[: _MAX_ITEMS - len(target)])
            target.truncated = len(target) >= _MAX_ITEMS

    def _set_items(self, target, items: list) -> None:
        if len(items) % 2:
            raise IndexError("a key without its value")
        for item in items:
            self._plain(item)
        if isinstance(target, _Dict) and not target.truncated:
            for index in range(0, len(items), 2):
                if len(target) >= _MAX_ITEMS:
                    target.truncated = True
                    break
                target[items[index]] = items[index + 1]

    def _new(self, cls, args) -> _Made:
        """``cls.__new__(cls, *args)``: how joblib.dump's wrapper is made (with no arguments)."""
        if not isinstance(cls, _Global):
            raise _Unfollowable("an instance of a class the pickle computed")
        if _is_wrapper_class(cls):
            if args != ():
                raise _Unfollowable("an array wrapper made with arguments")
            return _Made(cls, args, wrapper=True)
        return self._call(cls, args)

    def _call(self, func, args, *, copyreg_allowed: bool = False) -> _Made:
        """A call, or an instance made by one. Only named globals are called and only named classes
        instantiated: a class the pickle computed (looked up at load time) could be the wrapper."""
        if not isinstance(func, _Global):
            raise _Unfollowable("a call of something the pickle computed")
        if (func.module, func.name) in _COPYREG_NEW | _COPYREG_NEW_EX:
            if copyreg_allowed and isinstance(args, _ClassArgs) and (func.module, func.name) in _COPYREG_NEW:
                return _Made(func, args, wrapper=True)
            if not (isinstance(args, tuple) and args and isinstance(args[0], _Global)):
                raise _Unfollowable("an instance of a class the pickle computed")
        self._plain(func)
        self._plain(args)
        return _Made(func, args)

    def _skip_array(self, attributes: dict) -> None:
        """Step over the bytes NumpyArrayWrapper.read_array reads: a padding length byte and its
        padding (when the wrapper has an alignment), then the array's items; an object array is a
        nested pickle instead."""
        shape = attributes.get("shape")
        if not isinstance(shape, (tuple, _List)) or getattr(shape, "truncated", False):
            raise _Unfollowable("an array without a readable shape")
        if not all(type(n) is int and 0 <= n < 2**63 for n in shape):
            raise _Unfollowable("an array shape that is not a list of sizes")
        count = math.prod(shape)
        if count >= 2**63:  # joblib's int64 product would wrap around
            raise _Unfollowable("an array larger than numpy can count")
        has_objects, item_size = _dtype_layout(attributes.get("dtype"))
        if has_objects:
            self._skip_nested_pickle()
            return
        padding = 0
        alignment = attributes.get("numpy_array_alignment_bytes")
        if alignment is not None:
            if not isinstance(alignment, (int, str, bytes, float)):
                raise _Unfollowable("an array alignment the scan cannot read")
            length_byte = self.stream.read(1)
            if len(length_byte) != 1:
                raise _Unfollowable("the file ends before an array")
            padding = length_byte[0]
        after = self.stream.tell() + padding + count * item_size
        if after > self.size:
            raise _Unfollowable("an array runs past the end of the file")
        self.stream.seek(after)

    def _skip_nested_pickle(self) -> None:
        start = self.stream.tell()
        frame_end = None
        for opcode, arg, pos in pickletools.genops(self.stream):
            end = self.stream.tell()
            if frame_end is not None and pos >= frame_end:
                frame_end = None
            if frame_end is not None and end > frame_end:
                raise _Unfollowable("an opcode runs past the end of its frame")
            if opcode.name == "FRAME":
                if frame_end is not None:
                    raise _Unfollowable("a frame begins inside another")
                frame_end = end + arg
        if frame_end is not None and self.stream.tell() != frame_end:
            raise _Unfollowable("an object array's pickle ends inside its frame")
        self.nested.append([(start, self.stream.tell())])


def _dtype_layout(dtype) -> tuple[bool, int]:
    """(whether it holds Python objects, its item size) of a pickled numpy dtype, as numpy's
    __setstate__ makes it."""
    if not (
        isinstance(dtype, _Made)
        and isinstance(dtype.func, _Global)
        and (dtype.func.module, dtype.func.name) == ("numpy", "dtype")
        and isinstance(dtype.args, tuple)
        and dtype.args
        and isinstance(dtype.args[0], str)
        and (match := _DTYPE_STRING.fullmatch(dtype.args[0]))
    ):
        raise _Unfollowable("an array dtype the scan cannot read")
    kind, digits = match[1], int(match[2])
    state = dtype.state
    if state is None:
        has_objects, item_size = kind == "O", digits * (4 if kind == "U" else 1)
    else:
        if not (isinstance(state, tuple) and len(state) >= 8 and state[0] in (3, 4)):
            raise _Unfollowable("an array dtype state the scan cannot read")
        elsize, flags = state[5], state[7]
        if type(elsize) is not int or type(flags) is not int:
            raise _Unfollowable("an array dtype state the scan cannot read")
        has_objects = bool(flags & 1)  # NPY_ITEM_HASOBJECT, which numpy takes from the state
        if kind in "USV":
            if elsize < 0:
                raise _Unfollowable("a flexible dtype without its size")
            item_size = elsize
        else:
            item_size = digits
    if item_size <= 0 and not has_objects:
        raise _Unfollowable("an array of empty items")
    return has_objects, item_size


def _scan_pickle(stream: IO[bytes], file_id: str) -> _PickleScan:
    """picklescan's reading of ``stream``; in a joblib file, of its opcodes only (its arrays' bytes
    read as opcodes would be noise, and would stop picklescan short of the rest)."""
    result = scan_pickle_bytes(stream, file_id)
    if not any((g.module, g.name) == _JOBLIB_WRAPPER for g in result.globals):
        return _PickleScan(result.globals, result.scan_err)
    stream.seek(0)
    try:
        groups = _JoblibWalk(stream).segments()
    except _Unfollowable as error:
        return _PickleScan(result.globals, True, joblib=True, reason=f"the joblib file could not be followed: {error}")
    found, scan_err = [], False
    for ranges in groups:
        with _copy_ranges(stream, ranges) as opcodes:
            part = scan_pickle_bytes(opcodes, file_id)
        found.extend(part.globals)
        scan_err = scan_err or part.scan_err
    return _PickleScan(found, scan_err, joblib=True)


def _copy_ranges(stream: IO[bytes], ranges: list[tuple[int, int]]) -> IO[bytes]:
    copy = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY_BYTES)  # noqa: SIM115 - the caller closes it
    for start, end in ranges:
        stream.seek(start)
        remaining = end - start
        while remaining > 0 and (chunk := stream.read(min(remaining, _CHUNK))):
            copy.write(chunk)
            remaining -= len(chunk)
    copy.seek(0)
    return copy


# --- compressed joblib files -----------------------------------------------------------------------------

# The names of pickle and joblib files (model.joblib, model.pkl.gz, model.jbl…): only these are
# decompressed, so that any other compressed file stays unknown.
_PICKLE_SUFFIXES = frozenset({"joblib", "pkl", "pickle", "jbl"})
# The prefixes joblib.compressor recognises. lz4 needs a package the registry does not install.
_COMPRESSIONS = (
    ("zlib", b"x"),
    ("gzip", b"\x1f\x8b"),
    ("bz2", b"BZh"),
    ("xz", b"\xfd7zXZ\x00"),
    ("lzma", b"\x5d\x00\x00"),
)
_LZ4_PREFIX = b"\x04\x22\x4d\x18"
# A compressed model may inflate to this many times the largest upload, no more: a decompression bomb
# stops there (in a temporary file, not in memory).
DECOMPRESSED_PER_UPLOADED_BYTE = 4
# liblzma allocates the dictionary a stream's header asks for; joblib's presets ask for 64 MiB at most.
_LZMA_MEMORY_LIMIT = 256 * 1024 * 1024


class _BadStream(Exception):
    """Compressed data that does not decompress."""


def decompressed_limit() -> int:
    # And never more temporary disk per scan than SCAN_MAX_DECOMPRESSED_BYTES, whatever the upload limit.
    return min(settings.MAX_UPLOAD_BYTES * DECOMPRESSED_PER_UPLOADED_BYTE, settings.SCAN_MAX_DECOMPRESSED_BYTES)


def _compressed_joblib(stream: IO[bytes]) -> ScanReport | None:
    """The pickle inside a compressed joblib file, scanned; None when the file is not compressed."""
    head = stream.read(8)
    stream.seek(0)
    compression = next((kind for kind, prefix in _COMPRESSIONS if head.startswith(prefix)), None)
    if compression is None:
        if head.startswith(_LZ4_PREFIX):
            return ScanReport(
                UNKNOWN, "unknown", metadata={"reason": "lz4 compression, which the registry does not read"}
            )
        return None
    limit = decompressed_limit()
    written, beyond, corrupt = 0, False, ""
    with tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY_BYTES) as inflated:
        try:
            for chunk in _inflated(stream, compression):
                if written == 0 and chunk[:1].decode("latin-1") not in pickletools.code2op:
                    return ScanReport(
                        UNKNOWN, "unknown", metadata={"reason": f"{compression}-compressed data that is not a pickle"}
                    )
                if written + len(chunk) > limit:
                    inflated.write(chunk[: limit - written])
                    beyond = True
                    break
                inflated.write(chunk)
                written += len(chunk)
        except _BadStream as error:
            if written == 0:
                return None  # not that compression after all: the file is read for what it is
            corrupt = str(error)
        if written == 0 and not beyond:
            return ScanReport(UNKNOWN, "unknown", metadata={"reason": f"an empty {compression} stream"})
        inflated.seek(0)
        report = _from_picklescan(_scan_pickle(inflated, "joblib"), "joblib")
    metadata = {"compression": compression, **report.metadata}
    if beyond:
        # What came before the limit still counts: a pickle runs its calls as it reads them.
        reason = f"decompressed beyond {limit} bytes, the most the registry inflates"
        if report.status == UNSAFE:
            return ScanReport(UNSAFE, "joblib", report.findings, {**metadata, "reason": reason})
        return ScanReport(UNKNOWN, "joblib", [], {**metadata, "reason": reason})
    if corrupt and report.status == CLEAN:
        return ScanReport(
            ERROR, "joblib", [], {**metadata, "reason": f"the {compression} stream is damaged: {corrupt}"}
        )
    return ScanReport(report.status, "joblib", report.findings, metadata)


def _decompressor(compression: str):
    if compression == "zlib":
        return zlib.decompressobj(zlib.MAX_WBITS)
    if compression == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if compression == "bz2":
        return bz2.BZ2Decompressor()
    lzma_format = lzma.FORMAT_XZ if compression == "xz" else lzma.FORMAT_ALONE
    return lzma.LZMADecompressor(format=lzma_format, memlimit=_LZMA_MEMORY_LIMIT)


def _inflated(stream: IO[bytes], compression: str) -> Iterator[bytes]:
    """The decompressed bytes of ``stream``, a chunk at a time, never more than a chunk in memory;
    stream after stream as joblib's readers go on, ignoring trailing data that is not one."""
    pending = b""
    first = True
    while True:
        decompressor = _decompressor(compression)
        try:
            yield from _one_stream(stream, decompressor, pending)
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as error:
            if first:
                raise _BadStream(str(error)[:200]) from error
            return
        first = False
        pending = decompressor.unused_data or stream.read(_CHUNK)
        if not pending:
            return


def _one_stream(stream: IO[bytes], decompressor, pending: bytes) -> Iterator[bytes]:
    is_zlib = not hasattr(decompressor, "needs_input")
    while not decompressor.eof:
        if is_zlib:
            # zlib keeps what it could not output in its window: asked again with no input, it goes on.
            pending = pending or stream.read(_CHUNK)
            chunk = decompressor.decompress(pending, _CHUNK)
            if not pending and not chunk and not decompressor.eof:
                raise EOFError("the compressed data ends early")
            pending = decompressor.unconsumed_tail
        elif decompressor.needs_input:
            if not pending and not (pending := stream.read(_CHUNK)):
                raise EOFError("the compressed data ends early")
            chunk, pending = decompressor.decompress(pending, _CHUNK), b""
        else:
            chunk = decompressor.decompress(b"", _CHUNK)
        if chunk:
            yield chunk


# --- ONNX ---------------------------------------------------------------------------------------------

# Bounds on what an ONNX model's protobuf may make the scan walk or list, whatever the file's size.
_ONNX_MAX_FIELDS = 1_000_000  # fields walked, most of them skipped by a seek
_ONNX_MAX_LISTED = 64  # inputs, outputs and opset imports listed
_ONNX_MAX_DIMS = 64
_ONNX_MAX_TEXT = 256  # characters kept of a name
_ONNX_MAX_TYPE_DEPTH = 4  # sequence(map(…)) nesting described
_ONNX_MAX_IR_VERSION = 255
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5
# TensorProto.DataType, by value, named as numpy names them where numpy has the type.
_ONNX_ELEMENT_TYPES = (
    *("undefined", "float32", "uint8", "int8", "uint16", "int16", "int32", "int64", "string", "bool", "float16"),
    *("float64", "uint32", "uint64", "complex64", "complex128", "bfloat16", "float8e4m3fn", "float8e4m3fnuz"),
    *("float8e5m2", "float8e5m2fnuz", "uint4", "int4", "float4e2m1", "float8e8m0", "uint2", "int2", "float6e2m3"),
    "float6e3m2",
)


class _Malformed(Exception):
    """Bytes that are not the protobuf message they were read as."""


class _Protobuf:
    """Protobuf's wire format read from a seekable stream: varints and length-delimited fields, whose
    contents are read only when asked for and skipped by a seek otherwise."""

    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        self.fields_left = _ONNX_MAX_FIELDS

    def varint(self) -> int:
        value = 0
        for shift in range(0, 70, 7):
            byte = self.stream.read(1)
            if not byte:
                raise _Malformed("the file ends inside a field")
            value |= (byte[0] & 0x7F) << shift
            if byte[0] < 0x80:
                return value & 0xFFFF_FFFF_FFFF_FFFF
        raise _Malformed("a number longer than ten bytes")

    def fields(self, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
        """(field number, wire type, value) of each field of the message in ``start:end``: a varint's
        value, or a length-delimited field's (offset, end), its contents left unread."""
        position = start
        while position < end:
            self.fields_left -= 1
            if self.fields_left < 0:
                raise _Malformed("more fields than the scan walks")
            self.stream.seek(position)
            key = self.varint()
            number, wire = key >> 3, key & 7
            if number == 0:
                raise _Malformed("a field numbered zero")
            value: Any = None
            if wire == _VARINT:
                value = self.varint()
                position = self.stream.tell()
            elif wire == _LENGTH_DELIMITED:
                length = self.varint()
                offset = self.stream.tell()
                position = offset + length
                value = (offset, position)
            elif wire == _FIXED64:
                position = self.stream.tell() + 8
            elif wire == _FIXED32:
                position = self.stream.tell() + 4
            else:
                raise _Malformed(f"wire type {wire}")
            if position > end:
                raise _Malformed("a field runs past the end of its message")
            yield number, wire, value

    def text(self, span: tuple[int, int]) -> str:
        start, end = span
        self.stream.seek(start)
        raw = self.stream.read(min(end - start, _ONNX_MAX_TEXT * 4))
        text = raw.decode("utf-8", "replace")
        if len(text) > _ONNX_MAX_TEXT or end - start > len(raw):
            return text[:_ONNX_MAX_TEXT] + "…"
        return text


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _expect(wire: int, expected: int, what: str) -> None:
    if wire != expected:
        raise _Malformed(f"{what} of the wrong wire type")


def _onnx(stream: IO[bytes]) -> ScanReport:
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    try:
        metadata = _onnx_model(_Protobuf(stream), size)
    except _Malformed as error:
        return ScanReport(UNKNOWN, "unknown", metadata={"reason": f"not a readable ONNX model: {error}"})
    finally:
        stream.seek(0)
    return ScanReport(CLEAN, "onnx", metadata=metadata)


def _onnx_model(wire: _Protobuf, size: int) -> dict[str, Any]:
    """The header of a ModelProto, which must span the whole file."""
    ir_version, producer_name, producer_version, opsets = None, "", "", []
    graph: dict[str, Any] | None = None
    for number, kind, value in wire.fields(0, size):
        if number == 1:
            _expect(kind, _VARINT, "ir_version")
            ir_version = _signed(value)
        elif number in (2, 3):
            _expect(kind, _LENGTH_DELIMITED, "the producer")
            if number == 2:
                producer_name = wire.text(value)
            else:
                producer_version = wire.text(value)
        elif number == 8:
            _expect(kind, _LENGTH_DELIMITED, "an opset import")
            if len(opsets) < _ONNX_MAX_LISTED:
                opsets.append(_onnx_opset(wire, value))
        elif number == 7:
            _expect(kind, _LENGTH_DELIMITED, "the graph")
            # Protobuf merges a message field met twice: the same accumulator reads both.
            graph = _onnx_graph(wire, value, graph or _new_graph())
    if ir_version is None or not 1 <= ir_version <= _ONNX_MAX_IR_VERSION:
        raise _Malformed("no IR version")
    if graph is None:
        raise _Malformed("no graph")
    metadata = {
        "ir_version": ir_version,
        "producer_name": producer_name,
        "producer_version": producer_version,
        "opset_imports": opsets,
        "graph_name": graph["name"],
        "inputs": graph["inputs"],
        "outputs": graph["outputs"],
        "nodes": graph["nodes"],
        "initializers": graph["initializers"],
    }
    for key in ("input", "output"):
        if graph[f"{key}_count"] > len(graph[f"{key}s"]):
            metadata[f"{key}s_total"] = graph[f"{key}_count"]
    return metadata


def _new_graph() -> dict[str, Any]:
    return {"name": "", "inputs": [], "outputs": [], "nodes": 0, "initializers": 0, "input_count": 0, "output_count": 0}


def _onnx_opset(wire: _Protobuf, span: tuple[int, int]) -> dict[str, Any]:
    domain, version = "", 0
    for number, kind, value in wire.fields(*span):
        if number == 1:
            _expect(kind, _LENGTH_DELIMITED, "an opset domain")
            domain = wire.text(value)
        elif number == 2:
            _expect(kind, _VARINT, "an opset version")
            version = _signed(value)
    return {"domain": domain, "version": version}


def _onnx_graph(wire: _Protobuf, span: tuple[int, int], graph: dict[str, Any]) -> dict[str, Any]:
    for number, kind, value in wire.fields(*span):
        if number == 1:
            graph["nodes"] += 1  # not read: a node's operator and attributes are beyond the summary
        elif number == 2:
            _expect(kind, _LENGTH_DELIMITED, "the graph name")
            graph["name"] = wire.text(value)
        elif number == 5:
            graph["initializers"] += 1  # the weights: skipped, never read
        elif number in (11, 12):
            _expect(kind, _LENGTH_DELIMITED, "a graph input or output")
            key = "input" if number == 11 else "output"
            graph[f"{key}_count"] += 1
            if len(graph[f"{key}s"]) < _ONNX_MAX_LISTED:
                graph[f"{key}s"].append(_onnx_value_info(wire, value))
    return graph


def _onnx_value_info(wire: _Protobuf, span: tuple[int, int]) -> dict[str, Any]:
    name, type_name, shape = "", "unknown", None
    for number, kind, value in wire.fields(*span):
        if number == 1:
            _expect(kind, _LENGTH_DELIMITED, "a value name")
            name = wire.text(value)
        elif number == 2:
            _expect(kind, _LENGTH_DELIMITED, "a value type")
            type_name, shape = _onnx_type(wire, value, depth=0)
    return {"name": name, "type": type_name, "shape": shape}


def _onnx_type(wire: _Protobuf, span: tuple[int, int], *, depth: int) -> tuple[str, list | None]:
    """A TypeProto as a name (``float32``, ``sequence(float32)``, ``map(int64, float32)``…) and, for a
    tensor, its shape: a list of sizes, symbolic names and None (unknown), or None (unknown rank)."""
    if depth >= _ONNX_MAX_TYPE_DEPTH:
        return "…", None
    described: tuple[str, list | None] = ("unknown", None)
    for number, kind, value in wire.fields(*span):
        if kind != _LENGTH_DELIMITED:
            continue  # denotation and fields of later versions
        if number in (1, 8):  # tensor_type, sparse_tensor_type
            element, shape = _onnx_tensor_type(wire, value)
            described = (element if number == 1 else f"sparse {element}", shape)
        elif number in (4, 9):  # sequence_type, optional_type: one elem_type
            inner = "unknown"
            for inner_number, inner_kind, inner_value in wire.fields(*value):
                if inner_number == 1 and inner_kind == _LENGTH_DELIMITED:
                    inner = _onnx_type(wire, inner_value, depth=depth + 1)[0]
            described = (f"{'sequence' if number == 4 else 'optional'}({inner})", None)
        elif number == 5:  # map_type: key_type, value_type
            key, mapped = "unknown", "unknown"
            for inner_number, inner_kind, inner_value in wire.fields(*value):
                if inner_number == 1 and inner_kind == _VARINT:
                    key = _onnx_element(inner_value)
                elif inner_number == 2 and inner_kind == _LENGTH_DELIMITED:
                    mapped = _onnx_type(wire, inner_value, depth=depth + 1)[0]
            described = (f"map({key}, {mapped})", None)
        elif number == 7:
            described = ("opaque", None)
    return described


def _onnx_tensor_type(wire: _Protobuf, span: tuple[int, int]) -> tuple[str, list | None]:
    element, shape = "undefined", None
    for number, kind, value in wire.fields(*span):
        if number == 1:
            _expect(kind, _VARINT, "an element type")
            element = _onnx_element(value)
        elif number == 2:
            _expect(kind, _LENGTH_DELIMITED, "a shape")
            shape = []
            for dim_number, dim_kind, dim in wire.fields(*value):
                if dim_number == 1 and len(shape) < _ONNX_MAX_DIMS:
                    _expect(dim_kind, _LENGTH_DELIMITED, "a dimension")
                    shape.append(_onnx_dimension(wire, dim))
    return element, shape


def _onnx_dimension(wire: _Protobuf, span: tuple[int, int]) -> int | str | None:
    size: int | str | None = None
    for number, kind, value in wire.fields(*span):
        if number == 1:
            _expect(kind, _VARINT, "a dimension size")
            size = _signed(value)
        elif number == 2:
            _expect(kind, _LENGTH_DELIMITED, "a dimension name")
            size = wire.text(value)
    return size


def _onnx_element(value: int) -> str:
    return _ONNX_ELEMENT_TYPES[value] if value < len(_ONNX_ELEMENT_TYPES) else f"type {value}"


# --- MLflow MLmodel ---------------------------------------------------------------------------------------

_MLMODEL_MAX_BYTES = 1024 * 1024
_MLMODEL_MAX_FLAVORS = 16
_MLMODEL_MAX_KEYS = 12  # scalar settings kept per flavor
_MLMODEL_MAX_COLUMNS = 32  # signature columns kept per side
_MLMODEL_MAX_TEXT = 200
_MLMODEL_FIELDS = ("model_uuid", "run_id", "utc_time_created", "mlflow_version")


def _mlmodel(stream: IO[bytes]) -> ScanReport:
    content = stream.read(_MLMODEL_MAX_BYTES + 1)
    stream.seek(0)
    if len(content) > _MLMODEL_MAX_BYTES:
        return ScanReport(UNKNOWN, "unknown", metadata={"reason": f"an MLmodel file over {_MLMODEL_MAX_BYTES} bytes"})
    try:
        # safe_load builds only plain YAML values: a !!python tag is refused, never constructed.
        document = yaml.safe_load(content)
    except (yaml.YAMLError, RecursionError, TypeError, ValueError) as error:
        return ScanReport(UNKNOWN, "unknown", metadata={"reason": f"not readable YAML: {error}"[:300]})
    flavors = document.get("flavors") if isinstance(document, dict) else None
    if not isinstance(flavors, dict) or not flavors:
        return ScanReport(UNKNOWN, "unknown", metadata={"reason": "a YAML file without MLflow flavors"})
    metadata: dict[str, Any] = {
        "flavors": {
            _text(name): _scalar_settings(options) for name, options in list(flavors.items())[:_MLMODEL_MAX_FLAVORS]
        }
    }
    signature = document.get("signature")
    if isinstance(signature, dict):
        metadata["signature"] = {side: _signature_side(signature.get(side)) for side in ("inputs", "outputs")}
    for key in _MLMODEL_FIELDS:
        if key in document and _is_scalar(document[key]):
            metadata[key] = _scalar(document[key])
    return ScanReport(CLEAN, "mlflow", metadata=metadata)


def _is_scalar(value) -> bool:
    return not isinstance(value, (dict, list, tuple, set))


def _scalar(value):
    """A YAML scalar as JSON keeps it: dates and other types as text, and long text cut."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) < 2**53:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return _text(value)


def _text(value) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= _MLMODEL_MAX_TEXT else text[:_MLMODEL_MAX_TEXT] + "…"


def _scalar_settings(options) -> dict[str, Any]:
    if not isinstance(options, dict):
        return {}
    scalars = ((key, value) for key, value in options.items() if _is_scalar(value))
    return {_text(key): _scalar(value) for key, value in itertools.islice(scalars, _MLMODEL_MAX_KEYS)}


def _signature_side(schema) -> dict[str, Any] | None:
    """A signature's inputs or outputs: MLflow writes them as a JSON list inside the YAML."""
    if not isinstance(schema, str):
        return None
    try:
        columns = json.loads(schema)
    except ValueError:
        return None
    if not isinstance(columns, list):
        return None
    kept = [_signature_column(column) for column in columns[:_MLMODEL_MAX_COLUMNS] if isinstance(column, dict)]
    return {"columns": kept, "total": len(columns)}


def _signature_column(column: dict) -> dict[str, Any]:
    kept = {_text(key): _scalar(value) for key, value in column.items() if key != "tensor-spec" and _is_scalar(value)}
    spec = column.get("tensor-spec")
    if isinstance(spec, dict):
        shape = spec.get("shape")
        kept["dtype"] = _scalar(spec.get("dtype"))
        if isinstance(shape, list) and len(shape) <= _ONNX_MAX_DIMS and all(type(n) is int for n in shape):
            kept["shape"] = shape
    return dict(list(kept.items())[:_MLMODEL_MAX_KEYS])
