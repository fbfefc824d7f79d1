"""Drive one HTTP workload with wrk (Debian's package) and read its figures.

A workload is a wrk Lua script made from a request template: the path may hold ``{id}`` (a random
integer from ``ids``) and ``{version}`` (1..3), and the body ``{n}`` (a per-request counter), so each
request names a different model the way a pipeline's would.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

WRK = "wrk"


@dataclass(frozen=True)
class Workload:
    name: str
    method: str
    path: str
    ids: tuple[int, int] = (1, 1)
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class WrkResult:
    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors + non-2xx/3xx answers
    detail: str


def ensure_wrk() -> str:
    """wrk's path, installing Debian's package first when it is missing (the machine's root user)."""
    found = shutil.which(WRK)
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
    return shutil.which(WRK) or WRK


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for this text


def lua_script(workload: Workload, *, close_connections: bool) -> str:
    headers = {"Content-Type": "application/json", **workload.headers}
    if close_connections:
        headers["Connection"] = "close"
    header_lines = "\n".join(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
    low, high = workload.ids
    body = _lua_string(workload.body) if workload.body is not None else "nil"
    return f"""
{header_lines}
local counter = 0
local low, high = {low}, {high}
local path_template = {_lua_string(workload.path)}
local body_template = {body}

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed + os.time())
end

request = function()
  counter = counter + 1
  local id = tostring(math.random(low, high))
  local version = tostring(math.random(1, 3))
  local path = path_template:gsub("{{id}}", id):gsub("{{version}}", version)
  local body = nil
  if body_template then
    body = body_template:gsub("{{n}}", tostring(counter)):gsub("{{id}}", id)
  end
  return wrk.format({_lua_string(workload.method)}, path, nil, body)
end
"""


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def parse(output: str) -> WrkResult:
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    seconds = float(total.group(2)) * {"s": 1, "m": 60, "ms": 0.001}[total.group(3)]
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+\w+)", output, re.MULTILINE))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    # A read "error" is how wrk counts a server closing the connection after a response: with
    # `Connection: close` every request has one, so only connect, write and timeout count here.
    errors = sum(int(socket_errors.group(i)) for i in (1, 3, 4)) if socket_errors else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return WrkResult(
        requests=int(total.group(1)),
        seconds=seconds,
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=_milliseconds(percentiles["50"]),
        p99_ms=_milliseconds(percentiles["99"]),
        errors=errors,
        detail=output,
    )


def run(
    base_url: str,
    workload: Workload,
    *,
    connections: int = 8,
    threads: int = 2,
    seconds: int = 20,
    close_connections: bool = False,
) -> WrkResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(workload, close_connections=close_connections))
    try:
        completed = subprocess.run(
            [
                ensure_wrk(),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "--latency",
                "-s",
                script.name,
                base_url,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        Path(script.name).unlink()
    return parse(completed.stdout)
