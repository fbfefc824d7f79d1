"""`make bench`: bench/run.py at each scale, each in its own process (one database per scale).

    python -m bench [--scales 10000,100000,1000000] [--mlflow-scale 10000] [--artifact-mib 1024] [run.py options]

MLflow is measured beside us at --mlflow-scale only (its figures in BENCHMARKS.md are for 10k
models), and the artifact round trip runs once, at the first scale.
"""

import argparse
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="10000", help="comma-separated model counts (default 10000)")
    parser.add_argument("--mlflow-scale", type=int, default=10_000, help="the scale to compare MLflow at (0: none)")
    parser.add_argument("--artifact-mib", type=int, default=1024, help="artifact round trip size (0: none)")
    args, passed_on = parser.parse_known_args()
    scales = [int(scale) for scale in args.scales.split(",")]
    for index, scale in enumerate(scales):
        command = [sys.executable, "-m", "bench.run", "--scale", str(scale), *passed_on]
        if scale == args.mlflow_scale:
            command.append("--mlflow")
        if index == 0 and args.artifact_mib:
            command += ["--artifact-mib", str(args.artifact_mib)]
        print(f"\n$ {' '.join(command[1:])}", flush=True)
        if subprocess.run(command, check=False).returncode != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
