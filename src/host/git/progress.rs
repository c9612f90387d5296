//! A fetch's progress as one line on stderr, for a terminal: `gix` reports into [`Task`]s (its
//! progress traits), and a [`Line`] redraws the busiest of them a few times a second, e.g.
//! `fetching: read pack 1.21 MB, indexing 3412 objects`. Without a terminal the caller passes
//! no progress at all and the fetch is quiet.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use gix::progress::{Count, Id, MessageLevel, NestedProgress, Progress, Step, StepShared, Unit};

/// How often the line is redrawn.
const REDRAW_EVERY: Duration = Duration::from_millis(150);

/// What every task has reported so far.
#[derive(Debug, Default)]
struct Board {
    tasks: Vec<TaskState>,
    stopped: bool,
}

#[derive(Debug)]
struct TaskState {
    name: String,
    unit: Option<Unit>,
    max: Option<Step>,
    counter: StepShared,
    finished: bool,
}

impl TaskState {
    /// `name 12/30 objects`, or `None` while the task has nothing to show.
    fn text(&self) -> Option<String> {
        let step = self.counter.load(Ordering::Relaxed);
        if self.finished || (step == 0 && self.max.is_none()) || self.name.is_empty() {
            return None;
        }
        let value = match &self.unit {
            Some(unit) => unit.display(step, self.max, None).to_string(),
            None => match self.max {
                Some(max) => format!("{step}/{max}"),
                None => step.to_string(),
            },
        };
        Some(format!("{} {value}", self.name))
    }
}

#[derive(Debug)]
struct Shared {
    board: Mutex<Board>,
    wake: Condvar,
}

impl Shared {
    fn board(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, name: String) -> Task {
        let counter = StepShared::default();
        let mut board = self.board();
        board.tasks.push(TaskState { name, unit: None, max: None, counter: counter.clone(), finished: false });
        Task { shared: None, index: board.tasks.len() - 1, counter }
    }

    /// The line as it stands: the unfinished tasks with something to show, last ones first.
    fn line(&self) -> String {
        let board = self.board();
        let shown: Vec<String> = board.tasks.iter().rev().filter_map(TaskState::text).take(3).collect();
        shown.join(", ")
    }
}

/// The line on stderr, redrawn by a thread until [`Line::finish`] (or drop).
#[derive(Debug)]
pub struct Line {
    shared: Arc<Shared>,
    drawer: Option<JoinHandle<()>>,
}

impl Line {
    /// Starts drawing the progress of tasks made with [`Line::task`].
    pub fn start() -> Line {
        let shared = Arc::new(Shared { board: Mutex::new(Board::default()), wake: Condvar::new() });
        let drawer = std::thread::spawn({
            let shared = shared.clone();
            move || draw(&shared)
        });
        Line { shared, drawer: Some(drawer) }
    }

    /// A top-level task called `name`.
    pub fn task(&self, name: &str) -> Task {
        let mut task = self.shared.add(name.to_string());
        task.shared = Some(self.shared.clone());
        task
    }

    /// Stops drawing and ends the line.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.board().stopped = true;
        self.shared.wake.notify_all();
        if let Some(drawer) = self.drawer.take() {
            drawer.join().ok();
        }
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Redraws the line until stopped; then leaves the last state on its own line.
fn draw(shared: &Shared) {
    let mut drawn = String::new();
    loop {
        let stopped = {
            let board = shared.board();
            let (board, _) = shared.wake.wait_timeout(board, REDRAW_EVERY).unwrap_or_else(PoisonError::into_inner);
            board.stopped
        };
        let line = shared.line();
        if !line.is_empty() && line != drawn {
            eprint!("\r\x1b[Kfetching: {line}");
            std::io::stderr().flush().ok();
            drawn = line;
        }
        if stopped {
            if !drawn.is_empty() {
                eprintln!();
            }
            return;
        }
    }
}

/// One task of a fetch (`read pack`, `indexing`, ...), as `gix` reports it.
#[derive(Debug)]
pub struct Task {
    shared: Option<Arc<Shared>>,
    index: usize,
    counter: StepShared,
}

impl Task {
    fn update(&self, change: impl FnOnce(&mut TaskState)) {
        if let Some(shared) = &self.shared {
            if let Some(state) = shared.board().tasks.get_mut(self.index) {
                change(state);
            }
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.update(|state| state.finished = true);
    }
}

impl Count for Task {
    fn set(&self, step: Step) {
        self.counter.store(step, Ordering::Relaxed);
    }

    fn step(&self) -> Step {
        self.counter.load(Ordering::Relaxed)
    }

    fn inc_by(&self, step: Step) {
        self.counter.fetch_add(step, Ordering::Relaxed);
    }

    fn counter(&self) -> StepShared {
        self.counter.clone()
    }
}

impl Progress for Task {
    fn init(&mut self, max: Option<Step>, unit: Option<Unit>) {
        self.counter.store(0, Ordering::Relaxed);
        self.update(|state| {
            state.max = max;
            state.unit = unit;
        });
    }

    fn unit(&self) -> Option<Unit> {
        let shared = self.shared.as_ref()?;
        shared.board().tasks.get(self.index).and_then(|s| s.unit.clone())
    }

    fn max(&self) -> Option<Step> {
        let shared = self.shared.as_ref()?;
        shared.board().tasks.get(self.index).and_then(|s| s.max)
    }

    fn set_max(&mut self, max: Option<Step>) -> Option<Step> {
        let previous = self.max();
        self.update(|state| state.max = max);
        previous
    }

    fn set_name(&mut self, name: String) {
        self.update(|state| state.name = name);
    }

    fn name(&self) -> Option<String> {
        let shared = self.shared.as_ref()?;
        shared.board().tasks.get(self.index).map(|s| s.name.clone())
    }

    fn id(&self) -> Id {
        gix::progress::UNKNOWN
    }

    /// Messages (`done 34 objects in 0.02s`, ...) are not shown; the line says enough.
    fn message(&self, _level: MessageLevel, _message: String) {}
}

impl NestedProgress for Task {
    type SubProgress = Task;

    fn add_child(&mut self, name: impl Into<String>) -> Task {
        match &self.shared {
            Some(shared) => {
                let mut task = shared.add(name.into());
                task.shared = Some(shared.clone());
                task
            }
            None => Task { shared: None, index: 0, counter: StepShared::default() },
        }
    }

    fn add_child_with_id(&mut self, name: impl Into<String>, _id: Id) -> Task {
        self.add_child(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_unfinished_tasks_with_progress_last_first() {
        let line = Line::start();
        let mut root = line.task("");
        let mut pack = root.add_child("read pack");
        pack.init(None, Some(gix::progress::unit::label("bytes")));
        pack.inc_by(1200);
        let mut index = root.add_child("indexing");
        index.init(Some(30), None);
        index.inc_by(12);
        let idle = root.add_child("resolving");
        assert_eq!(line.shared.line(), "indexing 12/30, read pack 1200 bytes");
        drop(pack);
        assert_eq!(line.shared.line(), "indexing 12/30", "a dropped task is finished");
        drop(idle);
        line.finish();
    }
}
