//! Giving back stack pages that set-up touched once. Compiling a BPF program walks ~230 KB of
//! fixed-size arrays on the stack (proto's compiler is heapless); those pages would stay
//! resident for the whole run, a seventh of the agent's RSS.

use std::io;

/// Pages kept below the stack pointer: the deepest the capture loop goes, with room.
const KEEP_BELOW_SP: usize = 64 * 1024;

/// Tells the kernel that this thread's stack below the current frame (less
/// [`KEEP_BELOW_SP`]) holds nothing: those pages are dropped now and come back zeroed if the
/// stack grows there again. Returns the bytes of the range released.
///
/// Call it from a shallow frame, when nothing deeper is live (no frame below this one).
pub fn release_unused() -> io::Result<usize> {
    let (low, _high) = bounds()?;
    let page = page_size();
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    let end = sp.saturating_sub(KEEP_BELOW_SP) & !(page - 1);
    let start = (low + page - 1) & !(page - 1);
    if end <= start {
        return Ok(0);
    }
    // SAFETY: [start, end) lies in this thread's stack, below the current frame by at least
    // KEEP_BELOW_SP, where no live data is (the caller is shallow; signal handlers run below
    // the stack pointer only while they run, not during this call). MADV_DONTNEED on private
    // anonymous memory only makes the next touch read zeros; holes in the range (the main
    // thread's stack is mapped as it grows) are skipped with ENOMEM, which is fine.
    let rc = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOMEM) {
            return Err(e);
        }
    }
    Ok(end - start)
}

/// The lowest and highest address of this thread's stack.
fn bounds() -> io::Result<(usize, usize)> {
    // SAFETY: an all-zero pthread_attr_t is a valid out-parameter for pthread_getattr_np,
    // which initialises it; it is destroyed below on every path after success.
    let mut attr: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
    // SAFETY: pthread_self() is always valid for the calling thread; attr outlives the call.
    let rc = unsafe { libc::pthread_getattr_np(libc::pthread_self(), &mut attr) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    let mut addr: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: attr was initialised by pthread_getattr_np; the out-pointers live across the call.
    let rc = unsafe { libc::pthread_attr_getstack(&attr, &mut addr, &mut size) };
    // SAFETY: attr was initialised above and is not used after this.
    unsafe { libc::pthread_attr_destroy(&mut attr) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok((addr as usize, addr as usize + size))
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident bytes of this process's stack mappings, from smaps.
    fn stack_rss_kb() -> u64 {
        let smaps = std::fs::read_to_string("/proc/thread-self/smaps").unwrap_or_default();
        let mut in_stack = false;
        let mut kb = 0;
        for line in smaps.lines() {
            if line.contains('-') && line.split_whitespace().count() >= 5 {
                let (low, high) = line
                    .split_whitespace()
                    .next()
                    .and_then(|r| r.split_once('-'))
                    .unwrap_or(("0", "0"));
                let (low, high) = (
                    usize::from_str_radix(low, 16).unwrap_or(0),
                    usize::from_str_radix(high, 16).unwrap_or(0),
                );
                let here = std::ptr::addr_of!(in_stack) as usize;
                in_stack = (low..high).contains(&here);
            } else if in_stack && line.starts_with("Rss:") {
                kb += line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        kb
    }

    #[inline(never)]
    fn touch_deep(depth: usize) -> u8 {
        let buf = std::hint::black_box([depth as u8; 64 * 1024]);
        if depth == 0 {
            buf[100]
        } else {
            touch_deep(depth - 1).wrapping_add(buf[7])
        }
    }

    #[test]
    fn pages_touched_deep_below_are_given_back() {
        // On a thread of its own with a known stack, so the test harness's frames are not
        // in the way.
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let first = touch_deep(8); // ~576 KB of stack touched
                let before = stack_rss_kb();
                let released = release_unused().unwrap();
                let after = stack_rss_kb();
                assert!(released > 512 * 1024, "released {released}");
                assert!(
                    after + 400 < before,
                    "stack RSS {before} kB -> {after} kB after releasing {released} bytes"
                );
                // The stack still works where it was given back.
                assert_eq!(touch_deep(8), first);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
