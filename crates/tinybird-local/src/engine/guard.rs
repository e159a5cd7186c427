//! Keeps a running query within its deadline and fair to others. A physical optimizer rule, run after every other
//! one, wraps each operator of a plan in [`GuardExec`], whose stream checks the query's [`QueryGuard`] on every batch:
//! once the deadline passes or the caller gives up, the next batch any operator produces is an error, so even a
//! join in a tight loop inside one poll stops at once. Each batch also spends tokio's cooperative budget, so a heavy
//! query yields its thread regularly and small queries on the same threads keep answering.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::error::DataFusionError;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

/// One query's deadline and cancellation flag, shared by its operators (through the session's config extensions).
#[derive(Debug)]
pub struct QueryGuard {
    deadline: Option<Instant>,
    cancelled: AtomicBool,
}

impl QueryGuard {
    /// A guard that stops the query at `deadline` (never, for None) or when [`QueryGuard::cancel`] is called.
    pub fn new(deadline: Option<Instant>) -> Self {
        QueryGuard { deadline, cancelled: AtomicBool::new(false) }
    }

    /// Stops the query at its next batch.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> Option<&'static str> {
        if self.cancelled.load(Ordering::Relaxed) {
            Some("the query was cancelled (its deadline passed or its client went away)")
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some("the query ran past its deadline")
        } else {
            None
        }
    }
}

/// Wraps every operator of a plan in [`GuardExec`].
#[derive(Debug, Default)]
pub struct GuardRule;

impl PhysicalOptimizerRule for GuardRule {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| Ok(Transformed::yes(Arc::new(GuardExec { input: node }) as Arc<dyn ExecutionPlan>)))
            .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "tinybird_local_query_guard"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// An operator's output, checked against the query's guard batch by batch.
#[derive(Debug)]
pub struct GuardExec {
    input: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for GuardExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GuardExec")
    }
}

impl ExecutionPlan for GuardExec {
    fn name(&self) -> &str {
        "GuardExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: datafusion::physical_plan::execution_plan::ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.len() {
            1 => Ok(Arc::new(GuardExec { input: children.swap_remove(0) })),
            n => Err(DataFusionError::Internal(format!("GuardExec takes one child, got {n}"))),
        }
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            datafusion::physical_plan::execution_plan::ReplaceChildrenOptions::new(
                datafusion::physical_plan::execution_plan::ChildrenPropertiesMode::Recompute,
            ),
        )
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let guard = context.session_config().get_extension::<QueryGuard>();
        let inner = self.input.execute(partition, context)?;
        Ok(Box::pin(GuardStream { inner, guard, done: false }))
    }
}

struct GuardStream {
    inner: SendableRecordBatchStream,
    guard: Option<Arc<QueryGuard>>,
    done: bool,
}

impl Stream for GuardStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(why) = self.guard.as_ref().and_then(|g| g.stopped()) {
            self.done = true;
            return Poll::Ready(Some(Err(DataFusionError::ResourcesExhausted(why.to_string()))));
        }
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        let next = self.inner.as_mut().poll_next(cx);
        if next.is_ready() {
            coop.made_progress();
        }
        next
    }
}

impl RecordBatchStream for GuardStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

/// Fails planning once the current query's guard has stopped it. Placed between every two optimizer rules, so a
/// query whose optimization runs past its deadline stops at the next rule instead of holding its thread.
#[derive(Debug, Default)]
pub struct DeadlineCheck;

fn check_current() -> Result<()> {
    match super::runtime::current_guard().and_then(|g| g.stopped()) {
        Some(why) => Err(DataFusionError::ResourcesExhausted(why.to_string())),
        None => Ok(()),
    }
}

impl datafusion::optimizer::OptimizerRule for DeadlineCheck {
    fn name(&self) -> &str {
        "tinybird_local_deadline_check"
    }

    fn rewrite(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _: &dyn datafusion::optimizer::OptimizerConfig,
    ) -> Result<Transformed<datafusion::logical_expr::LogicalPlan>> {
        check_current()?;
        Ok(Transformed::no(plan))
    }
}

impl PhysicalOptimizerRule for DeadlineCheck {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        check_current()?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "tinybird_local_deadline_check"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A logical optimizer rule.
pub type LogicalRule = Arc<dyn datafusion::optimizer::OptimizerRule + Send + Sync>;
/// A physical optimizer rule.
pub type PhysicalRule = Arc<dyn PhysicalOptimizerRule + Send + Sync>;

/// DataFusion's default logical and physical optimizer rules with a [`DeadlineCheck`] after each, and the
/// [`GuardRule`] last.
pub fn guarded_rules() -> (Vec<LogicalRule>, Vec<PhysicalRule>) {
    let check = Arc::new(DeadlineCheck);
    let mut logical: Vec<LogicalRule> = Vec::new();
    for rule in datafusion::optimizer::Optimizer::new().rules {
        logical.push(rule);
        logical.push(check.clone());
    }
    let mut physical: Vec<PhysicalRule> = Vec::new();
    for rule in datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules {
        physical.push(rule);
        physical.push(check.clone());
    }
    physical.push(Arc::new(GuardRule));
    (logical, physical)
}
