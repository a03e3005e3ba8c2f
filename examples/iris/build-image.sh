#!/usr/bin/env bash
# Build the iris example predictor image with podman on a machine WITHOUT a container registry (the kit's
# development and CI machines), then smoke-test it. On a normal machine: docker build -t IMAGE examples/iris/
#
# It builds from the base image that predictor/build-image.sh makes (localhost/odahu-pybase:bookworm, Debian
# python3 + pip; run that script first) with --network none. That base has no numpy: the pinned numpy wheel
# is taken from predictor/build-image.sh's wheel cache ($CACHE_DIR/wheels-cpXY), or downloaded once with pip
# into $CACHE_DIR/iris-wheels-cpXY.
#
# Usage: examples/iris/build-image.sh [--no-smoke]   (rootful podman: as root)
# Environment: IMAGE (tag to build), BASE_IMAGE, CACHE_DIR.
# Exits non-zero with a one-line reason when podman or the base image is missing, or a step fails.
set -euo pipefail

IMAGE=${IMAGE:-localhost/odahu/iris-predictor:dev}
BASE_IMAGE=${BASE_IMAGE:-localhost/odahu-pybase:bookworm}
CACHE_DIR=${CACHE_DIR:-/var/cache/odahu-predictor-build}
SMOKE=1
[ "${1:-}" = "--no-smoke" ] && SMOKE=0

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { printf '[iris-image] %s\n' "$*"; }
die() { printf '[iris-image] ERROR: %s\n' "$*" >&2; exit 1; }

command -v podman >/dev/null 2>&1 || die "podman is not installed (predictor/build-image.sh installs it)"
podman info >/dev/null 2>&1 || die "podman cannot run here: $(podman info 2>&1 | tail -n 1)"
podman image exists "$BASE_IMAGE" \
    || die "base image $BASE_IMAGE is missing: build it first with predictor/build-image.sh"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/wheels"
cp "$HERE/Dockerfile" "$HERE/predictor.py" "$HERE/requirements.txt" "$stage/"

# numpy: nothing to do when the base has it; else the pinned wheel, from a cache (the build has no network)
if podman run --rm --network none "$BASE_IMAGE" python3 -c 'import numpy' >/dev/null 2>&1; then
    say "base image $BASE_IMAGE has numpy"
else
    python_version=$(podman run --rm --network none "$BASE_IMAGE" python3 -c \
        'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")') || die "no python3 in $BASE_IMAGE"
    pin=$(sed -n 's/^numpy==\([^ ]*\).*/\1/p' "$HERE/requirements.txt")
    wheel=$(ls "$CACHE_DIR/wheels-cp$python_version"/numpy-"$pin"-*.whl "$CACHE_DIR/iris-wheels-cp$python_version"/numpy-"$pin"-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
        say "downloading numpy==$pin (cp$python_version, manylinux x86_64) into $CACHE_DIR/iris-wheels-cp$python_version"
        mkdir -p "$CACHE_DIR/iris-wheels-cp$python_version"
        python3 -m pip download -q --no-deps --only-binary=:all: --implementation cp --python-version "$python_version" \
            --abi "cp$python_version" --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -d "$CACHE_DIR/iris-wheels-cp$python_version" "numpy==$pin" \
            || die "pip download of numpy==$pin failed"
        wheel=$(ls "$CACHE_DIR/iris-wheels-cp$python_version"/numpy-"$pin"-*.whl | head -n 1)
    fi
    say "numpy wheel: $wheel"
    cp "$wheel" "$stage/wheels/"
fi

say "building $IMAGE (examples/iris/Dockerfile, BASE=$BASE_IMAGE, no network)"
podman build -q --network none --build-arg "BASE=$BASE_IMAGE" -t "$IMAGE" -f "$stage/Dockerfile" "$stage" \
    >/dev/null || die "podman build of examples/iris/Dockerfile failed"

# smoke test: a hand-written model (all weights zero: every class 1/3) so that no scikit-learn is needed
if [ "$SMOKE" = 1 ]; then
    work="$stage/smoke"
    mkdir -p "$work/input" "$work/model" "$work/output"
    printf '%s' '{"id":"smoke","inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}' \
        >"$work/input/smoke.json"
    printf '%s' '{"classes":[0,1,2],"coef":[[0,0,0,0],[0,0,0,0],[0,0,0,0]],"intercept":[0,0,0]}' >"$work/model/weights.json"
    printf 'model:\n  name: iris-smoke\n  version: "1"\n' >"$work/model/odahuflow.project.yaml"
    chmod 755 "$stage" "$work" "$work/input" "$work/model" && chmod 644 "$work"/input/* "$work"/model/*
    chmod 777 "$work/output"
    podman run --rm --network none --user 1000:1000 --read-only \
        -v "$work/input:/workspace/odahu-ws-input:ro" -v "$work/model:/workspace/odahu-ws-model:ro" \
        -v "$work/output:/workspace" -e ODAHU_MODEL_PATH=/workspace/odahu-ws-model \
        -e ODAHU_INPUT_PATH=/workspace/odahu-ws-input -e ODAHU_OUTPUT_PATH=/workspace/odahu-ws-raw-output \
        "$IMAGE" >/dev/null || die "smoke run of $IMAGE failed"
    response="$work/output/odahu-ws-raw-output/smoke.json"
    expected='{"model_name":"iris-smoke","model_version":"1","id":"smoke","outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,3],"data":[0.33333334,0.33333334,0.33333334]},{"name":"label","datatype":"INT64","shape":[1],"data":[0]}]}'
    [ "$(cat "$response" 2>/dev/null)" = "$expected" ] || die "smoke test: unexpected response in $response"
    say "smoke test: $(cat "$response")"
fi
say "done: $IMAGE"
