# Shared by bench/run and bench/check-fake: paths, the venv, the builds.
# shellcheck shell=bash
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
VENV="$BENCH/.venv"
export FAKE_TARGET_DIR="$ROOT/target/fake-aws"
COVE_BIN="$ROOT/target/release/cove"
FAKE_BIN="$FAKE_TARGET_DIR/release/fake-aws"
FLOOR_BIN="$FAKE_TARGET_DIR/release/spawn-floor"

# bench/.venv with the pinned botocove (and so boto3); rebuilt when requirements.txt changes.
ensure_venv() {
    if [ -x "$VENV/bin/python" ] && cmp -s "$BENCH/requirements.txt" "$VENV/.bench-requirements.txt"; then
        return
    fi
    echo "bench: creating $VENV with $(grep -v '^#' "$BENCH/requirements.txt" | tr '\n' ' ')" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$BENCH/requirements.txt"
    cp "$BENCH/requirements.txt" "$VENV/.bench-requirements.txt"
}

# cove (release, the repo's own lock file) and the fake + spawn-floor (their own package).
# BENCH_NO_BUILD=1 skips both and uses the binaries already built.
build_all() {
    if [ -n "${BENCH_NO_BUILD:-}" ]; then
        echo "bench: BENCH_NO_BUILD set: using the binaries already built" >&2
    else
        echo "bench: building cove (cargo build --release --locked)" >&2
        (cd "$ROOT" && cargo build --release --locked --quiet)
        echo "bench: building fake-aws and spawn-floor" >&2
        CARGO_TARGET_DIR="$FAKE_TARGET_DIR" cargo build --release --locked --quiet \
            --manifest-path "$BENCH/fake-aws/Cargo.toml"
    fi
    for bin in "$COVE_BIN" "$FAKE_BIN" "$FLOOR_BIN"; do
        [ -x "$bin" ] || { echo "bench: $bin is missing; build it first" >&2; exit 1; }
    done
}
