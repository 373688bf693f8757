//! `sysctl(3)` for macOS and FreeBSD, which rustix does not wrap: by MIB
//! into a byte buffer or a plain C structure, and by name for strings and
//! integers. Every call says how many bytes the kernel wrote; callers check
//! that it is what they asked for.

#![allow(unsafe_code)]

use std::ffi::{c_int, c_void, CStr};
use std::io;

/// Reads `mib` into `buf`; returns the number of bytes written.
pub(crate) fn by_mib(mib: &[c_int], buf: &mut [u8]) -> io::Result<usize> {
    let mut len = buf.len();
    // SAFETY: `mib` points to `mib.len()` valid ints that the kernel only
    // reads; `buf` is writable for `len` bytes and `len` tells the kernel
    // so; no new value is set (null, 0).
    let r = unsafe {
        libc::sysctl(
            mib.as_ptr().cast_mut(),
            mib.len() as libc::c_uint,
            buf.as_mut_ptr().cast::<c_void>(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(len.min(buf.len()))
}

/// Reads `mib` into a `T`, a plain C structure from `libc` (integers,
/// arrays and pointers only, for which all-zero bytes are a valid value).
/// Returns the value and how many bytes the kernel wrote.
#[cfg(target_os = "freebsd")]
pub(crate) fn struct_by_mib<T: Copy>(mib: &[c_int]) -> io::Result<(T, usize)> {
    let mut value = std::mem::MaybeUninit::<T>::zeroed();
    let mut len = std::mem::size_of::<T>();
    // SAFETY: as in `by_mib`; `value` is writable for `std::mem::size_of::<T>()`
    // bytes.
    let r = unsafe {
        libc::sysctl(
            mib.as_ptr().cast_mut(),
            mib.len() as libc::c_uint,
            value.as_mut_ptr().cast::<c_void>(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the callers' `T` are plain C structures of integers, arrays
    // and pointers, for which the zeroed bytes (and whatever part the
    // kernel overwrote) are a valid value.
    Ok((unsafe { value.assume_init() }, len))
}

/// Reads the sysctl `name` into `buf`; returns the number of bytes written.
pub(crate) fn by_name(name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = buf.len();
    // SAFETY: `name` is NUL-terminated; `buf` is writable for `len` bytes;
    // no new value is set.
    let r = unsafe {
        libc::sysctlbyname(
            name.as_ptr(),
            buf.as_mut_ptr().cast::<c_void>(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(len.min(buf.len()))
}

/// A string sysctl such as `kern.hostuuid`.
pub(crate) fn string(name: &CStr) -> io::Result<String> {
    let mut buf = [0u8; 256];
    let n = by_name(name, &mut buf)?;
    let text = &buf[..n];
    let text = text.split(|b| *b == 0).next().unwrap_or(b"");
    String::from_utf8(text.to_vec())
        .map(|s| s.trim().to_owned())
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sysctl {}: not UTF-8", name.to_string_lossy()),
            )
        })
}

/// An integer sysctl such as `security.jail.jailed`; `Ok(None)` if this
/// system has no such name.
#[cfg(target_os = "freebsd")]
pub(crate) fn int(name: &CStr) -> io::Result<Option<c_int>> {
    let mut buf = [0u8; std::mem::size_of::<c_int>()];
    match by_name(name, &mut buf) {
        Ok(n) if n == buf.len() => Ok(Some(c_int::from_ne_bytes(buf))),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("sysctl {}: not an int", name.to_string_lossy()),
        )),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}
