//! [`Queue`]: restorations on blocking threads, a bounded number at once and waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::{ApiError, Limits};

/// Admits at most `workers + queue` jobs; runs at most `workers` of them at once.
#[derive(Clone, Debug)]
pub struct Queue {
    /// One permit per job admitted (running or waiting).
    places: Arc<Semaphore>,
    /// One permit per job running.
    workers: Arc<Semaphore>,
    /// Worker count, for the wait estimate.
    worker_count: usize,
    /// The most jobs admitted at once.
    capacity: usize,
    /// How long a job may take, waiting included.
    timeout: Duration,
    /// How long the last job ran, in milliseconds: the base of `Retry-After`.
    last_job_ms: Arc<AtomicU64>,
}

impl Queue {
    /// A queue for `limits`.
    pub fn new(limits: &Limits) -> Self {
        let workers = limits.workers.max(1);
        Self {
            places: Arc::new(Semaphore::new(workers + limits.queue)),
            workers: Arc::new(Semaphore::new(workers)),
            worker_count: workers,
            capacity: workers + limits.queue,
            timeout: limits.timeout,
            last_job_ms: Arc::new(AtomicU64::new(1000)),
        }
    }

    /// Runs `job` on a blocking thread once a worker is free. Refused at once with
    /// [`ApiError::busy`] when every place is taken; [`ApiError::timed_out`] after the timeout
    /// (a job already running finishes on its own and keeps its place until then, so the number
    /// of jobs in memory stays bounded); a job that panics is an [`ApiError::internal`].
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
        let place = self.places.clone().try_acquire_owned().map_err(|_| ApiError::busy(self.retry_after()))?;
        let (workers, last_job_ms) = (self.workers.clone(), self.last_job_ms.clone());
        let work = async move {
            let worker = workers.acquire_owned().await.expect("the worker semaphore is never closed");
            tokio::task::spawn_blocking(move || {
                let _held = (place, worker);
                let started = Instant::now();
                let result = job();
                last_job_ms.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                result
            })
            .await
        };
        match tokio::time::timeout(self.timeout, work).await {
            Err(_) => Err(ApiError::timed_out(self.timeout)),
            Ok(Err(panic)) => Err(ApiError::internal(format!("the restoration failed: {panic}"))),
            Ok(Ok(result)) => result,
        }
    }

    /// Seconds until a place is likely free when all are taken: every admitted job, shared by
    /// the workers, at the last job's duration (at least 1).
    fn retry_after(&self) -> u64 {
        let per_job_ms = self.last_job_ms.load(Ordering::Relaxed);
        (self.capacity as u64 * per_job_ms / self.worker_count as u64).div_ceil(1000).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(workers: usize, queue: usize, timeout_ms: u64) -> Limits {
        Limits { workers, queue, timeout: Duration::from_millis(timeout_ms), ..Limits::default() }
    }

    #[tokio::test]
    async fn jobs_beyond_the_places_are_refused_at_once_and_the_rest_run() {
        let queue = Queue::new(&limits(1, 1, 10_000));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let blocked = |gate: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>| move || Ok(gate.lock().unwrap().recv().is_ok());
        let (first, second) = (queue.clone(), queue.clone());
        let running = tokio::spawn({
            let gate = gate.clone();
            async move { first.run(blocked(gate)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting = tokio::spawn(async move { second.run(|| Ok(true)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let refused = queue.run(|| Ok(true)).await.unwrap_err();
        assert_eq!((refused.status.as_u16(), refused.code), (503, "busy"));
        assert!(refused.retry_after.is_some_and(|seconds| seconds >= 1));
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(true));
        assert_eq!(waiting.await.unwrap(), Ok(true));
        assert_eq!(queue.run(|| Ok(7)).await, Ok(7), "places are given back");
    }

    #[tokio::test]
    async fn a_slow_job_times_out_and_a_panicking_one_is_an_error() {
        let queue = Queue::new(&limits(1, 0, 50));
        let slow = queue.run(|| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        });
        assert_eq!(slow.await.unwrap_err().code, "timeout");
        let panicked = Queue::new(&limits(1, 0, 5_000)).run(|| -> Result<(), ApiError> { panic!("boom") }).await.unwrap_err();
        assert_eq!((panicked.status.as_u16(), panicked.code), (500, "internal"));
    }
}
