//! An elastic pool of request threads: idle threads are reused (spawning a thread per
//! request costs ~20 system calls, which gVisor's ptrace platform makes expensive), and a new
//! thread is started whenever none is idle, so a slow request never delays another.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long a surplus idle thread lingers before exiting.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle threads that never exit.
const KEPT_THREADS: usize = 4;

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Threads waiting for work and not yet promised a job.
    idle: usize,
    /// Jobs in `queue` promised to an idle thread that has not picked them up yet.
    reserved: usize,
    threads: usize,
}

/// Runs submitted jobs on reused threads.
#[derive(Clone, Default)]
pub struct Workers {
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl Workers {
    /// Runs `job` on an idle thread, or on a new one if none is idle.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) {
        let (lock, wake) = &*self.shared;
        let mut state = lock.lock().expect("worker pool poisoned");
        if state.idle > 0 {
            state.idle -= 1;
            state.reserved += 1;
            state.queue.push_back(Box::new(job));
            wake.notify_one();
            return;
        }
        state.threads += 1;
        drop(state);
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name("request".into())
            .spawn(move || pool.work(Box::new(job)));
        if let Err(e) = spawned {
            lock.lock().expect("worker pool poisoned").threads -= 1;
            tracing::error!(error = %e, "cannot start a request thread; request dropped");
        }
    }

    fn work(&self, first: Job) {
        let (lock, wake) = &*self.shared;
        first();
        let mut state = lock.lock().expect("worker pool poisoned");
        loop {
            state.idle += 1;
            loop {
                let (next, timeout) = wake
                    .wait_timeout(state, IDLE_TIMEOUT)
                    .expect("worker pool poisoned");
                state = next;
                if state.reserved > 0 {
                    state.reserved -= 1;
                    break;
                }
                if timeout.timed_out() && state.threads > KEPT_THREADS {
                    state.idle -= 1;
                    state.threads -= 1;
                    return;
                }
            }
            let job = state.queue.pop_front().expect("a reserved job is queued");
            drop(state);
            job();
            state = lock.lock().expect("worker pool poisoned");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_blocked_job_does_not_delay_the_next_one() {
        let pool = Workers::default();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let d = done_tx.clone();
        pool.submit(move || {
            release_rx.recv().unwrap();
            d.send("slow").unwrap();
        });
        pool.submit(move || done_tx.send("fast").unwrap());
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(5)).unwrap(), "fast");
        release_tx.send(()).unwrap();
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(5)).unwrap(), "slow");
    }

    #[test]
    fn idle_threads_are_reused() {
        let pool = Workers::default();
        let (tx, rx) = mpsc::channel();
        for _ in 0..50 {
            let tx = tx.clone();
            pool.submit(move || tx.send(std::thread::current().id()).unwrap());
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
            // Let the thread go idle before the next submission.
            while pool.shared.0.lock().unwrap().idle == 0 {
                std::thread::yield_now();
            }
        }
        assert_eq!(pool.shared.0.lock().unwrap().threads, 1);
    }
}
