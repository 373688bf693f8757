/*
 * Self-test for the wine lanes (scripts/lanes/wine/env.sh): loads ProcessPrng
 * from bcryptprimitives.dll as Rust's std does, asks it for 32 bytes, then
 * exits with the code given as its argument. A lane trusts wine's verdicts
 * only after this exits with both 0 and 3 as asked.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

typedef BOOL(WINAPI *prng_fn)(PBYTE, SIZE_T);

int main(int argc, char **argv)
{
    HMODULE dll = LoadLibraryW(L"bcryptprimitives.dll");
    if (dll == NULL) {
        fprintf(stderr, "probe: LoadLibrary(bcryptprimitives.dll) failed: %lu\n", GetLastError());
        return 53;
    }
    prng_fn prng = (prng_fn)(void (*)(void))GetProcAddress(dll, "ProcessPrng");
    if (prng == NULL) {
        fprintf(stderr, "probe: bcryptprimitives.dll has no ProcessPrng\n");
        return 53;
    }
    BYTE buf[32] = {0};
    if (!prng(buf, sizeof buf)) {
        fprintf(stderr, "probe: ProcessPrng failed\n");
        return 54;
    }
    int nonzero = 0;
    for (size_t i = 0; i < sizeof buf; i++)
        nonzero += buf[i] != 0;
    if (nonzero < 16) {
        /* 32 random bytes with 17 or more zeros: about 1 in 10^30. */
        fprintf(stderr, "probe: ProcessPrng gave %d nonzero bytes of 32\n", nonzero);
        return 55;
    }
    return argc > 1 ? atoi(argv[1]) : 0;
}
