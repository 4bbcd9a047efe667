/* fuzz_frame.c - libFuzzer target for one frame decoder: compiled with
 * FUZZ_FRAMING_CBOR or FUZZ_FRAMING_JSON defined.  The input is a byte
 * stream as a peer would send it; the property (frame_check.h): every frame
 * the reader accepts re-encodes in both framings to the same value, and
 * splitting the input differently changes nothing.  A violation aborts.
 *
 * Built as fuzz_frame_cbor and fuzz_frame_json (fuzz/CMakeLists.txt).
 */
#include <stddef.h>
#include <stdint.h>

#include "frame_check.h"

#if defined(FUZZ_FRAMING_CBOR)
#define FUZZ_FRAMING AEMP_FRAMING_CBOR
#elif defined(FUZZ_FRAMING_JSON)
#define FUZZ_FRAMING AEMP_FRAMING_JSON
#else
#error "define FUZZ_FRAMING_CBOR or FUZZ_FRAMING_JSON"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: check it (aborts on a violation).  Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fc_check_input(FUZZ_FRAMING, data, size);
    return 0;
}
