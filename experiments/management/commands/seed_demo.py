"""Demo data for a first look: users, experiments with their runs, ~50 models with versions, files and stage history.

Idempotent: rows are found by name and created only when missing, so running it again adds nothing.
The demo superuser's password is generated on every run and printed (there is no fixed default);
the other demo users cannot log in until a superuser gives them a password.
"""

from __future__ import annotations

import io
import json
import random
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from experiments import runs
from experiments.models import Experiment, RunStatus
from experiments.services import experiment_create
from mlmodels import services
from mlmodels.models import ApprovalRequest, Framework, MLModel, ProtectedAlias, Stage, TaskType

SUPERUSER = "admin"
TEAM = ("alice", "bob", "carol")
EXPERIMENTS = (
    ("churn-baseline", "First churn models on last quarter's data", ["churn", "baseline"]),
    ("fraud-gbdt-sweep", "Gradient-boosting sweep for card fraud", ["fraud", "sweep"]),
    ("vision-finetune", "Fine-tuning image backbones on product photos", ["vision"]),
    ("demand-forecast", "Weekly demand forecasting per store", ["forecast", "retail"]),
    ("support-intent", "Intent classification of support tickets", ["nlp"]),
)
SUBJECTS = ("churn", "fraud", "demand", "intent", "sentiment", "defect", "ranking", "pricing", "anomaly", "segment")
# A path through the lifecycle for each target stage, from development.
PATHS = {
    Stage.DEVELOPMENT: [],
    Stage.STAGING: [Stage.STAGING],
    Stage.PRODUCTION: [Stage.STAGING, Stage.PRODUCTION],
    Stage.ARCHIVED: [Stage.STAGING, Stage.ARCHIVED],
}
FILE_SUFFIX = {
    Framework.SKLEARN: "joblib",
    Framework.PYTORCH: "pt",
    Framework.TENSORFLOW: "keras",
    Framework.KERAS: "keras",
    Framework.XGBOOST: "ubj",
    Framework.LIGHTGBM: "txt",
    Framework.ONNX: "onnx",
    Framework.HUGGINGFACE: "safetensors",
    Framework.OTHER: "bin",
}
MODEL_COUNT = 50
# Runs of each demo experiment, and the points of each of their metrics.
RUN_COUNT = 4
RUN_STEPS = 10


def _artifact(name: str, version: int, rng: random.Random, suffix: str) -> io.BytesIO:
    """A small real file: the model's weights as JSON (a few KB), different for every version."""
    weights = {"model": name, "version": version, "weights": [round(rng.uniform(-1, 1), 6) for _ in range(256)]}
    data = io.BytesIO(json.dumps(weights).encode())
    data.name = f"{name}-v{version}.{suffix}"
    return data


def _metrics(rng: random.Random, base: float) -> dict[str, float]:
    accuracy = min(0.99, max(0.5, base + rng.uniform(-0.03, 0.05)))
    precision = min(0.99, max(0.4, accuracy - rng.uniform(0, 0.08)))
    recall = min(0.99, max(0.4, accuracy - rng.uniform(0, 0.1)))
    return {
        "accuracy": round(accuracy, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1_score": round(2 * precision * recall / (precision + recall), 4),
    }


class Command(BaseCommand):
    help = "Create demo users, experiments and models (idempotent) and print the demo login."

    def handle(self, *args, **options):
        User = get_user_model()
        password = secrets.token_urlsafe(12)
        admin, _ = User.objects.get_or_create(
            username=SUPERUSER,
            defaults={"email": "admin@example.com", "is_staff": True, "is_superuser": True},
        )
        admin.set_password(password)
        admin.save(update_fields=["password"])

        team = []
        for username in TEAM:
            member, created = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            if created:
                member.set_unusable_password()
                member.save(update_fields=["password"])
            team.append(member)

        rng = random.Random(2026)  # noqa: S311 (reproducible demo data, not a secret)
        experiments = [self._experiment(owner=team[i % len(team)], spec=spec) for i, spec in enumerate(EXPERIMENTS)]
        for experiment in experiments:
            self._runs(experiment=experiment, rng=rng)
        created = sum(
            self._model(index=i, admin=admin, team=team, experiments=experiments, rng=rng) for i in range(MODEL_COUNT)
        )
        self._champions_and_a_request(admin=admin)

        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {MLModel.objects.count()} models ({created} new), "
                f"{Experiment.objects.count()} experiments, {User.objects.count()} users."
            )
        )
        self.stdout.write(f"  Demo login: username {SUPERUSER}  password {password}")
        self.stdout.write("  (a new password is generated each time seed_demo runs)")

    def _champions_and_a_request(self, *, admin) -> None:
        """``champion`` is protected: the demo superuser points it at each production model's newest
        version. One staging model waits for an approver (the superuser may decide it) to go to
        production, so the Approvals page has something to show."""
        ProtectedAlias.objects.get_or_create(name="champion")
        for model in MLModel.objects.filter(lifecycle=Stage.PRODUCTION).exclude(aliases__has_key="champion"):
            services.alias_set(model=model, actor=admin, alias="champion", version_number=model.latest_version)
        waiting = MLModel.objects.filter(lifecycle=Stage.STAGING).order_by("id").select_related("owner").first()
        if waiting is not None and not ApprovalRequest.objects.filter(model=waiting).exists():
            services.lifecycle_request(
                model=waiting,
                actor=waiting.owner,
                to_stage=Stage.PRODUCTION,
                comment="Offline evaluation beats the production model; ready for the canary.",
            )

    def _experiment(self, *, owner, spec) -> Experiment:
        name, description, tags = spec
        existing = Experiment.objects.filter(owner=owner, name=name).first()
        if existing:
            return existing
        return experiment_create(
            owner=owner, name=name, description=description, tags=tags, parameters={"seed": 42, "folds": 5}
        )

    def _runs(self, *, experiment: Experiment, rng: random.Random) -> None:
        """A few finished runs of a small sweep, each with params, a metric history and tags (once:
        an experiment that has runs keeps them)."""
        if experiment.runs.exists():
            return
        start = runs.now_ms() - RUN_COUNT * 3_600_000
        for n in range(RUN_COUNT):
            learning_rate, depth = (0.1, 0.05, 0.01, 0.005)[n % 4], 3 + 2 * n
            run = runs.run_create(
                experiment=experiment,
                actor=experiment.owner,
                name=f"lr-{learning_rate}-depth-{depth}",
                start_time=start + n * 3_600_000,
                tags={"mlflow.source.name": "train.py", "mlflow.user": experiment.owner.username},
            )
            loss, accuracy, points = rng.uniform(0.9, 1.2), rng.uniform(0.55, 0.65), []
            for step in range(RUN_STEPS):
                loss *= rng.uniform(0.8, 0.95)
                accuracy = min(0.99, accuracy + rng.uniform(0.0, 0.04))
                timestamp = run.start_time + (step + 1) * 60_000
                points += [
                    {"key": "loss", "value": round(loss, 4), "timestamp": timestamp, "step": step},
                    {"key": "accuracy", "value": round(accuracy, 4), "timestamp": timestamp, "step": step},
                ]
            runs.run_log_batch(
                run=run,
                actor=experiment.owner,
                metrics=points,
                params=[
                    {"key": "learning_rate", "value": str(learning_rate)},
                    {"key": "max_depth", "value": str(depth)},
                    {"key": "seed", "value": "42"},
                ],
                tags=[{"key": "stage", "value": "sweep"}],
            )
            status = RunStatus.FAILED if n == RUN_COUNT - 1 else RunStatus.FINISHED
            runs.run_update(run=run, actor=experiment.owner, status=status, end_time=timestamp + 5_000)

    def _model(self, *, index: int, admin, team, experiments, rng: random.Random) -> bool:
        owner = team[index % len(team)]
        framework = Framework.values[index % len(Framework.values)]
        task = TaskType.values[index % len(TaskType.values)]
        subject = SUBJECTS[index % len(SUBJECTS)]
        name = f"{subject}-{framework}-{index:02d}"
        base = rng.uniform(0.7, 0.9)
        version_count = rng.randint(2, 5)
        stage = (Stage.PRODUCTION, Stage.STAGING, Stage.DEVELOPMENT, Stage.ARCHIVED, Stage.DEVELOPMENT)[index % 5]
        if MLModel.objects.filter(owner=owner, name=name).exists():
            return False
        suffix = FILE_SUFFIX[framework]
        # A model links only to its owner's experiments (the services refuse anyone else's).
        own_experiments = [experiment for experiment in experiments if experiment.owner_id == owner.pk]
        model = services.model_create(
            owner=owner,
            name=name,
            description=f"{TaskType(task).label} model for {subject}, trained with {Framework(framework).label}.",
            framework=framework,
            task_type=task,
            experiment=own_experiments[index % len(own_experiments)] if own_experiments else None,
            hyperparameters={"learning_rate": round(rng.choice([0.1, 0.05, 0.01]), 3), "max_depth": rng.randint(3, 10)},
            file=_artifact(name, 1, rng, suffix),
            **_metrics(rng, base),
        )
        for version in range(2, version_count + 1):
            base += rng.uniform(-0.01, 0.03)
            services.model_update(
                model=model,
                actor=owner,
                data=_metrics(rng, base),
                file=_artifact(name, version, rng, suffix),
                note=f"Retrained (run {version})",
            )
        for to_stage in PATHS[stage]:
            # Production is the superuser's move: with PRODUCTION_NEEDS_APPROVAL an owner's would be a request.
            mover = admin if to_stage == Stage.PRODUCTION else owner
            services.lifecycle_move(model=model, actor=mover, to_stage=to_stage, comment=f"Demo: moved to {to_stage}")
        services.tag_set(model=model, actor=owner, key="team", value=subject)
        if version_count > 2:
            services.alias_set(model=model, actor=owner, alias="challenger", version_number=version_count)
        return True
