//! CPU-heavy requests (forecast simulations) run here, never on the async runtime's threads
//! (which serve every other request and the dialer): at most `workers` at once, at most `queue`
//! more waiting for a worker (beyond that: refused at once), and each within a time budget
//! after which its stop flag is raised and the caller is answered.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Why a job did not give its answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoolError {
    #[error(
        "the server is busy with other simulations ({workers} running, {queue} waiting, the most it takes); try again in a few seconds"
    )]
    Busy { workers: usize, queue: usize },
    #[error("the simulation did not finish within its time budget of {budget_s} s and was stopped; ask for a smaller forecast (fewer agents, no finish_by) or try again when the server is less busy")]
    OverBudget { budget_s: u64 },
    #[error("the simulation failed unexpectedly (see the server log)")]
    Panicked,
}

/// A bounded pool of blocking threads for CPU-heavy jobs.
pub struct CpuPool {
    permits: Arc<Semaphore>,
    workers: usize,
    queue: usize,
    waiting: AtomicUsize,
}

/// Decrements the waiting count when a waiter leaves (served, or its request dropped).
struct Waiting<'a>(&'a AtomicUsize);
impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Raises the job's stop flag when the caller stops waiting for it (over budget, or the
/// request dropped): the job ends soon and frees its worker.
struct StopOnDrop(Arc<AtomicBool>);
impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl CpuPool {
    pub fn new(workers: usize, queue: usize) -> CpuPool {
        assert!(workers > 0, "a pool needs a worker");
        CpuPool { permits: Arc::new(Semaphore::new(workers)), workers, queue, waiting: AtomicUsize::new(0) }
    }

    /// The process's pool: one worker per core, two waiting per worker.
    pub fn global() -> &'static CpuPool {
        static POOL: OnceLock<CpuPool> = OnceLock::new();
        POOL.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            CpuPool::new(cores, 2 * cores)
        })
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Runs `job` on a blocking thread once a worker is free; `job` must return soon after the
    /// flag it is given is raised (raised when `budget` has passed since it started).
    pub async fn run<T, F>(&self, budget: Duration, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&AtomicBool) -> T + Send + 'static,
    {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(PoolError::Busy { workers: self.workers, queue: self.queue });
                }
                let _w = Waiting(&self.waiting);
                self.permits.clone().acquire_owned().await.expect("the pool's semaphore is never closed")
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let _stop_guard = StopOnDrop(stop.clone());
        let handle = tokio::task::spawn_blocking(move || {
            // The worker is busy until the job returns, even after the caller gave up on it.
            let _permit = permit;
            job(&stop)
        });
        match tokio::time::timeout(budget, handle).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "a simulation panicked");
                Err(PoolError::Panicked)
            }
            Err(_) => Err(PoolError::OverBudget { budget_s: budget.as_secs() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that runs until stopped (or 30 s), as a simulation over its budget does.
    fn spin(stop: &AtomicBool) -> u32 {
        let t0 = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(5));
        }
        7
    }

    #[tokio::test]
    async fn bounded_workers_bounded_queue_and_a_budget() {
        let pool = Arc::new(CpuPool::new(1, 1));
        assert_eq!(pool.run(Duration::from_secs(5), |_| 1).await, Ok(1));
        // One runs, one waits, the third is refused at once.
        let p = pool.clone();
        let running = tokio::spawn(async move { p.run(Duration::from_millis(300), spin).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let p = pool.clone();
        let queued = tokio::spawn(async move { p.run(Duration::from_secs(5), |_| 2).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.run(Duration::from_secs(5), |_| 3).await, Err(PoolError::Busy { workers: 1, queue: 1 }));
        // Over budget: answered, and the job is stopped, so the waiting one gets the worker.
        assert_eq!(running.await.unwrap(), Err(PoolError::OverBudget { budget_s: 0 }));
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), queued).await.expect("the stopped job freed its worker").unwrap(), Ok(2));
        // A dropped waiter leaves the queue.
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 0);
    }
}
