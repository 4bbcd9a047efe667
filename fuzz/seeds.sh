#!/bin/sh
# Regenerate the seeds of fuzz_proto and fuzz_auth that are made from the
# captured Perl sessions in tests/vectors/ and from the frame corpora
# (files named vec_*; the hand-written seeds beside them stay).  The output
# is committed; run this after changing the vectors or the input formats
# of those targets (see the header comments of fuzz_proto.c and
# fuzz_auth.c).  Deterministic.
set -eu
cd "$(dirname "$0")"
vec=../tests/vectors
proto=corpus/fuzz_proto
auth=corpus/fuzz_auth
mkdir -p "$proto" "$auth"
rm -f "$proto"/vec_* "$auth"/vec_*

# seed NAME DIR BYTES...: a file starting with the given control bytes
# (octal escapes) followed by standard input.
seed() {
    name=$1 dir=$2
    shift 2
    { printf "$@"; cat; } > "$dir/vec_$name"
}

# the first 3000 bytes of a recorded stream: greeting, auth line, frames
head_of() { head -c 3000 "$vec/$1"; }

# fuzz_proto replay mode: byte 0 picks session and role, byte 1 the pieces
head_of capture/conn1.c2s.bin  | seed replay_130_listener "$proto" '\000\000'
head_of capture/conn1.s2c.bin  | seed replay_130_connector "$proto" '\001\003'
head_of capture2/conn1.c2s.bin | seed replay_202_listener "$proto" '\002\007'
head_of capture2/conn1.s2c.bin | seed replay_202_connector "$proto" '\003\017'
head_of capture/conn1.c2s.bin  | seed replay_130_as_202only "$proto" '\010\000'
head_of capture2/conn1.c2s.bin | seed replay_202_small_frames "$proto" '\102\001'
head_of capture2/conn1.c2s.bin | seed replay_202_no_secret "$proto" '\022\000'
head_of capture2/conn1.c2s.bin | sed '1s/$/;tls=1.0/' | seed replay_202_tls "$proto" '\042\002'

# fuzz_proto pair mode: byte 0 0x80 + configuration, then the peer's frames
seed pair_cbor_capture "$proto" '\200\000' < corpus/fuzz_frame_cbor/capture_202_c2s_head.cbor
seed pair_cbor_maps "$proto" '\200\005' < corpus/fuzz_frame_cbor/maps.cbor
seed pair_json_capture "$proto" '\205\000' < corpus/fuzz_frame_json/capture_130_c2s.json
seed pair_json_strings "$proto" '\205\002' < corpus/fuzz_frame_json/strings.json
seed pair_tls_no_secret "$proto" '\260\220' < corpus/fuzz_frame_cbor/strings.cbor
seed pair_tls_secret "$proto" '\240\020' < corpus/fuzz_frame_cbor/floats.cbor
seed pair_small_frames "$proto" '\300\000' < corpus/fuzz_frame_cbor/deep.cbor
{ printf 'aemp;1;b;hmac_sha3_512,tls_anon;cbor,json;mproto=1;provider=p%%3bq\n'
  cat corpus/fuzz_frame_cbor/ints.cbor; } | seed pair_own_line1 "$proto" '\200\100'

# fuzz_auth: byte 0 the configuration, then an auth line ("*": the right token)
printf 'hmac_sha3_512;*;cbor' | seed hmac_sha3 "$auth" '\000'
printf 'hmac_md6_64_256;*;json' | seed hmac_md6_130 "$auth" '\005'
printf 'hmac_sha3_512;*;json;more' | seed hmac_sha3_202 "$auth" '\012'
printf 'tls_sha3_512;*;cbor' | seed tls_sha3 "$auth" '\040'
printf 'tls_md6_64_256;*;json\r' | seed tls_md6 "$auth" '\045'
printf 'tls_anon;;json' | seed tls_anon "$auth" '\060'
printf 'cleartext;%s;json' "$(printf fuzz-shared-secret | od -An -tx1 | tr -d ' \n')" |
    seed cleartext "$auth" '\000'
printf 'hmac_sha3_512;*;cbor\nsecret\nline 1\nline 2\nline 3\nline 4' | seed own_lines "$auth" '\000'
# the auth lines of the captured sessions (tokens for other greetings)
sed -n 3p "$vec/capture/conn1.c2s.bin" | seed capture_130 "$auth" '\005'
sed -n 3p "$vec/capture2/conn1.s2c.bin" | seed capture_202 "$auth" '\012'
