//! [`LaunchConfig`]: the grid, block and shared memory of one kernel launch, and the
//! limits of the devices tessera targets. Shared by the Cuda and Emulator backends.

use crate::error::{Error, Result};

/// Grid, block and dynamic shared memory of one launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LaunchConfig {
    pub(crate) grid: (u32, u32, u32),
    pub(crate) block: (u32, u32, u32),
    pub(crate) shared_mem_bytes: u32,
}

/// Dynamic shared memory per block that an sm_90 device allows (227 KiB).
pub(crate) const MAX_DYNAMIC_SHARED_BYTES: u32 = 227 * 1024;

impl LaunchConfig {
    /// A 1-D grid of `blocks` blocks of `threads` threads.
    pub(crate) fn linear(blocks: u32, threads: u32, shared_mem_bytes: u32) -> Self {
        LaunchConfig { grid: (blocks, 1, 1), block: (threads, 1, 1), shared_mem_bytes }
    }

    /// Enough blocks of `threads` threads to give `items / items_per_block` blocks,
    /// rounding up. Fails when the grid would exceed the device's limit.
    pub(crate) fn for_items(items: usize, items_per_block: usize, threads: u32, shared_mem_bytes: u32) -> Result<Self> {
        let blocks = items.div_ceil(items_per_block.max(1));
        let blocks = u32::try_from(blocks).ok().filter(|&b| b <= i32::MAX as u32).ok_or_else(|| {
            Error::invalid("n", format!("{items} items need {blocks} blocks, more than a grid holds"))
        })?;
        Ok(Self::linear(blocks, threads, shared_mem_bytes))
    }

    /// True when the grid has no block: the launch is skipped.
    pub(crate) fn is_empty(&self) -> bool {
        self.grid.0 == 0 || self.grid.1 == 0 || self.grid.2 == 0
    }

    /// Checks the limits of an sm_90 device (the emulator enforces the same ones).
    pub(crate) fn validate(&self, kernel: &'static str) -> Result<()> {
        let (bx, by, bz) = self.block;
        let threads = bx as u64 * by as u64 * bz as u64;
        let bad = |reason: String| Err(Error::invalid("launch configuration", format!("kernel {kernel}: {reason}")));
        if bx == 0 || by == 0 || bz == 0 || bx > 1024 || by > 1024 || bz > 64 || threads > 1024 {
            return bad(format!("block {:?} outside 1..=1024 threads (z ≤ 64)", self.block));
        }
        if self.grid.0 > i32::MAX as u32 || self.grid.1 > 65535 || self.grid.2 > 65535 {
            return bad(format!("grid {:?} too large", self.grid));
        }
        if self.shared_mem_bytes > MAX_DYNAMIC_SHARED_BYTES {
            return bad(format!(
                "{} bytes of dynamic shared memory > {MAX_DYNAMIC_SHARED_BYTES}",
                self.shared_mem_bytes
            ));
        }
        Ok(())
    }

    pub(crate) fn to_cudarc(self) -> cudarc::driver::LaunchConfig {
        cudarc::driver::LaunchConfig {
            grid_dim: self.grid,
            block_dim: self.block,
            shared_mem_bytes: self.shared_mem_bytes,
        }
    }
}
