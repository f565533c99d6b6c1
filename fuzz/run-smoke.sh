#!/usr/bin/env bash
# Usage: fuzz/run-smoke.sh [SECONDS]
#
# Seeds the corpora, builds every fuzz target, and runs each for SECONDS seconds (default 20) under
# memory limits that a correct decoder keeps to at the input sizes used. Prints one line per target
# and exits 1 if any target crashed (a panic, a failed assertion, a leak, a timeout or memory over
# the limits), naming the input libFuzzer saved. When nightly Rust or cargo-fuzz is missing it prints a
# "skipped:" line and exits 0, except under CI=true, where a smoke run that cannot run fails (exit 1).
# Works from any directory.
set -uo pipefail

seconds=${1:-20}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS]  (SECONDS is a whole number of seconds per target)" >&2
    exit 2
fi
fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$fuzz_dir" || exit 2

# Says why the run cannot happen: a failure in CI, where a test that does not run must not pass.
cannot_run() {
    if [[ ${CI:-} == true ]]; then
        echo "error: the fuzz smoke run cannot run: $1 (under CI=true it must)" >&2
        exit 1
    fi
    echo "skipped: $1"
    exit 0
}
if ! cargo +nightly --version >/dev/null 2>&1; then
    cannot_run "\`cargo +nightly\` is not available (install it with \`rustup toolchain install nightly\`)"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cannot_run "cargo-fuzz is not installed (install it with \`cargo install cargo-fuzz\`)"
fi

./seed-corpus.sh || exit 2
echo "building the fuzz targets (nightly, address sanitizer)..."
if ! cargo +nightly fuzz build; then
    echo "error: the fuzz targets do not build" >&2
    exit 2
fi

logs="$fuzz_dir/artifacts/smoke-logs"
mkdir -p "$logs"
crashed=()
targets=$(cargo +nightly fuzz list) || { echo "error: \`cargo fuzz list\` failed" >&2; exit 2; }
[[ -n $targets ]] || { echo "error: \`cargo fuzz list\` names no fuzz target" >&2; exit 1; }
for target in $targets; do
    log="$logs/$target.log"
    echo "fuzzing $target for ${seconds}s..."
    # -max_len: zstd turns 4 bytes into at most 128 KiB (one RLE block), so 4 KiB of input decodes to at
    # most ~128 MiB, which a correct reader handles inside the memory limits. Larger inputs can reach the
    # format's own size limits (256 MiB documents, 1 GiB chunks), whose valid decoding needs more memory
    # than these limits allow: libFuzzer would report that as a finding, and it is not one.
    # -timeout: one input running longer than this is a finding too (a hang the limits would not catch).
    cargo +nightly fuzz run "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=600 -max_len=4096 -timeout=25 \
        >"$log" 2>&1
    status=$?
    done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[^ ]+' "$log" | tail -n 1)
    if [[ $status -eq 0 ]]; then
        echo "ok: $target: ${done_line:-no summary}; ${cov:-no coverage line}"
    else
        artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | sed 's/Test unit written to //')
        # The first error line and the one after it: a panic's location, then its message.
        reason=$(grep -m 1 -A 1 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|==ERROR" "$log" | paste -sd ' ')
        echo "crash: $target (exit $status): ${reason:-see the log}"
        echo "    input: ${artifact:-none saved}"
        echo "    log: $log"
        echo "    reproduce: cargo +nightly fuzz run $target ${artifact:-}"
        crashed+=("$target")
    fi
done

if [[ ${#crashed[@]} -gt 0 ]]; then
    echo "fuzz smoke failed: ${crashed[*]}"
    exit 1
fi
echo "fuzz smoke passed: every target ran ${seconds}s without a crash"
