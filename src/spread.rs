//! Independent work on many items spread over the cores, with scoped threads (the calling
//! thread is one of them), the results in the items' order. Either the items are cut into
//! contiguous runs, one per thread ([`in_runs`]: work that goes best by runs, such as the files
//! of one directory), or each thread takes the next item nobody has taken yet ([`claimed`]:
//! items of unequal weight). A small batch stays on the calling thread, where starting threads
//! would cost more than it saves.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Below this many items, the calling thread does all the work.
const PARALLEL_MIN: usize = 64;
/// The most threads a batch is spread over.
const MAX_THREADS: usize = 8;

/// How many threads a batch of `items` items is spread over.
pub fn threads_for(items: usize) -> usize {
    if items < PARALLEL_MIN {
        return 1;
    }
    cores()
}

/// The most threads work is spread over: the processors this process may use (asked once), up
/// to `MAX_THREADS`.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from).min(MAX_THREADS))
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

/// `work` over each of `items`, the results in their order, on up to `threads` threads (see
/// [`threads_for`] and [`cores`]): each takes the next item that no thread has taken yet, so
/// that a heavy item does not hold up the rest. A thread that cannot be started leaves its share
/// to the others; a panic in a thread is resumed on the calling thread.
pub fn claimed<T: Sync, R: Send>(items: &[T], threads: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    // Each thread's results come with the indexes it took.
    let indexed = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { return done };
            done.push((i, work(item)));
        }
    };
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    std::thread::scope(|scope| {
        let helpers: Vec<_> =
            (1..threads).filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, indexed).ok()).collect();
        let mut place = |done: Vec<(usize, R)>| done.into_iter().for_each(|(i, result)| slots[i] = Some(result));
        place(indexed());
        for helper in helpers {
            place(helper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
    });
    slots.into_iter().map(|result| result.expect("every item is taken by a thread")).collect()
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
    fn claimed_work_gives_every_result_once_in_the_order_of_the_items() {
        for (n, threads) in [(0, 4), (1, 4), (3, 1), (100, 2), (1000, 3)] {
            let items: Vec<usize> = (0..n).collect();
            let calls = AtomicUsize::new(0);
            let threads_seen = std::sync::Mutex::new(std::collections::HashSet::new());
            let out = claimed(&items, threads, |&i| {
                calls.fetch_add(1, Ordering::Relaxed);
                threads_seen.lock().unwrap().insert(std::thread::current().id());
                // Unequal work: every seventh item is heavy.
                if i % 7 == 0 {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                i * 3
            });
            assert_eq!(out, (0..n).map(|i| i * 3).collect::<Vec<_>>(), "{n} items on {threads} threads");
            assert_eq!(calls.into_inner(), n, "each item once");
            assert!(threads_seen.into_inner().unwrap().len() <= threads.max(1), "{n} items on {threads} threads");
        }
    }

    #[test]
    fn claimed_work_on_one_thread_stays_on_the_calling_thread() {
        let caller = std::thread::current().id();
        let on = claimed(&[(); 500], 1, |()| std::thread::current().id());
        assert!(on.iter().all(|id| *id == caller));
    }

    #[test]
    fn a_small_batch_stays_on_the_calling_thread() {
        let caller = std::thread::current().id();
        let on = in_runs(vec![(); PARALLEL_MIN - 1], |run| run.iter().map(|()| std::thread::current().id()).collect());
        assert!(on.iter().all(|id| *id == caller));
    }
}
