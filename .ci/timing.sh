# Sourced by .ci/run: `stage NAME command...` runs a command and records its wall time;
# `timing_summary` prints every stage's time (the CI budget is 45 minutes on 2 cores).
STAGE_NAMES=()
STAGE_SECONDS=()
stage() {
    local name="$1"; shift
    echo "=== ${name} ==="
    local began=$SECONDS
    "$@"
    STAGE_NAMES+=("$name")
    STAGE_SECONDS+=($((SECONDS - began)))
    echo "=== ${name}: $((SECONDS - began)) s ==="
}
timing_summary() {
    echo "=== stage times (s) ==="
    local i
    for i in "${!STAGE_NAMES[@]}"; do
        printf '%6d  %s\n' "${STAGE_SECONDS[$i]}" "${STAGE_NAMES[$i]}"
    done
    echo "total: ${SECONDS} s"
}
