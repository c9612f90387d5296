//! Independent work on many items spread over the cores: the items are cut into contiguous
//! runs, one per thread (scoped threads, the calling thread taking the first run), and the
//! results come back in the items' order. A small batch stays on the calling thread, where
//! starting threads would cost more than it saves.

/// Below this many items, the calling thread does all the work.
const PARALLEL_MIN: usize = 64;
/// The most threads a batch is spread over.
const MAX_THREADS: usize = 8;

/// How many threads a batch of `items` items is spread over.
pub fn threads_for(items: usize) -> usize {
    if items < PARALLEL_MIN {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, usize::from).min(MAX_THREADS)
}

/// The results of `work` over `items`, in their order: `work` gets one contiguous run of them per
/// thread ([`threads_for`]). A panic in a thread is resumed on the calling thread.
pub fn in_runs<T: Send, R: Send>(items: Vec<T>, work: impl Fn(Vec<T>) -> Vec<R> + Sync) -> Vec<R> {
    let threads = threads_for(items.len());
    if threads <= 1 {
        return work(items);
    }
    let run = items.len().div_ceil(threads);
    let mut runs = Vec::with_capacity(threads);
    let mut rest = items;
    while rest.len() > run {
        let tail = rest.split_off(run);
        runs.push(std::mem::replace(&mut rest, tail));
    }
    runs.push(rest);
    let work = &work;
    std::thread::scope(|scope| {
        let mut runs = runs.into_iter();
        let first = runs.next().unwrap_or_default();
        let others: Vec<_> = runs.map(|run| scope.spawn(move || work(run))).collect();
        let mut out = work(first);
        for other in others {
            out.extend(other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items_whatever_the_runs() {
        for n in [0, 1, PARALLEL_MIN - 1, PARALLEL_MIN, 1000, 1001] {
            let items: Vec<usize> = (0..n).collect();
            let runs = std::sync::Mutex::new(Vec::new());
            let out = in_runs(items, |run: Vec<usize>| {
                runs.lock().unwrap().push(run.len());
                run.into_iter().map(|i| i * 3).collect()
            });
            assert_eq!(out, (0..n).map(|i| i * 3).collect::<Vec<_>>(), "{n} items");
            let runs = runs.into_inner().unwrap();
            assert_eq!(runs.iter().sum::<usize>(), n, "every item in exactly one run");
            assert_eq!(runs.len(), threads_for(n), "one run per thread for {n} items");
        }
    }

    #[test]
    fn a_small_batch_stays_on_the_calling_thread() {
        let caller = std::thread::current().id();
        let on = in_runs(vec![(); PARALLEL_MIN - 1], |run| run.iter().map(|()| std::thread::current().id()).collect());
        assert!(on.iter().all(|id| *id == caller));
    }
}
