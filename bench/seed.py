"""Seed a PostgreSQL database with the benchmark dataset, in bulk SQL rather than through the API.

    python -m bench.seed 10000          # DATABASE_URL names the database

The dataset of ../shared/BENCHMARKS.md, at any scale: models ``model-0`` … ``model-{n-1}``, model *i*
with framework ``["sklearn", "pytorch", "xgboost"][i % 3]``, task ``["classification",
"regression"][i % 2]``, description ``"seed model i"`` and 3 versions; spread over 100 owners, one
experiment per 100 models and the four stages (each non-development model with the audit trail
that leads to its stage). 1M models and 3M versions take about a minute: the rows are generated
by PostgreSQL itself (``INSERT … SELECT FROM generate_series``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

OWNERS = 100
MODELS_PER_EXPERIMENT = 100


def _tables():
    from accounts.models import User
    from experiments.models import Experiment
    from mlmodels.models import LifecycleEvent, MLModel, ModelVersion

    return {
        "user": User._meta.db_table,
        "experiment": Experiment._meta.db_table,
        "model": MLModel._meta.db_table,
        "version": ModelVersion._meta.db_table,
        "event": LifecycleEvent._meta.db_table,
    }


# Stage of model i: 40% development, 30% staging, 20% production, 10% archived, spread by a
# multiplier so that stage does not line up with framework or task.
STAGE_OF_I = """
    CASE WHEN (i * 7) % 10 < 4 THEN 'development'
         WHEN (i * 7) % 10 < 7 THEN 'staging'
         WHEN (i * 7) % 10 < 9 THEN 'production'
         ELSE 'archived' END
"""
# The moves that lead from development to each stage, for the audit trail.
TRAILS = {
    "staging": [("development", "staging")],
    "production": [("development", "staging"), ("staging", "production")],
    "archived": [("development", "archived")],
}


def seeded_count() -> int:
    from mlmodels.models import MLModel

    return MLModel.objects.filter(name__startswith="model-", description__startswith="seed model ").count()


def seed(count: int, *, password: str) -> float:
    """Replace the registry's contents with ``count`` seeded models; returns the seconds it took."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from experiments.models import Experiment

    started = time.monotonic()
    t = _tables()
    experiments = max(1, count // MODELS_PER_EXPERIMENT)
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {t['event']}, {t['version']}, {t['model']}, {t['experiment']}, {t['user']} CASCADE")
        hashed = make_password(password)  # one hash for all: hashing 100 times would dominate small runs
        User.objects.bulk_create(
            User(username=f"owner-{k}", email=f"owner-{k}@bench.example", password=hashed, is_active=True)
            for k in range(OWNERS)
        )
        owner_ids = list(User.objects.order_by("pk").values_list("pk", flat=True))
        Experiment.objects.bulk_create(
            Experiment(
                owner_id=owner_ids[e % OWNERS],
                name=f"experiment-{e}",
                description=f"seed experiment {e}",
                parameters={"lr": 0.001 * (e % 10 + 1)},
                tags=["bench", ["sklearn", "pytorch", "xgboost"][e % 3]],
            )
            for e in range(experiments)
        )
        experiment_ids = list(Experiment.objects.order_by("pk").values_list("pk", flat=True))
        # Ids looked up by position: owner i % OWNERS, experiment i % experiments.
        cursor.execute(
            f"""
            INSERT INTO {t["model"]} (
                owner_id, experiment_id, name, description, framework, task_type, lifecycle,
                accuracy, precision, recall, f1_score, hyperparameters, file, file_size, file_sha256,
                latest_version, created_at, updated_at)
            SELECT (%(owners)s::bigint[])[i %% {OWNERS} + 1],
                   (%(experiments)s::bigint[])[i %% %(experiment_count)s + 1],
                   'model-' || i, 'seed model ' || i,
                   (ARRAY['sklearn', 'pytorch', 'xgboost'])[i %% 3 + 1],
                   (ARRAY['classification', 'regression'])[i %% 2 + 1],
                   {STAGE_OF_I.replace("%", "%%")},
                   0.5 + (i * 37 %% 500) / 1000.0, 0.5 + (i * 53 %% 500) / 1000.0,
                   0.5 + (i * 71 %% 500) / 1000.0, 0.5 + (i * 89 %% 500) / 1000.0,
                   jsonb_build_object('max_depth', i %% 12 + 1, 'learning_rate', 0.01 * (i %% 10 + 1)),
                   NULL, NULL, NULL, 3,
                   %(now)s - make_interval(secs => %(count)s - i),
                   %(now)s - make_interval(secs => %(count)s - i)
            FROM generate_series(0, %(count)s - 1) AS i
            """,  # noqa: S608 -- table names come from the models' Meta, values are parameters
            {
                "owners": owner_ids,
                "experiments": experiment_ids,
                "experiment_count": experiments,
                "count": count,
                "now": now,
            },
        )
        cursor.execute(
            f"""
            INSERT INTO {t["version"]} (
                model_id, version_number, accuracy, precision, recall, f1_score, hyperparameters,
                file, file_size, file_sha256, experiment_id, created_by_id, note, created_at)
            SELECT m.id, v.n, m.accuracy - (3 - v.n) * 0.01, m.precision, m.recall, m.f1_score,
                   m.hyperparameters, NULL, NULL, NULL, m.experiment_id, m.owner_id,
                   CASE WHEN v.n = 1 THEN 'Initial version' ELSE 'retrained' END,
                   m.created_at + make_interval(secs => v.n - 1)
            FROM {t["model"]} AS m CROSS JOIN generate_series(1, 3) AS v(n)
            """  # noqa: S608
        )
        for stage, moves in TRAILS.items():
            for step, (from_stage, to_stage) in enumerate(moves):
                cursor.execute(
                    f"""
                    INSERT INTO {t["event"]} (model_id, from_stage, to_stage, actor_id, comment, created_at)
                    SELECT id, %(from_stage)s, %(to_stage)s, owner_id, 'seeded',
                           created_at + make_interval(secs => 3 + %(step)s)
                    FROM {t["model"]} WHERE lifecycle = %(stage)s
                    """,  # noqa: S608
                    {"from_stage": from_stage, "to_stage": to_stage, "step": step, "stage": stage},
                )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, help="number of models (3 versions each)")
    parser.add_argument("--force", action="store_true", help="re-seed even when the database holds this dataset")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        print("bench.seed needs PostgreSQL: set DATABASE_URL=postgres://…", file=sys.stderr)
        return 2
    if "bench" not in connection.settings_dict["NAME"]:
        # Seeding empties the registry's tables first: never on a database that is not for benchmarks.
        print(f"refusing to seed {connection.settings_dict['NAME']!r}: use a database named *bench*", file=sys.stderr)
        return 2
    call_command("migrate", verbosity=0)
    if not args.force and seeded_count() == args.count:
        print(f"already seeded with {args.count} models")
        return 0
    # Nobody logs in with it: the benchmark signs its tokens with the server's SECRET_KEY.
    seconds = seed(args.count, password=os.urandom(24).hex())
    print(f"seeded {args.count} models, {3 * args.count} versions in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
