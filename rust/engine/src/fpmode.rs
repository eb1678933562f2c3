//! Flush-to-zero for the engine's threads.
//!
//! Over long sequences the error signal decays geometrically (eq. 7) and passes through the
//! subnormal range, where x86 arithmetic is up to ~100× slower. Values that small carry no
//! information for training, so the engine's threads flush them to zero (FTZ) and treat
//! subnormal inputs as zero (DAZ). Every thread that computes sets the same mode, so results
//! stay deterministic.

/// Sets FTZ and DAZ on the current thread until dropped, then restores the previous mode.
pub struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

impl FlushDenormals {
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = read_mxcsr();
            write_mxcsr(saved | FTZ_DAZ);
            FlushDenormals { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushDenormals {}
    }

    /// For threads the engine owns: set the mode for the thread's lifetime.
    pub fn set_for_thread() {
        #[cfg(target_arch = "x86_64")]
        write_mxcsr(read_mxcsr() | FTZ_DAZ);
    }
}

impl Default for FlushDenormals {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        write_mxcsr(self.saved);
    }
}

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: stmxcsr stores the 32-bit SSE control/status register to the given address.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags)) };
    v
}

#[cfg(target_arch = "x86_64")]
fn write_mxcsr(v: u32) {
    // SAFETY: ldmxcsr loads the SSE control/status register; the value comes from stmxcsr with
    // only the FTZ and DAZ mode bits changed, so no reserved bit is set.
    unsafe {
        core::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, readonly, preserves_flags))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnormals_flush_inside_the_guard_only() {
        let tiny = std::hint::black_box(f32::MIN_POSITIVE);
        let half = std::hint::black_box(0.5f32);
        assert!(tiny * half > 0.0, "subnormal results exist by default");
        {
            let _g = FlushDenormals::new();
            #[cfg(target_arch = "x86_64")]
            assert_eq!(std::hint::black_box(tiny) * std::hint::black_box(half), 0.0);
        }
        assert!(tiny * half > 0.0, "mode restored");
    }
}
