//! A scriptable mock WebSocket (after tower-test's `mock::pair`): the test pushes what the
//! peer "sends" through a [`Handle`] and reads what the code under test wrote.

#![allow(dead_code, unreachable_pub)] // Each test binary uses part of the mock.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::channel::mpsc;
use futures::{Sink, Stream};
use teleportal_core::{DocMessage, Message, Update};
use teleportal_transport::TransportError;
use teleportal_transport::ws::{WsKind, WsMessage};

/// A WebSocket message as a library would deliver it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMsg {
    Binary(Bytes),
    Text(String),
    Ping,
    Close,
}

impl WsMessage for WsMsg {
    fn from_binary(payload: Bytes) -> Self {
        WsMsg::Binary(payload)
    }

    fn into_kind(self) -> WsKind {
        match self {
            WsMsg::Binary(b) => WsKind::Binary(b),
            WsMsg::Text(t) => WsKind::Text(t.len()),
            WsMsg::Ping => WsKind::Control,
            WsMsg::Close => WsKind::Close,
        }
    }

    fn payload_len(&self) -> usize {
        match self {
            WsMsg::Binary(b) => b.len(),
            WsMsg::Text(t) => t.len(),
            WsMsg::Ping | WsMsg::Close => 0,
        }
    }
}

/// The side handed to the code under test: a stream of scripted messages and a sink whose
/// readiness follows the outgoing channel's capacity.
#[derive(Debug)]
pub struct MockWs {
    incoming: mpsc::UnboundedReceiver<Result<WsMsg, TransportError>>,
    outgoing: mpsc::Sender<WsMsg>,
}

/// The test's side.
#[derive(Debug)]
pub struct Handle {
    pub incoming: mpsc::UnboundedSender<Result<WsMsg, TransportError>>,
    pub outgoing: mpsc::Receiver<WsMsg>,
}

impl Handle {
    /// Scripts a message from the peer.
    pub fn push(&self, msg: WsMsg) {
        self.incoming.unbounded_send(Ok(msg)).expect("mock dropped");
    }

    /// Scripts a library error.
    pub fn push_err(&self, err: TransportError) {
        self.incoming
            .unbounded_send(Err(err))
            .expect("mock dropped");
    }

    /// What the code under test wrote so far, without waiting.
    pub fn written(&mut self) -> Vec<WsMsg> {
        let mut out = Vec::new();
        while let Ok(msg) = self.outgoing.try_recv() {
            out.push(msg);
        }
        out
    }
}

/// A mock whose outgoing side holds `buffer` messages (plus one, as futures' mpsc does).
pub fn pair(buffer: usize) -> (MockWs, Handle) {
    let (in_tx, in_rx) = mpsc::unbounded();
    let (out_tx, out_rx) = mpsc::channel(buffer);
    (
        MockWs {
            incoming: in_rx,
            outgoing: out_tx,
        },
        Handle {
            incoming: in_tx,
            outgoing: out_rx,
        },
    )
}

impl Stream for MockWs {
    type Item = Result<WsMsg, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.incoming).poll_next(cx)
    }
}

impl Sink<WsMsg> for MockWs {
    type Error = mpsc::SendError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.outgoing.poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: WsMsg) -> Result<(), Self::Error> {
        self.outgoing.start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.outgoing).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.outgoing).poll_close(cx)
    }
}

/// A doc update message whose payload is `len` bytes of `fill`.
pub fn update(doc: &str, len: usize, fill: u8) -> Message {
    Message::doc(
        doc,
        DocMessage::Update(Update {
            version: 2,
            data: Bytes::from(vec![fill; len]),
        }),
    )
}
