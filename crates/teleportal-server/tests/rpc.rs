//! RPC dispatch (spec §11.3) and the milestone protocol (§11.4) over real storage.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use common::*;
use teleportal_core::rpc::{
    MILESTONE_CREATE, MILESTONE_DELETE, MILESTONE_GET, MILESTONE_LIST, MILESTONE_RESTORE,
    MILESTONE_UPDATE_NAME, MilestoneCreateRequest, MilestoneDeleteRequest, MilestoneGetRequest,
    MilestoneGetResponse, MilestoneListRequest, MilestoneListResponse, MilestoneMetaResponse,
    MilestoneNotFound, MilestoneRestoreRequest, MilestoneRestoreResponse,
    MilestoneUpdateNameRequest,
};
use teleportal_core::{AckMessage, Any, Body, Message, RpcKind, RpcMessage, RpcPayload};
use teleportal_server::rpc::{MilestoneRpc, RpcError, RpcHandler, RpcRequest, RpcResponse};
use teleportal_server::{Access, ClientContext, PermissionChecker, Server};
use teleportal_storage::{DocumentId, DocumentStore, MemoryStorage, MilestoneStorage};

/// `reader` may only read; everyone else may do everything.
struct ReaderReadsOnly;

#[async_trait]
impl PermissionChecker for ReaderReadsOnly {
    async fn check(&self, client: &ClientContext, _document: &str, access: Access) -> bool {
        client.client_id != "reader" || access == Access::Read
    }
}

fn server_with_milestones() -> (Server, Arc<MemoryStorage>) {
    let storage = Arc::new(MemoryStorage::new());
    let server = Server::builder(DocumentStore::new(storage.clone()))
        .rpc(MilestoneRpc::new(storage.clone()))
        .permissions(ReaderReadsOnly)
        .build();
    (server, storage)
}

fn request(document: &str, method: &str, payload: Any) -> Message {
    Message::rpc(
        document,
        RpcMessage {
            method: method.into(),
            kind: RpcKind::Request,
            payload: RpcPayload::Success(payload),
        },
    )
}

/// Sends a request; returns its ack and the one response before it, checking correlation.
async fn call(
    client: &mut Client,
    document: &str,
    method: &str,
    payload: Any,
) -> (AckMessage, RpcPayload) {
    let id = client.send(request(document, method, payload));
    let (ack, before) = client.until_ack(id).await;
    let [response] = before.as_slice() else {
        panic!("expected one response to {method}, got {before:?}");
    };
    assert_eq!(response.document, document);
    let Body::Rpc(rpc) = &response.body else {
        panic!("expected an rpc response, got {response:?}");
    };
    assert_eq!(rpc.method, method);
    assert_eq!(
        rpc.kind,
        RpcKind::Response {
            original_request_id: id.to_string()
        }
    );
    (ack, rpc.payload.clone())
}

/// A successful call's payload.
async fn ok(client: &mut Client, document: &str, method: &str, payload: Any) -> Any {
    match call(client, document, method, payload).await {
        (ack, RpcPayload::Success(any)) if ack.is_positive() => any,
        other => panic!("{method} failed: {other:?}"),
    }
}

async fn list(client: &mut Client, include_deleted: bool) -> MilestoneListResponse {
    let request = MilestoneListRequest {
        snapshot_ids: vec![],
        include_deleted,
    };
    let any = ok(client, "notes", MILESTONE_LIST, request.to_any()).await;
    MilestoneListResponse::from_any(&any).unwrap()
}

#[tokio::test]
async fn milestone_lifecycle_create_list_get_rename_delete_restore() {
    let (server, _) = server_with_milestones();
    let mut alice = Client::connect(&server, "alice");
    let snapshot = Replica::new(1).type_text("draft one");

    let created = ok(
        &mut alice,
        "notes",
        MILESTONE_CREATE,
        MilestoneCreateRequest {
            name: Some("Draft 1".into()),
            snapshot: snapshot.clone(),
        }
        .to_any(),
    )
    .await;
    let meta = MilestoneMetaResponse::from_any(&created).unwrap().milestone;
    assert_eq!(meta.name, "Draft 1");
    assert_eq!(meta.document_id, "notes");
    assert_eq!(meta.created_by.id, "alice");
    assert!(meta.created_at > 1.6e12, "createdAt is ms since the epoch");

    let listed = list(&mut alice, false).await.milestones;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].meta(), meta);
    assert_eq!(listed[0].deleted_at, None);

    let got = ok(
        &mut alice,
        "notes",
        MILESTONE_GET,
        MilestoneGetRequest {
            milestone_id: meta.id.clone(),
        }
        .to_any(),
    )
    .await;
    assert_eq!(
        MilestoneGetResponse::from_any(&got).unwrap(),
        MilestoneGetResponse {
            milestone_id: meta.id.clone(),
            snapshot
        }
    );

    let renamed = ok(
        &mut alice,
        "notes",
        MILESTONE_UPDATE_NAME,
        MilestoneUpdateNameRequest {
            milestone_id: meta.id.clone(),
            name: "Final".into(),
        }
        .to_any(),
    )
    .await;
    assert_eq!(
        MilestoneMetaResponse::from_any(&renamed)
            .unwrap()
            .milestone
            .name,
        "Final"
    );

    ok(
        &mut alice,
        "notes",
        MILESTONE_DELETE,
        MilestoneDeleteRequest {
            milestone_id: meta.id.clone(),
        }
        .to_any(),
    )
    .await;
    assert!(list(&mut alice, false).await.milestones.is_empty());
    let deleted = list(&mut alice, true).await.milestones;
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].deleted_at.is_some());
    assert_eq!(deleted[0].lifecycle_state.as_deref(), Some("deleted"));

    let restored = ok(
        &mut alice,
        "notes",
        MILESTONE_RESTORE,
        MilestoneRestoreRequest {
            milestone_id: meta.id.clone(),
        }
        .to_any(),
    )
    .await;
    let restored = MilestoneRestoreResponse::from_any(&restored)
        .unwrap()
        .milestone;
    assert_eq!(
        (restored.name.as_str(), restored.deleted_at),
        ("Final", None)
    );
    assert_eq!(list(&mut alice, false).await.milestones.len(), 1);
}

#[tokio::test]
async fn unnamed_milestones_are_numbered() {
    let (server, _) = server_with_milestones();
    let mut alice = Client::connect(&server, "alice");
    for expected in ["Milestone 1", "Milestone 2"] {
        let created = ok(
            &mut alice,
            "notes",
            MILESTONE_CREATE,
            MilestoneCreateRequest {
                name: None,
                snapshot: Bytes::from_static(&[0, 0]),
            }
            .to_any(),
        )
        .await;
        let meta = MilestoneMetaResponse::from_any(&created).unwrap().milestone;
        assert_eq!(meta.name, expected);
    }
}

#[tokio::test]
async fn unknown_milestone_is_404_with_its_id() {
    let (server, _) = server_with_milestones();
    let mut alice = Client::connect(&server, "alice");
    let (ack, payload) = call(
        &mut alice,
        "notes",
        MILESTONE_GET,
        MilestoneGetRequest {
            milestone_id: "nope".into(),
        }
        .to_any(),
    )
    .await;
    assert_eq!(ack.error.as_deref(), Some("Milestone not found"));
    assert_eq!(
        payload,
        MilestoneNotFound {
            milestone_id: "nope".into()
        }
        .to_error()
    );
}

#[tokio::test]
async fn malformed_request_is_400_and_changes_nothing() {
    let (server, storage) = server_with_milestones();
    let mut alice = Client::connect(&server, "alice");
    // `snapshot` missing.
    let payload = Any::object([("method", Any::from(MILESTONE_CREATE))]);
    let (ack, response) = call(&mut alice, "notes", MILESTONE_CREATE, payload).await;
    let RpcPayload::Error {
        status_code,
        details,
        ..
    } = response
    else {
        panic!("expected an error, got {response:?}");
    };
    assert_eq!(status_code, 400);
    assert!(details.contains("snapshot"), "{details}");
    assert_eq!(ack.error, Some(details));
    let stored = storage
        .milestones(&DocumentId::new("notes"), true)
        .await
        .unwrap();
    assert!(stored.is_empty());
}

#[tokio::test]
async fn read_only_client_may_list_but_not_create() {
    let (server, storage) = server_with_milestones();
    let mut reader = Client::connect(&server, "reader");
    let (ack, response) = call(
        &mut reader,
        "notes",
        MILESTONE_CREATE,
        MilestoneCreateRequest {
            name: Some("sneaky".into()),
            snapshot: Bytes::from_static(&[0, 0]),
        }
        .to_any(),
    )
    .await;
    assert_eq!(ack.error.as_deref(), Some("Permission denied"));
    assert_eq!(
        response,
        RpcError::new(403, "Permission denied").to_payload()
    );
    let stored = storage
        .milestones(&DocumentId::new("notes"), true)
        .await
        .unwrap();
    assert!(stored.is_empty(), "a denied create stored {stored:?}");
    assert!(list(&mut reader, true).await.milestones.is_empty());
}

#[tokio::test]
async fn rooms_do_not_share_milestones() {
    let (server, _) = server_with_milestones();
    let mut in_a =
        Client::connect_with(&server, ClientContext::new("alice").with_namespace("1:a/"));
    let mut in_b = Client::connect_with(&server, ClientContext::new("bob").with_namespace("1:b/"));
    let created = ok(
        &mut in_a,
        "notes",
        MILESTONE_CREATE,
        MilestoneCreateRequest {
            name: Some("room a".into()),
            snapshot: Bytes::from_static(&[0, 0]),
        }
        .to_any(),
    )
    .await;
    let meta = MilestoneMetaResponse::from_any(&created).unwrap().milestone;
    assert_eq!(meta.document_id, "1:a/notes");
    assert_eq!(list(&mut in_a, false).await.milestones.len(), 1);
    assert!(list(&mut in_b, false).await.milestones.is_empty());
    let (ack, _) = call(
        &mut in_b,
        "notes",
        MILESTONE_GET,
        MilestoneGetRequest {
            milestone_id: meta.id,
        }
        .to_any(),
    )
    .await;
    assert_eq!(ack.error.as_deref(), Some("Milestone not found"));
}

/// Streams two parts, then answers; fails on request.
struct Counter;

#[async_trait]
impl RpcHandler for Counter {
    fn methods(&self) -> &[&'static str] {
        &["count"]
    }
    async fn handle(&self, request: RpcRequest) -> Result<RpcResponse, RpcError> {
        if request
            .payload
            .as_object()
            .is_some_and(|o| o.iter().any(|(k, _)| k == "fail"))
        {
            return Err(RpcError::internal("counter broke"));
        }
        Ok(RpcResponse::new(Any::from("done")).with_parts([Any::from(1.0), Any::from(2.0)]))
    }
}

#[tokio::test]
async fn handler_parts_stream_before_the_response_and_failures_are_500() {
    let server = memory_builder().rpc(Counter).build();
    let mut client = Client::connect(&server, "alice");
    let id = client.send(request(
        "notes",
        "count",
        Any::object([("method", Any::from("count"))]),
    ));
    let (ack, before) = client.until_ack(id).await;
    assert!(ack.is_positive());
    let kinds: Vec<_> = before
        .iter()
        .map(|m| match &m.body {
            Body::Rpc(rpc) => (rpc.kind.clone(), rpc.payload.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let stream = RpcKind::Stream {
        original_request_id: id.to_string(),
    };
    let response = RpcKind::Response {
        original_request_id: id.to_string(),
    };
    assert_eq!(
        kinds,
        vec![
            (stream.clone(), RpcPayload::Success(Any::from(1.0))),
            (stream, RpcPayload::Success(Any::from(2.0))),
            (response, RpcPayload::Success(Any::from("done"))),
        ]
    );

    let failing = Any::object([("method", Any::from("count")), ("fail", Any::from(true))]);
    let (ack, payload) = call(&mut client, "notes", "count", failing).await;
    assert_eq!(ack.error.as_deref(), Some("counter broke"));
    assert_eq!(payload, RpcError::internal("counter broke").to_payload());
}

#[tokio::test]
async fn client_responses_and_error_requests_are_acked_and_ignored() {
    let server = memory_builder().rpc(Counter).build();
    let mut client = Client::connect(&server, "alice");
    let response = Message::rpc(
        "notes",
        RpcMessage {
            method: "count".into(),
            kind: RpcKind::Response {
                original_request_id: "0123456789abcdef".into(),
            },
            payload: RpcPayload::Success(Any::Null),
        },
    );
    let id = client.send(response);
    let (ack, before) = client.until_ack(id).await;
    assert!(ack.is_positive() && before.is_empty(), "{ack:?} {before:?}");

    let error_request = Message::rpc(
        "notes",
        RpcMessage {
            method: "count".into(),
            kind: RpcKind::Request,
            payload: RpcError::internal("x").to_payload(),
        },
    );
    let id = client.send(error_request);
    let (ack, before) = client.until_ack(id).await;
    assert!(ack.is_positive() && before.is_empty(), "{ack:?} {before:?}");
}
