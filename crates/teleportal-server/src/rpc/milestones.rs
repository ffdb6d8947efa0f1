//! The milestone protocol (spec §11.4) over any [`MilestoneStorage`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use teleportal_core::milestone::{CreatedBy, CreatorKind, MilestoneMeta as StoredMeta};
use teleportal_core::rpc::{
    MILESTONE_CREATE, MILESTONE_DELETE, MILESTONE_GET, MILESTONE_LIST, MILESTONE_RESTORE,
    MILESTONE_UPDATE_NAME, MilestoneCreateRequest, MilestoneCreator, MilestoneCreatorKind,
    MilestoneDeleteRequest, MilestoneDeleteResponse, MilestoneEntry, MilestoneGetRequest,
    MilestoneGetResponse, MilestoneListRequest, MilestoneListResponse, MilestoneMeta,
    MilestoneMetaResponse, MilestoneNotFound, MilestoneRestoreRequest, MilestoneRestoreResponse,
    MilestoneUpdateNameRequest,
};
use teleportal_storage::{DocumentId, Milestone, MilestoneStorage};

use super::{RpcError, RpcHandler, RpcRequest, RpcResponse};

/// The lifecycle state of a soft-deleted milestone.
const DELETED: &str = "deleted";

/// Answers the six milestone methods from a [`MilestoneStorage`].
///
/// Milestones belong to the request's document (its internal id, so rooms stay apart).
/// `milestoneCreate` stores the snapshot bytes as sent (a Yjs V2 update from unencrypted
/// clients, an envelope from E2EE ones) and names the milestone `Milestone <n>` when the
/// client gives no name; the creator is the client's user, or its client id. `milestoneDelete`
/// is a soft delete (`deletedAt`, lifecycle state `deleted`) that `milestoneRestore` undoes.
///
/// ```
/// use std::sync::Arc;
///
/// use teleportal_server::Server;
/// use teleportal_storage::{DocumentStore, MemoryStorage};
///
/// // One backend keeps documents and milestones.
/// let storage = Arc::new(MemoryStorage::new());
/// let server = Server::builder(DocumentStore::new(storage.clone()))
///     .milestones(storage) // registers `MilestoneRpc::new(storage)`
///     .build();
/// // Serve connections with `teleportal_server::serve`, or mount `teleportal-axum`.
/// # drop(server);
/// ```
#[derive(Debug, Clone)]
pub struct MilestoneRpc<M> {
    storage: Arc<M>,
}

impl<M: MilestoneStorage> MilestoneRpc<M> {
    /// Milestones kept in `storage`.
    pub fn new(storage: M) -> Self {
        MilestoneRpc {
            storage: Arc::new(storage),
        }
    }

    /// The store, for the server to close at shutdown.
    pub(crate) fn storage(&self) -> Arc<dyn MilestoneStorage> {
        Arc::clone(&self.storage) as Arc<dyn MilestoneStorage>
    }

    async fn list(&self, doc: &DocumentId, payload: &teleportal_core::Any) -> Answer {
        let request = MilestoneListRequest::from_any(payload)?;
        let stored = self
            .storage
            .milestones(doc, request.include_deleted)
            .await?;
        let milestones = stored.iter().map(entry).collect();
        Ok(RpcResponse::new(
            MilestoneListResponse { milestones }.to_any(),
        ))
    }

    async fn get(&self, doc: &DocumentId, payload: &teleportal_core::Any) -> Answer {
        let MilestoneGetRequest { milestone_id } = MilestoneGetRequest::from_any(payload)?;
        let milestone = self.find(doc, &milestone_id).await?;
        Ok(RpcResponse::new(
            MilestoneGetResponse {
                milestone_id,
                snapshot: milestone.snapshot,
            }
            .to_any(),
        ))
    }

    async fn create(&self, request: &RpcRequest, doc: &DocumentId) -> Answer {
        let MilestoneCreateRequest { name, snapshot } =
            MilestoneCreateRequest::from_any(&request.payload)?;
        let name = match name {
            Some(name) => name,
            None => {
                let count = self.storage.milestones(doc, true).await?.len();
                format!("Milestone {}", count + 1)
            }
        };
        let creator = CreatedBy {
            kind: CreatorKind::User,
            id: request
                .client
                .user
                .clone()
                .unwrap_or_else(|| request.client.client_id.clone()),
        };
        let meta = StoredMeta::new(doc.as_str(), new_id(), name, now_ms(), creator);
        self.storage
            .create_milestone(Milestone {
                meta: meta.clone(),
                snapshot,
            })
            .await?;
        Ok(RpcResponse::new(
            MilestoneMetaResponse {
                milestone: short_meta(&meta),
            }
            .to_any(),
        ))
    }

    async fn update_name(&self, doc: &DocumentId, payload: &teleportal_core::Any) -> Answer {
        let MilestoneUpdateNameRequest { milestone_id, name } =
            MilestoneUpdateNameRequest::from_any(payload)?;
        let mut meta = self.find(doc, &milestone_id).await?.meta;
        meta.name = name;
        self.storage.update_milestone(meta.clone()).await?;
        Ok(RpcResponse::new(
            MilestoneMetaResponse {
                milestone: short_meta(&meta),
            }
            .to_any(),
        ))
    }

    async fn delete(&self, request: &RpcRequest, doc: &DocumentId) -> Answer {
        let MilestoneDeleteRequest { milestone_id } =
            MilestoneDeleteRequest::from_any(&request.payload)?;
        let mut meta = self.find(doc, &milestone_id).await?.meta;
        if meta.deleted_at.is_none() {
            meta.deleted_at = Some(now_ms());
            meta.deleted_by = Some(
                request
                    .client
                    .user
                    .clone()
                    .unwrap_or_else(|| request.client.client_id.clone()),
            );
            meta.lifecycle_state = Some(DELETED.to_owned());
            self.storage.update_milestone(meta).await?;
        }
        Ok(RpcResponse::new(
            MilestoneDeleteResponse { milestone_id }.to_any(),
        ))
    }

    async fn restore(&self, doc: &DocumentId, payload: &teleportal_core::Any) -> Answer {
        let MilestoneRestoreRequest { milestone_id } = MilestoneRestoreRequest::from_any(payload)?;
        let mut meta = self.find(doc, &milestone_id).await?.meta;
        meta.deleted_at = None;
        meta.deleted_by = None;
        meta.lifecycle_state = None;
        self.storage.update_milestone(meta.clone()).await?;
        Ok(RpcResponse::new(
            MilestoneRestoreResponse {
                milestone: entry(&meta),
            }
            .to_any(),
        ))
    }

    /// The milestone, or the spec's 404 with `{milestoneId}`.
    async fn find(&self, doc: &DocumentId, id: &str) -> Result<Milestone, RpcError> {
        self.storage.milestone(doc, id).await?.ok_or_else(|| {
            let not_found = MilestoneNotFound {
                milestone_id: id.to_owned(),
            };
            RpcError::new(404, "Milestone not found").with_payload(not_found.to_any())
        })
    }
}

type Answer = Result<RpcResponse, RpcError>;

#[async_trait]
impl<M: MilestoneStorage> RpcHandler for MilestoneRpc<M> {
    fn methods(&self) -> &[&'static str] {
        &[
            MILESTONE_LIST,
            MILESTONE_GET,
            MILESTONE_CREATE,
            MILESTONE_UPDATE_NAME,
            MILESTONE_DELETE,
            MILESTONE_RESTORE,
        ]
    }

    async fn handle(&self, request: RpcRequest) -> Result<RpcResponse, RpcError> {
        let doc = DocumentId::new(&request.document_key);
        let payload = &request.payload;
        match request.method.as_str() {
            MILESTONE_LIST => self.list(&doc, payload).await,
            MILESTONE_GET => self.get(&doc, payload).await,
            MILESTONE_CREATE => self.create(&request, &doc).await,
            MILESTONE_UPDATE_NAME => self.update_name(&doc, payload).await,
            MILESTONE_DELETE => self.delete(&request, &doc).await,
            MILESTONE_RESTORE => self.restore(&doc, payload).await,
            other => Err(RpcError::new(501, format!("Unknown RPC method: {other}"))),
        }
    }
}

fn creator(created_by: &CreatedBy) -> MilestoneCreator {
    MilestoneCreator {
        kind: match created_by.kind {
            CreatorKind::User => MilestoneCreatorKind::User,
            CreatorKind::System => MilestoneCreatorKind::System,
        },
        id: created_by.id.clone(),
    }
}

/// `{id, name, documentId, createdAt, createdBy}`, as create and rename answer.
fn short_meta(meta: &StoredMeta) -> MilestoneMeta {
    MilestoneMeta {
        id: meta.id.clone(),
        name: meta.name.clone(),
        document_id: meta.document_id.clone(),
        created_at: meta.created_at,
        created_by: creator(&meta.created_by),
    }
}

/// The listing form, with the lifecycle keys.
fn entry(meta: &StoredMeta) -> MilestoneEntry {
    MilestoneEntry {
        id: meta.id.clone(),
        name: meta.name.clone(),
        document_id: meta.document_id.clone(),
        created_at: meta.created_at,
        deleted_at: meta.deleted_at,
        lifecycle_state: meta.lifecycle_state.clone(),
        expires_at: meta.expires_at,
        created_by: creator(&meta.created_by),
    }
}

/// Milliseconds since the Unix epoch, as JavaScript keeps time.
fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A random 128-bit id in hex: unique across nodes without coordination.
fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
