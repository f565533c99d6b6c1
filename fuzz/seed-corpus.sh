#!/usr/bin/env bash
# Seeds fuzz/corpus/TARGET/ from format-spec/test-vectors/: every archive goes to every target, the
# archives less their file header (so a frame header comes first) to decode_frame, and, when jq and xxd
# are installed, the decoded catalogs and manifests to parse_manifest and the COPY streams to
# tuple_scanner. The corpus folders are generated (see .gitignore); running this again only adds files.
set -euo pipefail

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vectors="$fuzz_dir/../format-spec/test-vectors"
corpus="$fuzz_dir/corpus"
targets=(open_archive decode_frame parse_manifest tuple_scanner)

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
        done
    done < <(find "$vectors" -name '*.expected.json' -print0)
else
    echo "seed-corpus: jq or xxd is missing; parse_manifest and tuple_scanner get only the archives" >&2
fi
echo "seed-corpus: $count test vectors copied into $corpus"
