#!/usr/bin/env bash
# Seeds fuzz/corpus/TARGET/ from format-spec/test-vectors/: every archive goes to every target, the
# archives less their file header (so a frame header comes first) to decode_frame, and, when jq and xxd
# are installed, the decoded catalogs and manifests to parse_manifest and the COPY streams to
# tuple_scanner and (behind an odd mode byte: a round trip) to decode_columnar, which also gets the
# columnar chunk payloads of the valid vectors (behind a zero mode byte and the declared size: decoded).
# The corpus folders are generated (see .gitignore); running this again only adds files.
set -euo pipefail

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vectors="$fuzz_dir/../format-spec/test-vectors"
corpus="$fuzz_dir/corpus"
targets=(open_archive decode_frame parse_manifest tuple_scanner decode_columnar)

for t in "${targets[@]}"; do
    mkdir -p "$corpus/$t"
done
if [[ ! -d $vectors ]]; then
    echo "seed-corpus: no $vectors; the corpora start empty" >&2
    exit 0
fi

count=0
while IFS= read -r -d '' file; do
    name=$(basename "$file" .pgsafe)
    for t in "${targets[@]}"; do
        cp "$file" "$corpus/$t/$name.pgsafe"
    done
    # The catalog frame starts at byte 32, after the file header.
    tail -c +33 "$file" >"$corpus/decode_frame/$name.frames"
    count=$((count + 1))
done < <(find "$vectors" -name '*.pgsafe' -print0)

if command -v jq >/dev/null && command -v xxd >/dev/null; then
    while IFS= read -r -d '' file; do
        name=$(basename "$file" .expected.json)
        jq -c .catalog "$file" >"$corpus/parse_manifest/$name.catalog.json"
        jq -c .manifest "$file" >"$corpus/parse_manifest/$name.manifest.json"
        # tuple_scanner reads its first byte as the split point: 7 splits inside the binary signature.
        for part in $(jq -r '.streams | keys[]' "$file"); do
            { printf '\007'; jq -r --arg p "$part" '.streams[$p]' "$file" | xxd -r -p; } \
                >"$corpus/tuple_scanner/$name.part$part.copy"
            { printf '\001'; jq -r --arg p "$part" '.streams[$p]' "$file" | xxd -r -p; } \
                >"$corpus/decode_columnar/$name.part$part.copy"
        done
    done < <(find "$vectors" -name '*.expected.json' -print0)
else
    echo "seed-corpus: jq or xxd is missing; parse_manifest and tuple_scanner get only the archives" >&2
fi

# decode_columnar's decode mode: a zero byte, the frame's declared size (u32 LE), then the payload of
# every columnar chunk frame (kind 2, codec 2) of the plain vectors, found by walking their frames.
u32_at() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
u8_at() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
while IFS= read -r -d '' file; do
    name=$(basename "$file" .pgsafe)
    size=$(stat -c %s "$file")
    at=32
    # Frames follow the 32-byte file header up to the 64-byte footer.
    while ((at + 32 <= size - 64)); do
        stored=$(u32_at "$file" $((at + 16)))
        if [[ $(u8_at "$file" $((at + 4))) == 2 && $(u8_at "$file" $((at + 5))) == 2 ]]; then
            { printf '\000'; tail -c +$((at + 21)) "$file" | head -c 4; tail -c +$((at + 33)) "$file" | head -c "$stored"; } \
                >"$corpus/decode_columnar/$name.at$at.payload"
        fi
        at=$((at + 32 + stored))
    done
done < <(find "$vectors" -name 'valid-*.pgsafe' -print0)
echo "seed-corpus: $count test vectors copied into $corpus"
