"""Other apps' rows that point to stored objects, for ``services.storage_audit``.

mlmodels cannot import the apps built on it (the import-linter layers), yet the storage under
``users/`` is shared: experiments stores runs' and logged models' artifact files there. Such an app
registers, from its ``AppConfig.ready()``, a function that yields every key its rows name under a
prefix; the audit counts those keys as referenced (not orphans; missing if their object is gone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

# Each takes the audited prefix (``users`` or ``users/{id}``, no trailing slash) and yields keys.
KeySource = Callable[[str], Iterable[str]]

_sources: list[KeySource] = []


def register_key_source(source: KeySource) -> None:
    """Count the keys ``source`` yields as referenced (registering the same function twice is one)."""
    if source not in _sources:
        _sources.append(source)


def referenced_keys(prefix: str) -> Iterator[str]:
    """Every key the registered sources name under ``prefix``."""
    for source in _sources:
        yield from source(prefix)
