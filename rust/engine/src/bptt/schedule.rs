//! How the batch is cut into ranges of examples and the ranges run on the pool's threads;
//! nothing here touches a value, so no result depends on it.

use std::sync::Mutex;

use rayon::prelude::*;
use rayon::ThreadPool;

/// Splits the batch into `pieces` near-equal contiguous ranges, as counts.
pub(super) fn block_counts(batch: usize, pieces: usize) -> Vec<usize> {
    let pieces = pieces.clamp(1, batch.max(1));
    (0..pieces)
        .map(|i| (i + 1) * batch / pieces - i * batch / pieces)
        .collect()
}

/// How many blocks of examples the recurrences run in: one per thread, or up to four per
/// thread where each keeps at least max(8, H/8) examples. The threads take blocks as they free
/// up, so a core that runs slower for a while (on a virtual machine the two cores were measured
/// running the same work in 12.7 and 20.4 ms at once) takes fewer blocks instead of holding up
/// the other. The floor keeps the step product efficient: each pass over W_rec (from L2 once
/// H·H no longer fits L1) must serve enough rows (measured at H = 512: 8 blocks of 16 rows ran
/// slower than 2 of 64; at H = 100, 8 blocks of 8 ran ~10% faster than 2).
pub(super) fn recurrence_blocks(batch: usize, h: usize, threads: usize) -> usize {
    if threads <= 1 {
        1
    } else {
        (batch / (h / 8).max(8)).clamp(threads, 4 * threads)
    }
}

/// Runs `f` on every item, shared out among the pool's threads by work stealing; on the caller
/// when the pool has one thread or there is one item. Returns the index of the thread that
/// ran each item (0 when run on the caller).
pub(super) fn run_shared_out<I: Send, F>(pool: &ThreadPool, mut items: Vec<I>, f: F) -> Vec<usize>
where
    F: Fn(&mut I) + Sync,
{
    if pool.current_num_threads() == 1 || items.len() == 1 {
        items.iter_mut().for_each(&f);
        return vec![0; items.len()];
    }
    let mut ran_on = vec![0; items.len()];
    pool.install(|| {
        items
            .par_iter_mut()
            .zip(ran_on.par_iter_mut())
            .with_max_len(1)
            .for_each(|(item, thread)| {
                *thread = rayon::current_thread_index().unwrap_or(0);
                f(item);
            })
    });
    ran_on
}

/// Runs `f` on every item, item j on pool thread `owner[j]`; on the caller when the pool has
/// one thread or there is one item.
///
/// The owners are the threads that ran the forward and backward recurrences of the items'
/// examples, so each sums their weight gradients from its own core's cache (left to work
/// stealing, the two halves of the batch changed threads half of the time, and reading the
/// other core's rows made the gradient pass up to twice as slow).
pub(super) fn run_on_owners<I: Send, F>(pool: &ThreadPool, items: Vec<I>, owner: &[usize], f: F)
where
    F: Fn(&mut I) + Sync,
{
    if pool.current_num_threads() == 1 || items.len() == 1 {
        items.into_iter().for_each(|mut item| f(&mut item));
        return;
    }
    let slots: Vec<Mutex<Option<I>>> = items.into_iter().map(|i| Mutex::new(Some(i))).collect();
    pool.broadcast(|ctx| {
        for (slot, _) in slots.iter().zip(owner).filter(|(_, &w)| w == ctx.index()) {
            // Each item is taken once, by its owner; a poisoned lock means f panicked, which
            // the broadcast re-raises on the caller.
            if let Some(mut item) = slot.lock().ok().and_then(|mut s| s.take()) {
                f(&mut item);
            }
        }
    });
}

/// For each range of examples (as counts), the index of the range of `blocks` that holds its
/// first example.
pub(super) fn owners(ranges: &[usize], blocks: &[usize]) -> Vec<usize> {
    let block_starts = starts(blocks);
    starts(ranges)
        .into_iter()
        .map(|e| block_starts.partition_point(|&b| b <= e).saturating_sub(1))
        .collect()
}

/// The first example of each range, from the ranges' counts.
pub(super) fn starts(counts: &[usize]) -> Vec<usize> {
    counts
        .iter()
        .scan(0, |acc, &n| {
            let start = *acc;
            *acc += n;
            Some(start)
        })
        .collect()
}
