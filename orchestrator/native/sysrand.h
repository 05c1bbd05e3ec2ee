/* Fresh randomness from the kernel (getrandom(2)), shared by the prover (r, s) and the batch
 * verifier (its secret linear-combination coefficients).
 * NOTE: returns 0 on success, -1 with errno set on failure; retries on EINTR and short reads.
 */
#ifndef VBILL_SYSRAND_H
#define VBILL_SYSRAND_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/types.h>

static int fill_random(uint8_t *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t k = getrandom(buf + got, len - got, 0);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        got += (size_t)k;
    }
    return 0;
}

#endif /* VBILL_SYSRAND_H */
