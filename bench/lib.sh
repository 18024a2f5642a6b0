# Shared by bench/run and bench/check-fake: paths, the venv, the builds.
# shellcheck shell=bash
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
VENV="$BENCH/.venv"
export FAKE_TARGET_DIR="$ROOT/target/fake-aws"
# cargo builds cove where CARGO_TARGET_DIR (or a cargo config) says, else target/: ask it.
COVE_BIN="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps --locked |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/cove"
FAKE_BIN="$FAKE_TARGET_DIR/release/fake-aws"
FLOOR_BIN="$FAKE_TARGET_DIR/release/spawn-floor"
STAMP_BIN="$FAKE_TARGET_DIR/release/spawn-stamp"
# W6's "before": cove at the parent of the streamed OU walk, its source and build under target/.
BEFORE_COMMIT=9f84907
BEFORE_DIR="$ROOT/target/before"
BEFORE_BIN="$BEFORE_DIR/target/release/cove"

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
    for bin in "$COVE_BIN" "$FAKE_BIN" "$FLOOR_BIN" "$STAMP_BIN"; do
        [ -x "$bin" ] || { echo "bench: $bin is missing; build it first" >&2; exit 1; }
    done
}

# cove at $BEFORE_COMMIT for W6, in $BEFORE_DIR: the source from `git archive` (no worktree, no
# checkout), built with `cargo build --release --locked` into its own target directory. The
# dependency versions are the same as today's, so a first build seeds that directory with a
# copy of target/release's dependencies (cp -a keeps the mtimes cargo's fingerprints compare)
# and only cove itself is compiled. Skipped when the binary is there and from that commit.
# BENCH_NO_BUILD=1 skips it; W6 then runs only "after", and says so, if the binary is missing.
build_before() {
    if [ -n "${BENCH_NO_BUILD:-}" ]; then
        return
    fi
    local commit
    commit="$(git -C "$ROOT" rev-parse "$BEFORE_COMMIT^{commit}")" || {
        echo "bench: commit $BEFORE_COMMIT is not in this repository; W6 will run cove 'after' only" >&2
        return
    }
    if [ -x "$BEFORE_BIN" ] && [ "$(cat "$BEFORE_DIR/commit" 2>/dev/null)" = "$commit" ]; then
        return
    fi
    echo "bench: building cove at $BEFORE_COMMIT for W6's 'before' (in $BEFORE_DIR)" >&2
    rm -rf "$BEFORE_DIR/src"
    mkdir -p "$BEFORE_DIR/src"
    git -C "$ROOT" archive "$commit" | tar -x -C "$BEFORE_DIR/src"
    if [ ! -d "$BEFORE_DIR/target/release/deps" ] && [ -d "$ROOT/target/release/deps" ]; then
        mkdir -p "$BEFORE_DIR/target/release"
        cp -a "$ROOT/target/release/deps" "$ROOT/target/release/build" "$ROOT/target/release/.fingerprint" \
            "$BEFORE_DIR/target/release/"
    fi
    # GIT_CEILING_DIRECTORIES: build.rs asks git for the commit, and would find this worktree's
    # HEAD above target/; it reports "unknown" instead (bench.py records $BEFORE_COMMIT).
    (cd "$BEFORE_DIR/src" && GIT_CEILING_DIRECTORIES="$BEFORE_DIR" CARGO_TARGET_DIR="$BEFORE_DIR/target" \
        cargo build --release --locked --quiet)
    echo "$commit" > "$BEFORE_DIR/commit"
}
