"""Who receives which live update: the one place that decides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def may_receive(user, event: Mapping[str, Any]) -> bool:
    """Whether ``user`` may be told of ``event`` (an ``Event.as_dict()``).

    Every signed-in user may read every model, version and experiment (DESIGN, "Access rules"), so
    every active signed-in user receives every event about a model. Anything that is about no model
    goes to nobody until a rule for it is written here.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return event.get("model") is not None
