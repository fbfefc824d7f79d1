"""MLflow's search grammar for registered models and model versions, the part its registry speaks
(``mlflow/utils/search_utils.py``): clauses joined by AND, each ``<key> <comparator> <value>``.

Keys: ``name``; ``tags.<key>`` (or ``tags.`a key```); for versions also ``version_number``,
``run_id`` and ``source_path``. Comparators: ``=``, ``!=``, ``LIKE``, ``ILIKE`` (``%`` and ``_``
wildcards), ``IN (…)`` for ``run_id``. Values are quoted strings (numbers for ``version_number``).
What this grammar does not allow is an INVALID_PARAMETER_VALUE naming the problem, as MLflow's is.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from mlflow_api.errors import invalid

MAX_FILTER_LENGTH = 2000
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+)
      | (?P<comparator>!=|=|<=|>=|<|>)
      | (?P<paren>[(),])
      | (?P<word>(?:`[^`]*`|[A-Za-z_]\w*)(?:\.(?:`[^`]*`|\w+))*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    key: str  # "name", "tag", "version_number", "run_id", "source_path"
    tag: str | None  # the tag's key, for key == "tag"
    comparator: str  # "=", "!=", "LIKE", "ILIKE", "IN"
    value: object  # str, int, or a tuple of str for IN


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise invalid(f"Invalid filter '{text}': cannot read it at position {position}.")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _key(word: str, allowed: set[str]) -> tuple[str, str | None]:
    head, _, rest = word.partition(".")
    if head.lower() in ("tags", "tag") and rest:
        return "tag", rest.strip("`")
    name = word.strip("`").lower()
    if name.startswith("attributes."):
        name = name.removeprefix("attributes.")
    if name == "version":
        name = "version_number"
    if name not in allowed:
        raise invalid(f"Invalid attribute key '{word}' specified. Valid keys are '{sorted(allowed)}'")
    return name, None


def parse(text: str | None, *, allowed: set[str]) -> list[Clause]:
    """The clauses of ``text`` (empty for no filter); ``allowed`` are the attribute keys."""
    if not text or not text.strip():
        return []
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid(f"The filter is longer than {MAX_FILTER_LENGTH} characters.")
    tokens = _tokens(text)
    clauses, index = [], 0
    while index < len(tokens):
        if index and not (tokens[index][0] == "word" and tokens[index][1].upper() == "AND"):
            raise invalid(f"Invalid filter '{text}': clauses are joined with AND only.")
        if index:
            index += 1
        try:
            (key_kind, key_word), (comparator_kind, comparator) = tokens[index], tokens[index + 1]
        except IndexError:
            raise invalid(f"Invalid filter '{text}': a clause is '<key> <comparator> <value>'.") from None
        if key_kind != "word":
            raise invalid(f"Invalid filter '{text}': expected a key, got {key_word!r}.")
        key, tag = _key(key_word, allowed)
        if comparator_kind == "word" and comparator.upper() in ("LIKE", "ILIKE", "IN"):
            comparator = comparator.upper()
        elif comparator_kind == "word" and comparator.upper() == "NOT":
            raise invalid(f"Invalid filter '{text}': NOT is not supported.")
        elif comparator_kind != "comparator" or comparator not in ("=", "!="):
            raise invalid(f"Invalid comparator '{comparator}': use =, !=, LIKE or ILIKE.")
        index += 2
        if comparator == "IN":
            if key != "run_id":
                raise invalid(f"Invalid comparator 'IN' for '{key_word}': only run_id takes IN.")
            values, index = _list(tokens, index, text)
            clauses.append(Clause(key, tag, comparator, tuple(values)))
            continue
        try:
            value_kind, value = tokens[index]
        except IndexError:
            raise invalid(f"Invalid filter '{text}': '{key_word} {comparator}' has no value.") from None
        index += 1
        if key == "version_number":
            if value_kind != "number" or comparator in ("LIKE", "ILIKE"):
                raise invalid(f"Invalid filter '{text}': version_number is compared with = or != to a number.")
            clauses.append(Clause(key, tag, comparator, int(value)))
        elif value_kind != "string":
            raise invalid(f"Invalid filter '{text}': the value of '{key_word}' must be a quoted string.")
        else:
            clauses.append(Clause(key, tag, comparator, _unquote(value)))
    return clauses


def _list(tokens, index: int, text: str) -> tuple[list[str], int]:
    if index >= len(tokens) or tokens[index] != ("paren", "("):
        raise invalid(f"Invalid filter '{text}': IN takes a list in parentheses.")
    index += 1
    values = []
    while index < len(tokens) and tokens[index] != ("paren", ")"):
        kind, value = tokens[index]
        if kind != "string":
            raise invalid(f"Invalid filter '{text}': the values of IN are quoted strings.")
        values.append(_unquote(value))
        index += 1
        if index < len(tokens) and tokens[index] == ("paren", ","):
            index += 1
    if index >= len(tokens):
        raise invalid(f"Invalid filter '{text}': the list of IN is not closed.")
    return values, index + 1


def like_pattern(value: str) -> re.Pattern:
    """SQL LIKE's ``%`` and ``_`` as a regular expression (matched against the whole value)."""
    parts = []
    for char in value:
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


# --- page tokens ------------------------------------------------------------------------------------


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def offset_of(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeError):
        raise invalid(f"Invalid page token, could not base64-decode: {token[:100]!r}") from None
    if not isinstance(offset, int) or offset < 0:
        raise invalid("Invalid page token: its offset is not a non-negative integer.")
    return offset


def max_results(value, *, default: int, threshold: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid value {value!r} for parameter 'max_results': an integer is expected.") from None
    if number < 1 or number > threshold:
        raise invalid(f"Invalid value {number} for parameter 'max_results' supplied. It must be at most {threshold}.")
    return number
