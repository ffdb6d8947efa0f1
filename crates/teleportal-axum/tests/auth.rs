//! `router_with_auth` through real WebSockets: every token rejection is refused before the
//! upgrade, and permissions from the token hold per message.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use teleportal_auth::{DocumentAccess, Permission, TokenClaims, TokenConfig};
use teleportal_core::{Body, ContentEnvelope, DocMessage, Frame, Message, Update};
use teleportal_server::Server;
use teleportal_storage::{DocumentId, DocumentStore, MemoryStorage};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use yrs::{Doc, Text, Transact};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SECRET: &str = "router-test-secret";
const RSA_PUBLIC: &str = include_str!("../../teleportal-auth/tests/keys/rsa-public.pem");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn config() -> TokenConfig {
    TokenConfig::new(SECRET)
}

fn claims(access: Option<Vec<DocumentAccess>>) -> TokenClaims {
    config().claims("alice", "", access, now())
}

fn token(access: Option<Vec<DocumentAccess>>) -> String {
    config().mint(&claims(access)).expect("mint")
}

async fn start() -> (SocketAddr, Server) {
    let server = Server::new(DocumentStore::new(MemoryStorage::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let app = teleportal_axum::router_with_auth(server.clone(), config());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, server)
}

/// The HTTP status of a refused handshake, or `None` if it upgraded.
async fn handshake_status(addr: SocketAddr, path: &str) -> Option<u16> {
    match connect_async(format!("ws://{addr}{path}")).await {
        Ok(_) => None,
        Err(WsError::Http(response)) => Some(response.status().as_u16()),
        Err(other) => panic!("handshake failed otherwise: {other}"),
    }
}

async fn connect(addr: SocketAddr, path: &str) -> Socket {
    connect_async(format!("ws://{addr}{path}"))
        .await
        .expect("websocket handshake")
        .0
}

async fn next_frame(socket: &mut Socket) -> Frame {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await.expect("socket open").expect("read") {
                WsMessage::Binary(bytes) => return Frame::decode(bytes).expect("a frame"),
                WsMessage::Close(close) => panic!("closed: {close:?}"),
                _ => {}
            }
        }
    })
    .await
    .expect("a message within 5 s")
}

fn b64(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

/// Replaces the first character of segment `index` with another base64url character.
fn tamper(token: &str, index: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let first = if parts[index].starts_with('A') {
        "B"
    } else {
        "A"
    };
    parts[index].replace_range(0..1, first);
    parts.join(".")
}

/// Every way a token can fail, each refused with 401 on both routes.
#[tokio::test]
async fn every_token_rejection_is_refused_before_the_upgrade() {
    let (addr, _server) = start().await;
    let good = token(None);
    let payload = serde_json::to_string(&claims(None)).expect("claims serialize");
    let mut expired = claims(None);
    expired.exp = now() - 10;
    let not_yet_valid = {
        // `nbf` is not a field of TokenClaims: sign a raw payload with it.
        let mut value = serde_json::to_value(claims(None)).expect("claims serialize");
        value["nbf"] = (now() + 3600).into();
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        jsonwebtoken::encode(
            &header,
            &value,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("sign")
    };
    let mut forged_payload = claims(None);
    forged_payload.user_id = "mallory".into();
    let forged_payload = config().mint(&forged_payload).expect("mint");
    let tampered_payload = {
        let mut parts: Vec<&str> = good.split('.').collect();
        parts[1] = forged_payload.split('.').nth(1).expect("payload");
        parts.join(".")
    };
    let cases = [
        ("missing", String::new()),
        (
            "alg none",
            format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&payload)),
        ),
        ("expired", config().mint(&expired).expect("mint")),
        ("not yet valid", not_yet_valid),
        (
            "wrong audience",
            config()
                .mint(
                    &config()
                        .with_audience("other")
                        .claims("alice", "", None, now()),
                )
                .expect("mint"),
        ),
        (
            "wrong issuer",
            config()
                .mint(
                    &config()
                        .with_issuer("other")
                        .claims("alice", "", None, now()),
                )
                .expect("mint"),
        ),
        (
            "wrong key",
            TokenConfig::new("another-secret")
                .mint(&claims(None))
                .expect("mint"),
        ),
        ("tampered payload", tampered_payload),
        ("tampered signature", tamper(&good, 2)),
        ("malformed", "not-a-jwt".to_owned()),
        (
            // The router pins HS256: HS512 over the right secret is still refused.
            "algorithm not allowed",
            {
                let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512);
                jsonwebtoken::encode(
                    &header,
                    &claims(None),
                    &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
                )
                .expect("sign")
            },
        ),
        (
            // What an attacker forges for algorithm confusion; here simply a wrong key.
            "public key as HMAC secret",
            TokenConfig::new(RSA_PUBLIC)
                .mint(&claims(None))
                .expect("mint"),
        ),
    ];
    for (why, token) in cases {
        for route in ["/", "/notes"] {
            let path = if token.is_empty() {
                route.to_owned()
            } else {
                format!("{route}?token={token}")
            };
            assert_eq!(
                handshake_status(addr, &path).await,
                Some(401),
                "{why} on {route}"
            );
        }
    }
    assert_eq!(
        handshake_status(addr, &format!("/?token={good}")).await,
        None
    );
}

#[tokio::test]
async fn y_websocket_token_without_the_document_is_forbidden() {
    let (addr, _server) = start().await;
    let only_a = token(Some(vec![DocumentAccess::new("a/*", &[Permission::Read])]));
    assert_eq!(
        handshake_status(addr, &format!("/b/notes?token={only_a}")).await,
        Some(403)
    );
    assert_eq!(
        handshake_status(addr, &format!("/a/notes?token={only_a}")).await,
        None
    );
}

fn update_message(document: &str) -> Message {
    let doc = Doc::new();
    let update = {
        let text = doc.get_or_insert_text("content");
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "hello");
        txn.encode_update_v2()
    };
    Message::doc(
        document,
        DocMessage::Update(Update {
            version: 2,
            data: ContentEnvelope::plain(Bytes::from(update)).to_bytes(),
        }),
    )
}

#[tokio::test]
async fn read_only_token_write_is_denied_and_storage_unchanged() {
    let (addr, server) = start().await;
    let reader = token(Some(vec![DocumentAccess::new("*", &[Permission::Read])]));
    let before = server
        .store()
        .read(&DocumentId::new("notes"))
        .await
        .expect("read");
    let mut socket = connect(addr, &format!("/?token={reader}")).await;
    socket
        .send(WsMessage::Binary(update_message("notes").to_bytes()))
        .await
        .expect("send update");
    let Frame::Message(answer) = next_frame(&mut socket).await else {
        panic!("expected a message");
    };
    assert!(
        matches!(
            answer.body,
            Body::Doc(DocMessage::Auth { allowed: false, .. })
        ),
        "{answer:?}"
    );
    let after = server
        .store()
        .read(&DocumentId::new("notes"))
        .await
        .expect("read");
    assert_eq!(before.update, after.update);
}

#[tokio::test]
async fn writer_token_write_is_stored() {
    let (addr, server) = start().await;
    let writer = token(Some(vec![DocumentAccess::new(
        "notes",
        &[Permission::Write],
    )]));
    let before = server
        .store()
        .read(&DocumentId::new("notes"))
        .await
        .expect("read");
    let mut socket = connect(addr, &format!("/?token={writer}")).await;
    socket
        .send(WsMessage::Binary(update_message("notes").to_bytes()))
        .await
        .expect("send update");
    let Frame::Message(answer) = next_frame(&mut socket).await else {
        panic!("expected a message");
    };
    assert!(matches!(answer.body, Body::Ack(_)), "{answer:?}");
    let after = server
        .store()
        .read(&DocumentId::new("notes"))
        .await
        .expect("read");
    assert_ne!(before.update, after.update);
}

/// The reference's `room/doc` join would make room `a` + `b/c` and room `a/b` + `c` one
/// document; here each room has its own.
#[tokio::test]
async fn rooms_never_share_a_document() {
    let (addr, server) = start().await;
    let in_room = |room: &str| {
        config()
            .mint(&config().claims("alice", room, None, now()))
            .expect("mint")
    };
    let mut writer = connect(addr, &format!("/?token={}", in_room("a"))).await;
    writer
        .send(WsMessage::Binary(update_message("b/c").to_bytes()))
        .await
        .expect("send update");
    let Frame::Message(answer) = next_frame(&mut writer).await else {
        panic!("expected a message");
    };
    assert!(matches!(answer.body, Body::Ack(ack) if ack.is_positive()));

    let empty = server
        .store()
        .read(&DocumentId::new("never-written"))
        .await
        .expect("read");
    let stored = |key: &'static str| {
        let server = server.clone();
        async move {
            server
                .store()
                .read(&DocumentId::new(key))
                .await
                .expect("read")
                .update
        }
    };
    assert_ne!(stored("1:a/b/c").await, empty.update, "room a's document");
    assert_eq!(stored("3:a/b/c").await, empty.update, "room a/b's document");
    assert_eq!(stored("a/b/c").await, empty.update, "the reference's id");
    assert_eq!(stored("b/c").await, empty.update, "the plain name");
}

fn sync_step_1(document: &str) -> Message {
    Message::doc(
        document,
        DocMessage::SyncStep1 {
            state_vector: Bytes::from_static(&[0]),
        },
    )
}

/// Reads frames until an ack arrives; returns everything read before it.
async fn until_ack(socket: &mut Socket) -> Vec<Message> {
    let mut seen = Vec::new();
    loop {
        if let Frame::Message(message) = next_frame(socket).await {
            if matches!(message.body, Body::Ack(_)) {
                return seen;
            }
            seen.push(message);
        }
    }
}

/// A token whose patterns do not match a document gets nothing of it: its sync is refused and
/// it receives none of the document's updates, while a reader with access does.
#[tokio::test]
async fn unmatched_token_gets_nothing_of_the_document() {
    let (addr, _server) = start().await;
    let writer = token(Some(vec![DocumentAccess::new(
        "secret",
        &[Permission::Write],
    )]));
    let reader = token(Some(vec![DocumentAccess::new(
        "secret",
        &[Permission::Read],
    )]));
    let outsider = token(Some(vec![DocumentAccess::new(
        "public",
        &[Permission::Write],
    )]));
    let mut reader_socket = connect(addr, &format!("/?token={reader}")).await;
    let mut outsider_socket = connect(addr, &format!("/?token={outsider}")).await;
    let mut writer_socket = connect(addr, &format!("/?token={writer}")).await;

    reader_socket
        .send(WsMessage::Binary(sync_step_1("secret").to_bytes()))
        .await
        .expect("send");
    let synced = until_ack(&mut reader_socket).await;
    assert!(
        synced
            .iter()
            .any(|m| matches!(m.body, Body::Doc(DocMessage::SyncStep2(_)))),
        "the reader syncs: {synced:?}"
    );

    outsider_socket
        .send(WsMessage::Binary(sync_step_1("secret").to_bytes()))
        .await
        .expect("send");
    let Frame::Message(refusal) = next_frame(&mut outsider_socket).await else {
        panic!("expected a message");
    };
    assert!(
        matches!(
            refusal.body,
            Body::Doc(DocMessage::Auth { allowed: false, .. })
        ),
        "{refusal:?}"
    );

    writer_socket
        .send(WsMessage::Binary(update_message("secret").to_bytes()))
        .await
        .expect("send");
    until_ack(&mut writer_socket).await;

    // The reader gets the update; the outsider gets nothing more than its refusal's NACK.
    let Frame::Message(relayed) = next_frame(&mut reader_socket).await else {
        panic!("expected a message");
    };
    assert!(
        matches!(relayed.body, Body::Doc(DocMessage::Update(_))),
        "{relayed:?}"
    );
    let mut rest = Vec::new();
    while let Ok(Some(Ok(WsMessage::Binary(bytes)))) =
        tokio::time::timeout(Duration::from_millis(500), outsider_socket.next()).await
    {
        rest.push(Frame::decode(bytes).expect("a frame"));
    }
    assert!(
        rest.iter().all(|frame| matches!(
            frame,
            Frame::Message(Message {
                body: Body::Ack(_),
                ..
            })
        )),
        "the outsider received {rest:?}"
    );
}

/// The application's own rule: nothing under `archive/` may be written.
struct NoArchiveWrites;

#[teleportal_server::async_trait]
impl teleportal_server::PermissionChecker for NoArchiveWrites {
    async fn check(
        &self,
        _client: &teleportal_server::ClientContext,
        document: &str,
        access: teleportal_server::Access,
    ) -> bool {
        access == teleportal_server::Access::Read || !document.starts_with("archive/")
    }
}

/// Sends one update for `document`; returns whether it was acknowledged without error and
/// whether a permission denial came before the acknowledgement.
async fn write_outcome(socket: &mut Socket, document: &str) -> (bool, bool) {
    socket
        .send(WsMessage::Binary(update_message(document).to_bytes()))
        .await
        .expect("send update");
    let mut denied = false;
    loop {
        let Frame::Message(answer) = next_frame(socket).await else {
            continue;
        };
        match answer.body {
            Body::Doc(DocMessage::Auth { allowed: false, .. }) => denied = true,
            Body::Ack(ack) => return (ack.error.is_none(), denied),
            _ => {}
        }
    }
}

#[tokio::test]
async fn token_grants_compose_with_the_applications_own_checker() {
    let server = Server::builder(DocumentStore::new(MemoryStorage::new()))
        .permissions(NoArchiveWrites)
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let app = teleportal_axum::router_with_auth(server.clone(), config());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The token grants writes to `notes` and `archive/*`; the application forbids the
    // second; a document the token does not grant is refused whatever the application says.
    let writer = token(Some(vec![
        DocumentAccess::new("notes", &[Permission::Write]),
        DocumentAccess::new("archive/*", &[Permission::Write]),
    ]));
    let mut socket = connect(addr, &format!("/?token={writer}")).await;
    assert_eq!(write_outcome(&mut socket, "notes").await, (true, false));
    assert_eq!(
        write_outcome(&mut socket, "archive/2025").await,
        (false, true),
        "the application's rule holds"
    );
    assert_eq!(
        write_outcome(&mut socket, "drafts").await,
        (false, true),
        "the token's grants hold"
    );
    for (document, stored) in [("notes", true), ("archive/2025", false), ("drafts", false)] {
        let meta = server.store().metadata(&DocumentId::new(document)).await;
        assert_eq!(meta.expect("metadata").is_some(), stored, "{document}");
    }
}
