"""The changes of stage and alias, made on a model row its caller has locked, audited in the same
transaction.

Shared by ``mlmodels.services`` (an owner's or approver's own change) and ``mlmodels.approvals``
(an approved request, carried out in the decision's transaction). Nothing here checks who is asking
or publishes an event: the callers have decided that, and publish once their transaction commits.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from mlmodels.models import ALLOWED_MOVES, AliasEvent, LifecycleEvent, MLModel, ModelVersion, ScanStatus, Stage


def lock(model: MLModel) -> MLModel:
    """``model``'s row, locked until the transaction ends (``SELECT … FOR UPDATE`` on PostgreSQL;
    SQLite runs every transaction with an immediate write lock)."""
    return MLModel.objects.select_for_update().get(pk=model.pk)


def refresh_from(target: MLModel, source: MLModel) -> None:
    """Bring the caller's instance up to date without another query."""
    for field in MLModel._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))


def check_stage(to_stage: str) -> None:
    if to_stage not in Stage.values:
        raise ValidationError(
            {"lifecycle": f"Unknown stage {to_stage!r}; stages are: {', '.join(Stage.values)}."}, code="invalid_choice"
        )


def check_move(locked: MLModel, to_stage: str) -> None:
    """Refuse a move ``ALLOWED_MOVES`` does not have from the locked row's stage, and production
    without an artifact file."""
    from_stage = locked.lifecycle
    allowed = ALLOWED_MOVES[from_stage]
    if to_stage not in allowed:
        raise ValidationError(
            {
                "lifecycle": f"Cannot move from {from_stage} to {to_stage}. "
                f"Allowed moves from {from_stage}: {', '.join(allowed)}."
            },
            code="invalid_transition",
        )
    if to_stage == Stage.PRODUCTION and not locked.has_artifact:
        raise ValidationError(
            {"lifecycle": "A model without an artifact file cannot go to production. Upload a file first."},
            code="missing_file",
        )
    if to_stage == Stage.PRODUCTION:
        current = locked.versions.order_by("-version_number").only("version_number", "scan_status", "scan_findings")
        if (version := current.first()) is not None and (refusal := unsafe_refusal(version, "go to production")):
            raise ValidationError({"lifecycle": refusal}, code="unsafe_artifact")


def move(locked: MLModel, *, actor, to_stage: str, comment: str, approval=None) -> str:
    """Move the locked model to ``to_stage`` (checked) and audit it; returns the stage it left."""
    check_move(locked, to_stage)
    from_stage = locked.lifecycle
    locked.lifecycle = to_stage
    locked.save(update_fields=["lifecycle", "updated_at"])
    LifecycleEvent.objects.create(
        model=locked, from_stage=from_stage, to_stage=to_stage, actor=actor, comment=comment, approval=approval
    )
    return from_stage


def version_of(model: MLModel, number: int) -> ModelVersion:
    version = model.versions.filter(version_number=number).first()
    if version is None:
        raise LookupError(f"Model {model.pk} has no version {number}.")
    return version


def unsafe_refusal(version: ModelVersion, what: str) -> str | None:
    """Why ``version`` may not ``what`` (its artifact scanned unsafe), or None."""
    if version.scan_status != ScanStatus.UNSAFE:
        return None
    calls = ", ".join(version.scan_findings) or "code"
    return (
        f"Version {version.version_number}'s artifact is unsafe: loading it would call {calls}. "
        f"It cannot {what}; upload a file saved without it (safetensors, ONNX) or roll back."
    )


def protected_alias_refusal(version: ModelVersion) -> str | None:
    """Why ``version`` may not receive a protected alias, or None."""
    return unsafe_refusal(version, "receive a protected alias")


def check_alias_target(locked: MLModel, *, version_number: int, protected: bool) -> ModelVersion:
    """The version ``version_number`` of the locked model, which the alias may point at."""
    version = version_of(locked, version_number)
    if protected and (refusal := protected_alias_refusal(version)):
        raise ValidationError({"version": [refusal]}, code="unsafe_version")
    return version


def point_alias(
    locked: MLModel, *, actor, alias: str, version_number: int, protected: bool, approval=None
) -> int | None:
    """Point ``alias`` of the locked model at its version ``version_number`` (checked), audited when
    it changes anything; returns the version it pointed at before."""
    check_alias_target(locked, version_number=version_number, protected=protected)
    previous = locked.aliases.get(alias)
    if previous != version_number:
        locked.aliases = {**locked.aliases, alias: version_number}
        locked.save(update_fields=["aliases", "updated_at"])
        AliasEvent.objects.create(
            model=locked, alias=alias, from_version=previous, to_version=version_number, actor=actor, approval=approval
        )
    return previous


def check_has_alias(locked: MLModel, alias: str) -> int:
    """The version ``alias`` of the locked model points at; an alias it does not have is a ``LookupError``."""
    if alias not in locked.aliases:
        raise LookupError(f"Model {locked.pk} has no alias “{alias}”.")
    return locked.aliases[alias]


def drop_alias(locked: MLModel, *, actor, alias: str, approval=None) -> int:
    """Remove ``alias`` of the locked model, audited; returns the version it pointed at."""
    previous = check_has_alias(locked, alias)
    locked.aliases = {name: number for name, number in locked.aliases.items() if name != alias}
    locked.save(update_fields=["aliases", "updated_at"])
    AliasEvent.objects.create(
        model=locked, alias=alias, from_version=previous, to_version=None, actor=actor, approval=approval
    )
    return previous
