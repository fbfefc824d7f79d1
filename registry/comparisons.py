"""SQL comparisons as ORM filters that match the same rows on SQLite and PostgreSQL, for the
search grammars the apps accept (MLflow's): ``compared`` for =, !=, <, <=, >, >=, IN, NOT IN, LIKE
and ILIKE, with SQL's NULL rule; ``like`` for LIKE patterns (``%`` any run of characters, ``_``
one; no escape character), case-sensitive for LIKE, case-insensitive for ILIKE.

SQLite's own LIKE ignores ASCII case and Django's ``contains``/``startswith`` escape the wildcards, so
neither says LIKE by itself. A pattern that is a prefix, a suffix, a substring or a whole value is
the case-insensitive lookup of that shape (``UPPER(col) LIKE UPPER(…)`` on PostgreSQL, which its
trigram indexes serve), narrowed for LIKE by the case-sensitive one (PostgreSQL) or a regular
expression (SQLite); any other pattern is a regular expression.
"""

from __future__ import annotations

import re

from django.db import connection
from django.db.models import Q


def like_regex(pattern: str) -> str:
    """``pattern`` as a regular expression matching whole values (Python's and PostgreSQL's alike)."""
    body = "".join(".*" if char == "%" else "." if char == "_" else re.escape(char) for char in pattern)
    return f"(?s)^{body}$"


def _shape(pattern: str) -> tuple[str, str] | None:
    """("exact" | "startswith" | "endswith" | "contains", the literal) for a pattern of that shape."""
    if "_" in pattern:
        return None
    starts, ends = pattern.startswith("%"), pattern.endswith("%") and len(pattern) > 1
    literal = pattern[1 if starts else 0 : -1 if ends else None]
    if "%" in literal:
        return None
    if starts and ends:
        return "contains", literal
    return ("endswith" if starts else "startswith" if ends else "exact"), literal


def like(field: str, pattern: str, *, ignore_case: bool = False) -> Q:
    """The rows whose ``field`` matches the LIKE (or, with ``ignore_case``, ILIKE) ``pattern``."""
    regex = Q(**{f"{field}__{'iregex' if ignore_case else 'regex'}": like_regex(pattern)})
    shape = _shape(pattern)
    if shape is None:
        return regex
    lookup, literal = shape
    folded = Q(**{f"{field}__i{lookup}": literal})
    if ignore_case:
        return folded
    if connection.vendor == "postgresql":
        return folded & Q(**{f"{field}__{lookup}": literal})
    return folded & regex


COMPARATORS = ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "LIKE", "ILIKE")
_ORDERED = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


def compared(field: str, comparator: str, value) -> Q:
    """The rows whose ``field`` meets ``field comparator value`` as SQL compares (one of COMPARATORS;
    a sequence for IN and NOT IN, a pattern for LIKE and ILIKE): a NULL meets none, ``!=`` included."""
    if comparator == "=":
        return Q(**{field: value})
    if comparator in ("!=", "NOT IN"):
        lookup = field if comparator == "!=" else f"{field}__in"
        return ~Q(**{lookup: value}) & Q(**{f"{field}__isnull": False})
    if comparator == "IN":
        return Q(**{f"{field}__in": value})
    if comparator in ("LIKE", "ILIKE"):
        return like(field, value, ignore_case=comparator == "ILIKE")
    if comparator not in _ORDERED:
        raise ValueError(f"Unknown comparator {comparator!r}; one of {', '.join(COMPARATORS)}.")
    return Q(**{f"{field}__{_ORDERED[comparator]}": value})
