#!/usr/bin/env bash
# Build the reference predictor images with rootful podman on a machine WITHOUT a container registry
# (the kit's development and CI machines), then smoke-test them.
#
# On a normal machine you do not need this script:
#     docker build -t IMAGE predictor/
#     docker build -f predictor/Dockerfile.embedded -t IMAGE-embedded .
#
# What it does (every step is skipped when already done, so it is safe to run again):
#   1. installs podman, crun and debootstrap with apt-get if any is missing;
#   2. host fixes podman needs here: a cgroup-v1 mount for each controller still held by the cgroup2
#      "unified" hierarchy (crun refuses hybrid cgroups otherwise), and default container ulimits no higher
#      than podman's own hard limits (/etc/containers/containers.conf);
#   3. builds a base image localhost/odahu-pybase:bookworm from Debian packages (debootstrap: python3 +
#      python3-pip), cached as a tarball in $CACHE_DIR;
#   4. downloads the pinned wheels of predictor/requirements.txt with pip (cached in $CACHE_DIR/wheels);
#   5. builds predictor/Dockerfile and predictor/Dockerfile.embedded UNCHANGED from a staging copy of the build
#      context (plus the wheels), with --build-arg BASE=<local base> and --network none;
#   6. smoke test: runs each image on a one-request folder (--network none, input and model read-only,
#      --user 1000:1000) and checks the response.
#
# Usage: predictor/build-image.sh [--no-smoke]   (as root)
# Environment: IMAGE, EMBEDDED_IMAGE (names to tag), BASE_IMAGE, CACHE_DIR, DEBIAN_MIRROR.
# Exits non-zero with a reason when podman cannot be made to run containers.
set -euo pipefail

IMAGE=${IMAGE:-localhost/odahu/multiplier-predictor:dev}
EMBEDDED_IMAGE=${EMBEDDED_IMAGE:-localhost/odahu/multiplier-predictor-embedded:dev}
BASE_IMAGE=${BASE_IMAGE:-localhost/odahu-pybase:bookworm}
CACHE_DIR=${CACHE_DIR:-/var/cache/odahu-predictor-build}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SMOKE=1
[ "${1:-}" = "--no-smoke" ] && SMOKE=0

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")

say() { printf '[build-image] %s\n' "$*"; }
die() { printf '[build-image] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (rootful podman, apt-get, cgroup mounts)"

# 1. packages ---------------------------------------------------------------------------------------------
missing=()
for tool in podman crun debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing with apt-get: ${missing[*]}"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
else
    say "podman, crun and debootstrap already installed"
fi

# 2. host fixes -------------------------------------------------------------------------------------------
if [ -r /sys/fs/cgroup/unified/cgroup.controllers ]; then
    for controller in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
        if ! mountpoint -q "/sys/fs/cgroup/$controller"; then
            say "mounting a cgroup-v1 hierarchy for '$controller' (crun refuses hybrid cgroups otherwise)"
            mkdir -p "/sys/fs/cgroup/$controller"
            mount -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller" \
                || die "cannot mount the $controller cgroup hierarchy"
        fi
    done
fi
if ! grep -qs '^default_ulimits' /etc/containers/containers.conf; then
    say "setting default container ulimits in /etc/containers/containers.conf"
    mkdir -p /etc/containers
    if grep -qs '^\[containers\]' /etc/containers/containers.conf; then
        sed -i '/^\[containers\]/a default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' \
            /etc/containers/containers.conf
    else
        printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' \
            >> /etc/containers/containers.conf
    fi
fi
podman info >/dev/null 2>&1 || die "podman cannot run here: $(podman info 2>&1 | tail -n 1)"

mkdir -p "$CACHE_DIR"

# 3. base image -------------------------------------------------------------------------------------------
if podman image exists "$BASE_IMAGE"; then
    say "base image $BASE_IMAGE present"
elif [ -s "$CACHE_DIR/pybase.tar" ]; then
    say "loading base image from $CACHE_DIR/pybase.tar"
    podman load -q -i "$CACHE_DIR/pybase.tar" >/dev/null
    podman image exists "$BASE_IMAGE" || die "$CACHE_DIR/pybase.tar does not hold $BASE_IMAGE (delete it)"
else
    rootfs=$(mktemp -d)
    say "debootstrap: Debian bookworm minbase + python3, python3-pip into $rootfs (about a minute)"
    debootstrap --variant=minbase --include=python3,python3-pip bookworm "$rootfs" "$DEBIAN_MIRROR" \
        >"$CACHE_DIR/debootstrap.log" 2>&1 || die "debootstrap failed, see $CACHE_DIR/debootstrap.log"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    say "importing it as $BASE_IMAGE"
    tar --numeric-owner -C "$rootfs" -c . | podman import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    podman save -q -o "$CACHE_DIR/pybase.tar" "$BASE_IMAGE"
fi

# 4. pinned wheels ----------------------------------------------------------------------------------------
python_version=$(podman run --rm --network none "$BASE_IMAGE" python3 -c \
    'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
wheels="$CACHE_DIR/wheels-cp$python_version"
if ! cmp -s "$HERE/requirements.txt" "$wheels/requirements.txt"; then
    say "downloading the pinned wheels (cp$python_version, manylinux x86_64) into $wheels"
    rm -rf "$wheels" && mkdir -p "$wheels"
    python3 -m pip download -q --only-binary=:all: --implementation cp --python-version "$python_version" \
        --abi "cp$python_version" --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$wheels" -r "$HERE/requirements.txt" \
        || die "pip download of the pinned wheels failed"
    cp "$HERE/requirements.txt" "$wheels/requirements.txt"
else
    say "pinned wheels cached in $wheels"
fi

# 5. build ------------------------------------------------------------------------------------------------
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/predictor/wheels" "$stage/model"
cp "$HERE/Dockerfile" "$HERE/Dockerfile.embedded" "$HERE/fast.py" "$HERE/requirements.txt" "$stage/predictor/"
cp "$wheels"/*.whl "$stage/predictor/wheels/"
cp "$REPO/model/multiplier.txt" "$REPO/model/odahuflow.project.yaml" "$stage/model/"

say "building $IMAGE (predictor/Dockerfile, BASE=$BASE_IMAGE, no network)"
podman build -q --network none --build-arg "BASE=$BASE_IMAGE" -t "$IMAGE" -f "$stage/predictor/Dockerfile" \
    "$stage/predictor" >/dev/null || die "podman build of predictor/Dockerfile failed"
say "building $EMBEDDED_IMAGE (predictor/Dockerfile.embedded, context: repository root)"
podman build -q --network none --build-arg "BASE=$BASE_IMAGE" -t "$EMBEDDED_IMAGE" \
    -f "$stage/predictor/Dockerfile.embedded" "$stage" >/dev/null \
    || die "podman build of predictor/Dockerfile.embedded failed"

# 6. smoke test -------------------------------------------------------------------------------------------
if [ "$SMOKE" = 1 ]; then
    work="$stage/smoke"
    mkdir -p "$work/input" "$work/output-remote" "$work/output-embedded"
    printf '%s' '{"id":"smoke","inputs":[{"name":"x","shape":[2],"datatype":"INT32","data":[10,20]}]}' \
        >"$work/input/smoke.json"
    chown 1000:1000 "$work/output-remote" "$work/output-embedded"
    chmod 755 "$stage" "$work" "$work/input" && chmod 644 "$work/input/smoke.json"
    multiplier=$(tr -d '[:space:]' <"$REPO/model/multiplier.txt")
    expected="[$((10 * multiplier)),$((20 * multiplier))]"
    run=(podman run --rm --network none --user 1000:1000 --memory 512m --read-only
         -v "$work/input:/workspace/odahu-ws-input:ro"
         -e ODAHU_INPUT_PATH=/workspace/odahu-ws-input
         -e ODAHU_OUTPUT_PATH=/workspace/odahu-ws-raw-output/out)
    "${run[@]}" -v "$REPO/model:/workspace/odahu-ws-model:ro" -v "$work/output-remote:/workspace/odahu-ws-raw-output" \
        -e ODAHU_MODEL_PATH=/workspace/odahu-ws-model "$IMAGE" >/dev/null || die "smoke run of $IMAGE failed"
    "${run[@]}" -v "$work/output-embedded:/workspace/odahu-ws-raw-output" \
        -e ODAHU_MODEL_PATH=/opt/model "$EMBEDDED_IMAGE" >/dev/null || die "smoke run of $EMBEDDED_IMAGE failed"
    for variant in remote embedded; do
        response="$work/output-$variant/out/smoke.json"
        python3 - "$response" "$expected" <<'PY' || die "smoke test ($variant): unexpected response in $response"
import json, sys
response = json.load(open(sys.argv[1]))
assert response["id"] == "smoke" and response["model_name"] == "multiplier", response
assert json.dumps(response["outputs"][0]["data"], separators=(",", ":")) == sys.argv[2], response
PY
        say "smoke test ($variant model): $(cat "$response")"
    done
fi
say "done: $IMAGE, $EMBEDDED_IMAGE"
