#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 10) and fails
# on the first crash, whose input libFuzzer saves under fuzz/artifacts/TARGET/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#
# The targets build on stable Rust with `--sanitizer none`: the code under test
# is safe Rust, so a panic (an assertion, an index out of bounds, an overflow
# with debug assertions on) is the failure looked for, and AddressSanitizer
# would need nightly. The corpus of each target grows in fuzz/corpus/TARGET
# (ignored by git) from seeds made of the repository's own fixtures.
# Reproduce a crash: cargo fuzz run --sanitizer none TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
shift $(( $# > 0 ? 1 : 0 ))
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(flow_loader web_message telegram_update discord_event knowledge_query)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found; installing it with cargo install" >&2
    cargo install cargo-fuzz --locked --quiet
fi

# cargo-fuzz has no --locked, so check here that fuzz/Cargo.lock is current.
if ! cargo metadata --manifest-path fuzz/Cargo.toml --locked --format-version 1 >/dev/null; then
    echo "fuzz/Cargo.lock is out of date: run \`cargo fetch --manifest-path fuzz/Cargo.toml\` and commit it" >&2
    exit 1
fi

# Writes the seeds of each target into its corpus folder (kept between runs).
seed() {
    local corpus=fuzz/corpus
    mkdir -p "$corpus"/{flow_loader,web_message,knowledge_query}

    # Flow loader: each YAML file of the demo on its own, and the whole demo bot
    # as one input (files separated by NUL, articles marked md:, tests test:).
    local file packed="$corpus/flow_loader/demo-bot"
    : > "$packed"
    while IFS= read -r file; do
        cp "$file" "$corpus/flow_loader/demo-$(echo "$file" | tr '/' '-')"
        cat "$file" >> "$packed"
        printf '\0' >> "$packed"
    done < <(find demo -name '*.yml' -not -path 'demo/tests/*' | sort)
    for file in demo/articles/*.md; do
        printf 'md:' >> "$packed"; cat "$file" >> "$packed"; printf '\0' >> "$packed"
    done
    printf 'test:' >> "$packed"; cat demo/tests/order_status.yml >> "$packed"

    # Knowledge queries: the demo FAQ's questions and variants.
    sed -n -E 's/^ +(question: |- )(.+)$/\2/p' demo/faq/*.yml | head -n 400 | while IFS= read -r line; do
        printf '%s' "$line" > "$corpus/knowledge_query/faq-$(printf '%s' "$line" | sha256sum | cut -c1-16)"
    done

    # Web messages: the path id on the first line, then the JSON body.
    local n=0 body
    for body in '{"text":"hi"}' '{"text":"where is my order","client_message_id":"m-1","locale":"en-US"}' \
        '{"text":"100001","client_message_id":"m-2"}' '{"text":"我想退货","locale":"zh-CN"}' \
        '{"text":"/order_status"}' '{"text":"talk to a person","client_message_id":"a.b:c_d-e"}' \
        '{"text":"\u0000\u202e 满多少包邮？ \n"}' '{"text":1}' '{"text":"x","locale":"not a locale"}'; do
        printf 'web:seed-%d\n%s' "$n" "$body" > "$corpus/web_message/seed-$n"
        n=$((n + 1))
    done
}

# Extra read-only seed folders of a target.
fixtures() {
    case "$1" in
        telegram_update) echo channels/telegram/tests/fixtures/updates ;;
        discord_event) echo channels/discord/tests/fixtures/events ;;
    esac
}

seed
mkdir -p fuzz/logs
for target in "${targets[@]}"; do
    echo "== fuzz $target for ${seconds} s =="
    mkdir -p "fuzz/corpus/$target"
    log="fuzz/logs/$target.log"
    # shellcheck disable=SC2046
    if ! cargo fuzz run --sanitizer none "$target" "fuzz/corpus/$target" $(fixtures "$target") -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 > "$log" 2>&1; then
        tail -n 80 "$log" >&2
        echo "fuzz target $target failed (log: $log); a crashing input is saved under fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E "^INFO: seed corpus|^Done [0-9]+ runs|^stat::(number_of_executed_units|peak_rss_mb|new_units_added)" "$log" || true
done
