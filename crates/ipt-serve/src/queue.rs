//! [`Queue`]: restorations on blocking threads, a bounded number at once and waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

    /// Takes a place for a job, or refuses at once with [`ApiError::busy`] when every place is
    /// taken. A request takes its place before its upload is read, so uploads held in memory are
    /// bounded by the places too.
    pub fn admit(&self) -> Result<Admitted, ApiError> {
        let place = self.places.clone().try_acquire_owned().map_err(|_| ApiError::busy(self.retry_after()))?;
        Ok(Admitted { place, queue: self.clone() })
    }

    /// How many jobs hold a place now (their uploads being read, waiting or running) and how
    /// many of them are running.
    pub fn load(&self) -> Load {
        Load { admitted: self.capacity - self.places.available_permits(), running: self.worker_count - self.workers.available_permits() }
    }

    /// Seconds until a place is likely free when all are taken: every admitted job, shared by
    /// the workers, at the last job's duration (at least 1).
    fn retry_after(&self) -> u64 {
        let per_job_ms = self.last_job_ms.load(Ordering::Relaxed);
        (self.capacity as u64 * per_job_ms / self.worker_count as u64).div_ceil(1000).max(1)
    }
}

/// What a [`Queue`] holds at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Load {
    /// Jobs holding a place: uploads being read, jobs waiting for a worker and jobs running.
    pub admitted: usize,
    /// Jobs running on a worker.
    pub running: usize,
}

/// A place in the [`Queue`], held until the job it runs ends (or is dropped unused).
#[derive(Debug)]
pub struct Admitted {
    place: OwnedSemaphorePermit,
    queue: Queue,
}

impl Admitted {
    /// Runs `job` on a blocking thread once a worker is free: [`ApiError::timed_out`] after the
    /// queue's timeout (a job already running finishes on its own and keeps its place until
    /// then, so the number of jobs in memory stays bounded); a job that panics is an
    /// [`ApiError::internal`].
    pub async fn run<T: Send + 'static>(self, job: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
        let Self { place, queue } = self;
        let (workers, last_job_ms) = (queue.workers.clone(), queue.last_job_ms.clone());
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
        match tokio::time::timeout(queue.timeout, work).await {
            Err(_) => Err(ApiError::timed_out(queue.timeout)),
            Ok(Err(panic)) => Err(ApiError::internal(format!("the restoration failed: {panic}"))),
            Ok(Ok(result)) => result,
        }
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
            async move { first.admit().unwrap().run(blocked(gate)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting = tokio::spawn(async move { second.admit().unwrap().run(|| Ok(true)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(queue.load(), Load { admitted: 2, running: 1 });
        let refused = queue.admit().unwrap_err();
        assert_eq!((refused.status.as_u16(), refused.code), (503, "busy"));
        assert!(refused.retry_after.is_some_and(|seconds| seconds >= 1));
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(true));
        assert_eq!(waiting.await.unwrap(), Ok(true));
        assert_eq!(queue.admit().unwrap().run(|| Ok(7)).await, Ok(7), "places are given back");
        assert_eq!(queue.load(), Load { admitted: 0, running: 0 });
    }

    #[tokio::test]
    async fn a_place_taken_and_never_used_is_given_back() {
        let queue = Queue::new(&limits(1, 0, 1_000));
        let place = queue.admit().unwrap();
        assert_eq!(queue.admit().unwrap_err().code, "busy", "one place, taken");
        drop(place);
        assert_eq!(queue.admit().unwrap().run(|| Ok(1)).await, Ok(1));
    }

    #[tokio::test]
    async fn a_slow_job_times_out_and_a_panicking_one_is_an_error() {
        let queue = Queue::new(&limits(1, 0, 50));
        let slow = queue.admit().unwrap().run(|| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        });
        assert_eq!(slow.await.unwrap_err().code, "timeout");
        let panicked =
            Queue::new(&limits(1, 0, 5_000)).admit().unwrap().run(|| -> Result<(), ApiError> { panic!("boom") }).await.unwrap_err();
        assert_eq!((panicked.status.as_u16(), panicked.code), (500, "internal"));
    }
}
