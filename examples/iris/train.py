#!/usr/bin/env python3
"""Train the "iris" example model: a multinomial logistic regression on scikit-learn's iris data set.

Writes DIR/weights.json (DIR: --out, default examples/iris/model next to this script):
    {"features": [4 names], "classes": [0, 1, 2], "class_names": [3 names],
     "coef": [3 rows of 4 floats], "intercept": [3 floats]}
Floats are written as their repr (full double precision). The fit is deterministic (lbfgs from zero on a strictly
convex problem, tol=1e-10): the same scikit-learn gives the same bytes, other versions the same optimum to ~1e-8.
An existing weights.json with different content is kept unless --force is given (exit status 1).
The data set ships with scikit-learn: no network is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "model"


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
    }
    return weights, float(model.score(iris.data, iris.target))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace a weights.json with different content")
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
    if old == body:
        print(f"{path}: unchanged (same weights already there), training accuracy {accuracy:.4f}")
        return 0
    if old is not None and not args.force:
        print(f"train.py: {path} exists with different content; not replaced (use --force)", file=sys.stderr)
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
