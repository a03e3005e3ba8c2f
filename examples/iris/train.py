#!/usr/bin/env python3
"""Train the "iris" example model: a multinomial logistic regression on scikit-learn's iris data set.

Writes DIR/weights.json (DIR: --out, default examples/iris/model next to this script):
    {"features": [4 names], "classes": [0, 1, 2], "class_names": [3 names],
     "coef": [3 rows of 4 floats], "intercept": [3 floats],
     "trained_with": {"python": ..., "numpy": ..., "scipy": ..., "scikit-learn": ...}}
Floats are written as their repr (full double precision). The fit (lbfgs from zero, tol=1e-10) gives the same
bytes with the same numpy, scipy and scikit-learn; other versions stop the optimizer elsewhere near the same
optimum (measured: scipy 1.14 instead of 1.17, 3e-5 in the weights; scikit-learn 1.3 with scipy 1.11, 8e-4),
enough to move probabilities beyond the kit's default rtol of 1e-5. So the model is the committed
examples/iris/model/weights.json (what a release ships, and what the goldens were recorded from), and this
script says how it was made.
An existing weights.json with other weights is kept unless --force is given (exit status 1, naming the versions
each was trained with); one with the same weights is left as it is. The data set ships with scikit-learn: no
network is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "model"
#: The distributions whose versions decide the trained bytes (recorded in weights.json as "trained_with").
VERSIONED = ("numpy", "scipy", "scikit-learn")


def versions() -> dict[str, str]:
    """The versions this training runs with: python and :data:`VERSIONED`."""
    from importlib.metadata import version

    return {"python": platform.python_version(), **{name: version(name) for name in VERSIONED}}


def train() -> tuple[dict, float]:
    """(the weights document, training accuracy)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    # lbfgs with more than two classes fits the multinomial (softmax) model.
    model = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000, solver="lbfgs")
    model.fit(iris.data, iris.target)
    weights = {
        "features": [str(name) for name in iris.feature_names],
        "classes": [int(c) for c in model.classes_],
        "class_names": [str(name) for name in iris.target_names],
        "coef": [[float(x) for x in row] for row in model.coef_],
        "intercept": [float(x) for x in model.intercept_],
        "trained_with": versions(),
    }
    return weights, float(model.score(iris.data, iris.target))


def made_with(document: object) -> str:
    """How a weights document says it was made, for a message."""
    recorded = document.get("trained_with") if isinstance(document, dict) else None
    if not isinstance(recorded, dict):
        return "versions not recorded"
    return ", ".join(f"{name} {recorded.get(name, '?')}" for name in VERSIONED)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace a weights.json with other weights")
    args = parser.parse_args(argv)
    weights, accuracy = train()
    body = (json.dumps(weights, indent=2, allow_nan=False) + "\n").encode()
    path = args.out / "weights.json"
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = None
    except OSError as e:
        print(f"train.py: {path}: cannot read the existing file: {e}", file=sys.stderr)
        return 1
    try:
        existing = json.loads(old) if old is not None else None
    except ValueError:
        existing = None
    model_part = {k: v for k, v in weights.items() if k != "trained_with"}
    if isinstance(existing, dict) and {k: v for k, v in existing.items() if k != "trained_with"} == model_part:
        print(f"{path}: unchanged (same weights already there), training accuracy {accuracy:.4f}")
        return 0
    if old is not None and not args.force:
        print(f"train.py: {path} holds other weights ({made_with(existing)}; here: {made_with(weights)}); "
              f"not replaced (use --force, then record the goldens again)", file=sys.stderr)
        return 1
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=args.out, prefix=".weights.", suffix=".partial")
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as e:
        print(f"train.py: {path}: cannot write: {e}", file=sys.stderr)
        return 1
    print(f"{path}: {'replaced' if old is not None else 'written'}, training accuracy {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
