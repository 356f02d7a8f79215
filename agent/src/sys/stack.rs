//! Giving back stack pages that set-up touched once. Compiling a BPF program walks ~150 KB of
//! fixed-size arrays on the stack (proto's compiler is heapless); those pages would stay
//! resident for the whole run.

use std::io;

/// Pages kept below the stack pointer: the deepest the capture loop goes, with room.
const KEEP_BELOW_SP: usize = 64 * 1024;

/// Tells the kernel that this thread's stack below the current frame (less
/// [`KEEP_BELOW_SP`]) holds nothing: those pages are dropped now and come back zeroed if the
/// stack grows there again. Returns the bytes of the range released.
///
/// Only on the main thread, whose stack is the kernel's `[stack]` mapping (it grows down and
/// is never merged with a neighbour), and only inside it: libc's idea of the stack's extent
/// (pthread_getattr_np) may reach into a neighbouring mapping, as it did for armv7 under
/// qemu-user, and zeroing that is fatal. Elsewhere nothing is released.
///
/// Call it from a shallow frame, when nothing deeper is live (no frame below this one).
pub fn release_unused() -> io::Result<usize> {
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    match mapping_holding(&maps, sp) {
        Some((low, _, "[stack]")) => release_below(low, sp),
        _ => Ok(0),
    }
}

/// Releases the pages of the stack mapping starting at `low` that lie [`KEEP_BELOW_SP`] or more
/// below `sp`, the caller's stack pointer.
fn release_below(low: usize, sp: usize) -> io::Result<usize> {
    let page = page_size();
    let end = sp.saturating_sub(KEEP_BELOW_SP) & !(page - 1);
    let start = (low + page - 1) & !(page - 1);
    if end <= start {
        return Ok(0);
    }
    // SAFETY: [start, end) lies inside the stack mapping that holds the caller's stack pointer,
    // at least KEEP_BELOW_SP below the current frame, where no live data is (the caller is
    // shallow; a signal handler runs below the stack pointer only while it runs, not during
    // this call). MADV_DONTNEED on private anonymous memory only makes the next touch read
    // zeros.
    let rc = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(end - start)
}

/// The (start, end, name) of the mapping in a /proc/PID/maps text that holds `addr`.
fn mapping_holding(maps: &str, addr: usize) -> Option<(usize, usize, &str)> {
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        let name = fields.nth(4).unwrap_or("");
        (start..end).contains(&addr).then_some((start, end, name))
    })
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
    fn only_the_mapping_that_holds_the_address_is_found() {
        let maps = "\
00400000-00500000 r-xp 00000000 fe:01 1 /usr/bin/hopcap-agent
7e000000-7f000000 rw-p 00000000 00:00 0
7f000000-7f100000 rw-p 00000000 00:00 0 [stack]
";
        assert_eq!(
            mapping_holding(maps, 0x7f0f_f000),
            Some((0x7f00_0000, 0x7f10_0000, "[stack]"))
        );
        // Adjacent mappings stay apart: the anonymous one right below is not the stack.
        assert_eq!(
            mapping_holding(maps, 0x7eff_ffff),
            Some((0x7e00_0000, 0x7f00_0000, ""))
        );
        assert_eq!(mapping_holding(maps, 0x10), None);
        assert_eq!(mapping_holding("junk\n-\nzz-yy rw-p\n", 0x10), None);
    }

    #[test]
    fn pages_touched_deep_below_are_given_back() {
        // On the test harness's thread (a plain mapping): nothing, or (one test thread, so
        // the main thread's [stack]) only what lies below this frame.
        release_unused().unwrap();
        // On a thread of its own with a known stack, so the test harness's frames are not
        // in the way.
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let first = touch_deep(8); // ~576 KB of stack touched
                let before = stack_rss_kb();
                // This thread's stack is a mapping of its own, its guard page below it.
                let marker = 0u8;
                let sp = std::ptr::addr_of!(marker) as usize;
                let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
                let (low, _, _) = mapping_holding(&maps, sp).unwrap();
                let released = release_below(low, sp).unwrap();
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
