"""MLflow's search grammar (``mlflow/utils/search_utils.py``), read into neutral structures the
selectors apply: clauses joined by AND, each ``<key> <comparator> <value>``.

- Registered models and model versions (``parse``): ``name``; ``tags.<key>`` (or ``tags.`a key```);
  for versions also ``version_number``, ``run_id`` and ``source_path``. Comparators ``=``, ``!=``,
  ``LIKE``, ``ILIKE`` (``%`` and ``_`` wildcards), ``IN (…)`` and ``NOT IN (…)`` for the keys that
  take lists, ``<``, ``<=``, ``>``, ``>=`` for the numeric ones (``version_number``).
- Runs (``run_conditions``, ``run_orders``): ``metrics.<key>`` compared with numbers by ``=``,
  ``!=``, ``<``, ``<=``, ``>``, ``>=``; ``params.<key>`` and ``tags.<key>`` with quoted strings by
  ``=``, ``!=``, ``LIKE``, ``ILIKE``, or ``IS [NOT] NULL``; the attributes (``attributes.<key>`` or
  the bare key: ``run_id``, ``run_name``, ``user_id``, ``status``, ``artifact_uri`` as strings,
  ``start_time``, ``end_time`` and ``created`` as numbers), ``run_id IN (…)`` / ``NOT IN (…)``.
  ``order_by`` takes ``metrics.x``, ``params.x``, ``tags.x`` or an attribute, then ASC or DESC.

What the grammar does not allow is an INVALID_PARAMETER_VALUE naming the problem, as MLflow's is.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from experiments.selectors import RunCondition, RunOrder
from mlflow_api.errors import invalid
from registry.comparisons import like_regex
from registry.validators import lone_surrogate

MAX_FILTER_LENGTH = 2000
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
      | (?P<comparator>!=|<>|<=|>=|=|<|>)
      | (?P<paren>[(),])
      | (?P<word>(?:`[^`]*`|[A-Za-z_]\w*)(?:\.(?:`[^`]*`|"[^"]*"|\w+))*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL"}


@dataclass(frozen=True)
class Clause:
    """One clause of a registry search."""

    key: str  # "name", "tag", "version_number", "run_id", "source_path"
    tag: str | None  # the tag's key, for key == "tag"
    comparator: str  # "=", "!=", "LIKE", "ILIKE", "IN", "NOT IN", "<", "<=", ">", ">="
    value: object  # str, int, or a tuple of str for IN and NOT IN


@dataclass(frozen=True)
class _Raw:
    """A clause as written: its key word, comparator (upper case), value and the value's kind."""

    word: str
    comparator: str
    kind: str  # "string", "number", "list" or "none" (IS NULL, IS NOT NULL)
    value: object


# --- reading a filter -------------------------------------------------------------------------------


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
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _number(token: str) -> int | float:
    return float(token) if any(char in token for char in ".eE") else int(token)


def _is(token: tuple[str, str] | None, keyword: str) -> bool:
    return token is not None and token[0] == "word" and token[1].upper() == keyword


def _comparator(tokens: list, index: int, text: str, word: str) -> tuple[str, int]:
    at = tokens[index] if index < len(tokens) else None
    after = tokens[index + 1] if index + 1 < len(tokens) else None
    if at is None:
        raise invalid(f"Invalid filter '{text}': '{word}' has no comparator; a clause is '<key> <comparator> <value>'.")
    if at[0] == "comparator":
        return ("!=" if at[1] == "<>" else at[1]), index + 1
    for keyword in ("LIKE", "ILIKE", "IN"):
        if _is(at, keyword):
            return keyword, index + 1
    if _is(at, "NOT") and _is(after, "IN"):
        return "NOT IN", index + 2
    if _is(at, "IS") and _is(after, "NULL"):
        return "IS NULL", index + 2
    if _is(at, "IS") and _is(after, "NOT") and _is(tokens[index + 2] if index + 2 < len(tokens) else None, "NULL"):
        return "IS NOT NULL", index + 3
    raise invalid(f"Invalid comparator '{at[1]}' after '{word}' in filter '{text}'.")


def _list(tokens: list, index: int, text: str) -> tuple[tuple[str, ...], int]:
    if index >= len(tokens) or tokens[index] != ("paren", "("):
        raise invalid(f"Invalid filter '{text}': IN and NOT IN take a list of quoted strings in parentheses.")
    index += 1
    values = []
    while index < len(tokens) and tokens[index] != ("paren", ")"):
        kind, value = tokens[index]
        if kind != "string":
            raise invalid(f"Invalid filter '{text}': the values of IN and NOT IN are quoted strings, not {value!r}.")
        values.append(_unquote(value))
        index += 1
        if index < len(tokens) and tokens[index] == ("paren", ","):
            index += 1
        elif index < len(tokens) and tokens[index] != ("paren", ")"):
            raise invalid(f"Invalid filter '{text}': the values of IN and NOT IN are separated by commas.")
    if index >= len(tokens):
        raise invalid(f"Invalid filter '{text}': the list of IN or NOT IN is not closed.")
    if not values:
        raise invalid(f"Invalid filter '{text}': IN and NOT IN take a non-empty list of quoted strings.")
    return tuple(values), index + 1


def _raw_clauses(text: str | None) -> list[_Raw]:
    if not text or not text.strip():
        return []
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid(f"The filter is longer than {MAX_FILTER_LENGTH} characters.")
    if "\x00" in text or lone_surrogate(text):
        raise invalid("The filter holds a NUL character or a lone surrogate, which no value can hold.")
    tokens = _tokens(text)
    clauses: list[_Raw] = []
    index = 0
    while index < len(tokens):
        if clauses:
            if not _is(tokens[index], "AND"):
                raise invalid(f"Invalid filter '{text}': clauses are joined with AND only, not {tokens[index][1]!r}.")
            index += 1
            if index >= len(tokens):
                raise invalid(f"Invalid filter '{text}': it ends with AND.")
        kind, word = tokens[index]
        if kind != "word" or word.upper() in _KEYWORDS:
            raise invalid(f"Invalid filter '{text}': expected a key, got {word!r}.")
        comparator, index = _comparator(tokens, index + 1, text, word)
        if comparator in ("IS NULL", "IS NOT NULL"):
            clauses.append(_Raw(word, comparator, "none", None))
            continue
        if comparator in ("IN", "NOT IN"):
            values, index = _list(tokens, index, text)
            clauses.append(_Raw(word, comparator, "list", values))
            continue
        if index >= len(tokens):
            raise invalid(f"Invalid filter '{text}': '{word} {comparator}' has no value.")
        value_kind, value = tokens[index]
        index += 1
        if value_kind == "string":
            clauses.append(_Raw(word, comparator, "string", _unquote(value)))
        elif value_kind == "number":
            number = _number(value)
            if isinstance(number, int) and not -(2**63) <= number < 2**63:
                raise invalid(f"Invalid filter: the value of '{word}' is out of range (a 64-bit integer): {value[:40]}")
            clauses.append(_Raw(word, comparator, "number", number))
        else:
            raise invalid(f"Invalid filter '{text}': the value of '{word}' must be a quoted string or a number.")
    return clauses


def _strip_quotes(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "`\"'":
        return key[1:-1]
    return key


def _split_key(word: str) -> tuple[str | None, str]:
    """``tags.`my key``` as ("tags", "my key"); a word without an entity type as (None, the key)."""
    if word.startswith("`"):
        end = word.find("`", 1)
        head, rest = word[: end + 1], word[end + 1 :]
        if not rest:
            return None, _strip_quotes(head)
        return _strip_quotes(head), _strip_quotes(rest.removeprefix("."))
    head, dot, rest = word.partition(".")
    return (head, _strip_quotes(rest)) if dot else (None, word)


# --- registered models and model versions -------------------------------------------------------------


def parse(
    text: str | None, *, allowed: set[str], lists: frozenset[str] = frozenset(), numbers: frozenset[str] = frozenset()
) -> list[Clause]:
    """The clauses of ``text`` (empty for no filter). ``allowed`` are the attribute keys, ``lists`` those
    compared with IN and NOT IN, ``numbers`` those compared as integers (=, !=, <, <=, >, >=)."""
    clauses = []
    for raw in _raw_clauses(text):
        entity, key = _split_key(raw.word)
        if entity is not None and entity.lower() in ("tag", "tags"):
            clauses.append(_tag_clause(raw, key))
            continue
        if entity is not None and entity.lower() not in ("attribute", "attributes", "attr"):
            raise invalid(f"Invalid entity type '{entity}'. Valid entity types are ('attribute', 'tag', 'tags')")
        name = {"version": "version_number"}.get(key.lower(), key.lower())
        if name not in allowed:
            raise invalid(f"Invalid attribute key '{raw.word}' specified. Valid keys are '{sorted(allowed)}'")
        clauses.append(_number_clause(raw, name) if name in numbers else _text_clause(raw, name, name in lists))
    return clauses


def _refused(raw: _Raw, allowed: tuple[str, ...]) -> None:
    if raw.comparator not in allowed:
        raise invalid(f"Invalid comparator '{raw.comparator}' for '{raw.word}': use {', '.join(allowed)}.")


def _tag_clause(raw: _Raw, key: str) -> Clause:
    _refused(raw, ("=", "!=", "LIKE", "ILIKE"))
    if raw.kind != "string":
        raise invalid(f"Expected a quoted string value for tag '{key}' (e.g. 'my-value'). Got value {raw.value}")
    return Clause("tag", key, raw.comparator, raw.value)


def _number_clause(raw: _Raw, name: str) -> Clause:
    _refused(raw, ("=", "!=", "<", "<=", ">", ">="))
    value = raw.value
    if raw.kind == "string" and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"Invalid value for numeric attribute '{name}': {raw.value!r}. An integer is expected.")
    return Clause(name, None, raw.comparator, value)


def _text_clause(raw: _Raw, name: str, takes_list: bool) -> Clause:
    _refused(raw, ("=", "!=", "LIKE", "ILIKE", *(("IN", "NOT IN") if takes_list else ())))
    if raw.kind not in ("list", "string"):
        raise invalid(f"Invalid filter: the value of '{raw.word}' must be a quoted string, got {raw.value!r}.")
    return Clause(name, None, raw.comparator, raw.value)


def like_pattern(value: str) -> re.Pattern:
    """SQL LIKE's ``%`` and ``_`` as a regular expression (matched against the whole value)."""
    return re.compile(like_regex(value).removeprefix("(?s)^").removesuffix("$"), re.DOTALL)


# --- runs -------------------------------------------------------------------------------------------

_RUN_ENTITIES = {
    "metric": "metric",
    "metrics": "metric",
    "parameter": "param",
    "parameters": "param",
    "param": "param",
    "params": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
# MLflow's searchable (and orderable) run attributes, with its aliases, as RUN_ATTRIBUTES names them.
_RUN_KEYS = {
    "run_id": "run_id",
    "run_name": "run_name",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
    "user_id": "user_id",
    "status": "status",
    "artifact_uri": "artifact_uri",
    "start_time": "start_time",
    "end_time": "end_time",
    "created": "start_time",
    "Created": "start_time",
}
_RUN_NUMBER_KEYS = {"start_time", "end_time"}
_ENTITY_TYPES = ["metric", "parameter", "tag", "attribute"]


def _run_key(word: str, *, what: str) -> tuple[str, str]:
    entity, key = _split_key(word)
    if entity is None:
        entity = "attribute"
    if entity in ("dataset", "datasets"):
        raise invalid(f"{what} by datasets is not supported here ('{word}').")
    kind = _RUN_ENTITIES.get(entity)
    if kind is None:
        raise invalid(f"Invalid entity type '{entity}'. Valid values are {_ENTITY_TYPES}")
    if not key:
        raise invalid(f"Invalid identifier '{word}': the key after '{entity}.' is missing.")
    if kind == "attribute":
        if key not in _RUN_KEYS:
            raise invalid(
                f"Invalid attribute key '{key}' specified. Valid keys are '{sorted(set(_RUN_KEYS.values()))}'"
            )
        key = _RUN_KEYS[key]
    return kind, key


def run_conditions(text: str | None) -> list[RunCondition]:
    """MLflow's run filter as the conditions ``experiments.selectors.run_search`` applies."""
    conditions = []
    for raw in _raw_clauses(text):
        kind, key = _run_key(raw.word, what="Filtering runs")
        numeric = kind == "metric" or (kind == "attribute" and key in _RUN_NUMBER_KEYS)
        if numeric and raw.kind != "number":
            raise invalid(f"Expected a numeric value for '{raw.word}'. Found {raw.value!r}")
        if not numeric and raw.kind == "number":
            raise invalid(f"Expected a quoted string value for '{raw.word}' (e.g. 'my-value'). Got value {raw.value}")
        if kind == "attribute" and raw.kind == "list" and key != "run_id":
            raise invalid("Only ['run_id'] attributes support comparison with a list of quoted string values.")
        condition = RunCondition(kind, key, raw.comparator, raw.value)
        if problem := condition.problem():
            raise invalid(f"Invalid filter '{text}': {problem}")
        conditions.append(condition)
    return conditions


def order_terms(values) -> list[tuple[str, bool, str]]:
    """MLflow's ``order_by`` (a list, or one string) as (key word, ascending, the term as sent)."""
    if not values:
        return []
    terms = []
    for value in values if isinstance(values, list) else [values]:
        if not isinstance(value, str) or len(value) > MAX_FILTER_LENGTH or "\x00" in value or lone_surrogate(value):
            raise invalid(f"Invalid order_by clause {str(value)[:100]!r}: a string naming a key, then ASC or DESC.")
        try:
            tokens = _tokens(value)
        except Exception:
            raise invalid(f"Invalid order_by clause '{value}'. Could not be parsed.") from None
        words = [token for kind, token in tokens if kind == "word"]
        if not tokens or len(words) != len(tokens) or len(tokens) > 2:
            raise invalid(f"Invalid order_by clause '{value}'. Could not be parsed.")
        if len(tokens) == 2 and tokens[1][1].upper() not in ("ASC", "DESC"):
            raise invalid(f"Invalid ordering key in order_by clause '{value}': ASC or DESC.")
        terms.append((tokens[0][1], len(tokens) == 1 or tokens[1][1].upper() == "ASC", str(value)))
    return terms


def run_orders(values) -> list[RunOrder]:
    """MLflow's ``order_by`` of a run search as RunOrders; each key at most once."""
    orders, seen = [], set()
    for word, ascending, _term in order_terms(values):
        kind, key = _run_key(word, what="Ordering runs")
        if (kind, key) in seen:
            raise invalid(f"`order_by` contains duplicate fields: {values}")
        seen.add((kind, key))
        orders.append(RunOrder(kind, key, ascending))
    return orders


# --- page tokens ------------------------------------------------------------------------------------


def page_token(offset: int) -> str:
    """MLflow's page token: ``{"offset": n}`` in base64."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def offset_of(token: str | None) -> int:
    if not token:
        return 0
    if not isinstance(token, str):
        raise invalid(f"Invalid page token {token!r:.100}: a string is expected.")
    try:
        # MLflow's tokens are base64; ours were once URL-safe base64, which reads the same way here.
        decoded = base64.b64decode(token.translate(str.maketrans("-_", "+/")).encode(), validate=True)
        offset = json.loads(decoded)["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeError):
        raise invalid(f"Invalid page token, could not base64-decode: {token[:100]!r}") from None
    if isinstance(offset, str) and offset.isdigit():
        offset = int(offset)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
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
