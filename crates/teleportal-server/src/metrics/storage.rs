//! [`MeteredStorage`]: the document storage's operations counted and timed, and the size
//! warnings and limit refusals its appends meet.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use teleportal_storage::{
    AppendOptions, AppendReceipt, DelegateStorage, DocumentId, DocumentMetadata, DocumentStorage,
    Seq, StorageError, StoredDocument, async_trait,
};

/// The reference's buckets, 1 ms to 5 s.
const BUCKETS: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

const OPERATIONS: [&str; 5] = ["append", "load", "metadata", "compact", "delete"];
/// `rejected`: the append would have taken the document past its size limit.
const RESULTS: [&str; 3] = ["ok", "error", "rejected"];

/// The storage metrics, shared by the decorator and the registry.
#[derive(Debug, Clone)]
pub(crate) struct StorageMetrics {
    operations: Family<OperationLabels, Counter>,
    durations: Family<OperationLabel, Histogram, fn() -> Histogram>,
    size_warnings: Counter,
    size_limit_exceeded: Counter,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl StorageMetrics {
    /// New metrics in `registry` (already under the `teleportal` prefix).
    pub(super) fn registered(registry: &mut Registry) -> Self {
        let metrics = StorageMetrics {
            operations: Family::default(),
            durations: Family::new_with_constructor(histogram),
            size_warnings: Counter::default(),
            size_limit_exceeded: Counter::default(),
        };
        for operation in OPERATIONS {
            let _ = metrics
                .durations
                .get_or_create(&OperationLabel { operation });
            for result in RESULTS {
                let _ = metrics
                    .operations
                    .get_or_create(&OperationLabels { operation, result });
            }
        }
        registry.register(
            "storage_operations",
            "Document storage operations, by operation and result",
            metrics.operations.clone(),
        );
        registry.register(
            "storage_operation_duration_seconds",
            "How long document storage operations took (an append until it was durable)",
            metrics.durations.clone(),
        );
        registry.register(
            "document_size_warning",
            "Appends that took a document across its size warning",
            metrics.size_warnings.clone(),
        );
        registry.register(
            "document_size_limit_exceeded",
            "Appends refused because they would take a document past its size limit",
            metrics.size_limit_exceeded.clone(),
        );
        metrics
    }

    fn record<T>(
        &self,
        operation: &'static str,
        started: Instant,
        result: &Result<T, StorageError>,
    ) {
        let result = match result {
            Ok(_) => "ok",
            Err(StorageError::DocumentTooLarge { .. }) => {
                self.size_limit_exceeded.inc();
                "rejected"
            }
            Err(_) => "error",
        };
        self.operations
            .get_or_create(&OperationLabels { operation, result })
            .inc();
        self.durations
            .get_or_create(&OperationLabel { operation })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// A document storage whose operations are counted and timed.
pub(crate) struct MeteredStorage {
    inner: Arc<dyn DocumentStorage>,
    metrics: StorageMetrics,
    /// The store's size warning, to count appends that cross it.
    warn_at: Option<u64>,
}

impl MeteredStorage {
    pub(crate) fn new(
        inner: Arc<dyn DocumentStorage>,
        metrics: StorageMetrics,
        warn_at: Option<u64>,
    ) -> Self {
        MeteredStorage {
            inner,
            metrics,
            warn_at,
        }
    }
}

#[async_trait]
impl DelegateStorage for MeteredStorage {
    type Inner = dyn DocumentStorage;

    fn inner(&self) -> &Self::Inner {
        &*self.inner
    }

    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        let started = Instant::now();
        let len = u64::try_from(update.len()).unwrap_or(u64::MAX);
        let result = self.inner.append(doc, update, options).await;
        self.metrics.record("append", started, &result);
        if let (Ok(receipt), Some(warn_at)) = (&result, self.warn_at)
            && receipt.size >= warn_at
            && receipt.size.saturating_sub(len) < warn_at
        {
            self.metrics.size_warnings.inc();
        }
        result
    }

    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        let started = Instant::now();
        let result = self.inner.load(doc).await;
        self.metrics.record("load", started, &result);
        result
    }

    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError> {
        let started = Instant::now();
        let result = self.inner.metadata(doc).await;
        self.metrics.record("metadata", started, &result);
        result
    }

    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        let started = Instant::now();
        let result = self.inner.compact(doc, upto, snapshot).await;
        self.metrics.record("compact", started, &result);
        result
    }

    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        let started = Instant::now();
        let result = self.inner.delete(doc).await;
        self.metrics.record("delete", started, &result);
        result
    }
}
