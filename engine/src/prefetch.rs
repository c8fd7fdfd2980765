//! Cache prefetch hints: start loading a record's cache lines while other
//! work goes on. A hint reads nothing and never faults; without it the run
//! is the same, only slower where the record is far in memory.

/// Bytes of a cache line (x86-64 and most of aarch64).
pub const LINE: usize = 64;

/// Most lines one call prefetches (a record's first 512 bytes).
const MAX_LINES: usize = 8;

/// Starts loading the cache lines that hold `*r` (its first 512 bytes).
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    let p = (r as *const T).cast::<u8>();
    let skew = p as usize % LINE;
    let lines = ((skew + std::mem::size_of::<T>()).div_ceil(LINE)).clamp(1, MAX_LINES);
    let base = p.wrapping_sub(skew);
    for i in 0..lines {
        line(base.wrapping_add(i * LINE));
    }
}

/// Starts loading the one cache line that holds `*r`'s first byte.
#[inline(always)]
pub fn prefetch_line<T>(r: &T) {
    line((r as *const T).cast::<u8>());
}

/// Starts loading the cache line of address `p`, which need not point to
/// anything (one past a slice's end, say): a prefetch never faults.
#[inline(always)]
pub fn prefetch_addr<T>(p: *const T) {
    line(p.cast::<u8>());
}

#[inline(always)]
fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetching_changes_nothing() {
        let v: Vec<[u64; 40]> = vec![[7; 40]; 3];
        prefetch(&v[1]);
        prefetch_line(&v[2][39]);
        prefetch(&());
        assert_eq!(v[1][39], 7);
    }
}
