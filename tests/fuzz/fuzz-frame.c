/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the frame decoder and the control-message decoder.
 *
 * Input: byte 0 picks the chunk size (1..256) in which the rest is fed to the incremental
 * decoder, byte 1 the negotiated maximum; every complete control frame is then decoded and
 * validated, and every DATA frame with META split. Any crash, over-read (ASan) or undefined
 * behaviour (UBSan) is a finding.
 */
#include <stdint.h>
#include <stdlib.h>

#include "control.h"
#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        VbusFrameDecoder d;
        size_t chunk, off = 2;
        uint32_t max;

        if (size < 2)
                return 0;
        chunk = (size_t)data[0] + 1;
        max = data[1] & 1 ? VBUS_FRAME_MAX_MIN : VBUS_FRAME_MAX_DEFAULT;
        vbus__frame_decoder_init(&d, max);

        while (off < size) {
                size_t n = size - off < chunk ? size - off : chunk;
                size_t pos = 0;

                while (pos < n) {
                        VbusFrame f;
                        size_t used = 0;
                        int r = vbus__frame_decoder_feed(&d, data + off + pos, n - pos, &used, &f);

                        if (r < 0)
                                goto out;
                        pos += used;
                        if (r == 0)
                                break;
                        if (f.header.type == VBUS_FRAME_DATA) {
                                const uint8_t *m, *b;
                                size_t nm, nb;

                                if (f.header.flags & VBUS_FLAG_META)
                                        (void)vbus__meta_split(f.payload, f.header.length, &m, &nm,
                                                               &b, &nb);
                        } else {
                                VbusControl c = VBUS_CONTROL_NULL;

                                if (vbus__control_decode(&f.header, f.payload,
                                                         VBUS_CONTROL_DECODE_BUDGET, &c) == 0)
                                        vbus__control_deinit(&c);
                        }
                }
                off += n;
        }
out:
        vbus__frame_decoder_deinit(&d);
        return 0;
}
