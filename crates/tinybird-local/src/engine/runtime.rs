//! Where queries run: a runtime of their own, apart from the one serving HTTP, so `/v0/health` and ingestion answer
//! while queries compute. Its threads have stacks deep enough for the deepest query [`compat::parse`] accepts
//! (see [`compat::MAX_QUERY_DEPTH`]); each query has a deadline, is cancelled when its caller goes away (a client
//! that disconnects drops the request's future, and with it the query), and waits for one of a bounded number of
//! slots before it starts.
//!
//! [`compat::parse`]: super::compat::parse
//! [`compat::MAX_QUERY_DEPTH`]: super::compat::MAX_QUERY_DEPTH

use super::EngineError;
use super::guard::QueryGuard;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Stack of each query thread. Memory is only committed as it is used; the parser's depth limit keeps every
/// recursive pass (sqlparser's visitors, printing and dropping trees, DataFusion's planner) well inside it.
pub const QUERY_THREAD_STACK: usize = 256 * 1024 * 1024;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        // More threads than cores: a query busy in a step that does not yield (planning a large tree) holds one
        // thread, and the others keep serving small queries.
        let threads = std::thread::available_parallelism().map(|n| n.get() * 2).unwrap_or(4).clamp(8, 32);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("tinybird-local-query")
            .thread_stack_size(QUERY_THREAD_STACK)
            .enable_all()
            .build()
            .expect("the query runtime starts (threads can be spawned)")
    })
}

/// How long a query may take and how many run at once.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// Time from the request to the last row, waiting for a slot included.
    pub timeout: Duration,
    slots: Arc<Semaphore>,
    concurrency: usize,
}

impl QueryLimits {
    /// Limits with a timeout and at most `concurrency` queries running at once (others wait, within their timeout).
    pub fn new(timeout: Duration, concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        QueryLimits { timeout, slots: Arc::new(Semaphore::new(concurrency)), concurrency }
    }

    /// How many queries may run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(std::num::NonZero::get).unwrap_or(2);
        QueryLimits::new(Duration::from_secs(10), (cores * 2).max(4))
    }
}

tokio::task_local! {
    /// The guard of the query running in this task.
    static GUARD: Arc<QueryGuard>;
}

/// The guard of the query running in the current task, if it runs under [`run`].
pub fn current_guard() -> Option<Arc<QueryGuard>> {
    GUARD.try_with(Arc::clone).ok()
}

/// Cancels the query and aborts its task when dropped: a request whose client went away, or whose deadline passed,
/// stops its query (the guard stops operators busy inside one poll; the abort drops the task at its next yield).
struct AbortOnDrop<T>(JoinHandle<T>, Arc<QueryGuard>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.1.cancel();
        self.0.abort();
    }
}

/// Runs `work` on the query runtime under `limits`. A panic inside it becomes an error, never a crash.
pub async fn run<T, E, F>(limits: &QueryLimits, work: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<EngineError> + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let timed_out = || E::from(EngineError::Timeout(limits.timeout));
    let permit = tokio::time::timeout_at(deadline, limits.slots.clone().acquire_owned())
        .await
        .map_err(|_| timed_out())?
        .map_err(|_| E::from(EngineError::Execution("the query runtime is shutting down".into())))?;
    let guard = Arc::new(QueryGuard::new(Some(deadline.into_std())));
    let scoped = GUARD.scope(guard.clone(), async move {
        let _permit = permit;
        work.await
    });
    let mut task = AbortOnDrop(runtime().spawn(scoped), guard);
    match tokio::time::timeout_at(deadline, &mut task.0).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) if e.is_panic() => {
            let what = e.into_panic();
            let text = what
                .downcast_ref::<&str>()
                .map(std::string::ToString::to_string)
                .or_else(|| what.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(E::from(EngineError::Execution(format!("the query failed inside the engine: {text}"))))
        }
        Ok(Err(_)) => Err(E::from(EngineError::Execution("the query was cancelled".into()))),
        Err(_) => Err(timed_out()),
    }
}
