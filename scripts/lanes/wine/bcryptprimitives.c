/*
 * A stand-in for Windows' bcryptprimitives.dll, for wine 8 only.
 *
 * Every executable built by Rust 1.78 or later imports ProcessPrng from
 * bcryptprimitives.dll (std's random source). Wine 8 ships no such DLL, so
 * such an executable exits with code 53 before main and prints nothing. This
 * DLL exports ProcessPrng and fills the buffer from RtlGenRandom (exported by
 * advapi32 as SystemFunction036), which wine implements with the host's
 * random source. scripts/lanes/windows.sh builds it with mingw-w64 and puts it
 * in the wine prefix's system32 when wine has no bcryptprimitives of its own.
 */
#include <windows.h>

/* RtlGenRandom; declared by hand because ntsecapi.h's declaration is a macro. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Documented as always returning TRUE; we return FALSE if RtlGenRandom fails
 * (callers that trust the documentation abort then, which is the honest
 * outcome for a random source that failed). */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
