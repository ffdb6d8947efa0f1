//! The layers over a scriptable mock WebSocket.

mod support;

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::executor::block_on;
use futures::task::noop_waker_ref;
use futures::{FutureExt, Sink, SinkExt, StreamExt};
use teleportal_core::y_protocols::SyncMessage;
use teleportal_core::{Frame, Message, YMessage};
use teleportal_transport::ws::{FrameStream, YMessageStream};
use teleportal_transport::{
    Direction, EncodedLen, Inspect, InspectLayer, Inspection, Layer, MaxMessageSize,
    MaxMessageSizeLayer, Metered, MeteredLayer, MetricsSnapshot, TransportError, TransportMetrics,
};

use support::{MockWs, WsMsg, pair, update};

fn binary(frame: &Frame) -> WsMsg {
    WsMsg::Binary(frame.to_bytes())
}

type Seen = Arc<Mutex<Vec<(Direction, String, Frame)>>>;

fn recorder() -> (
    Seen,
    impl Fn(&Inspection<'_, Frame>) + Send + Sync + 'static,
) {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    (seen, move |i: &Inspection<'_, Frame>| {
        sink.lock()
            .unwrap()
            .push((i.direction, i.client_id.to_owned(), i.message.clone()))
    })
}

#[test]
fn frames_pass_through_in_order_and_control_frames_are_skipped() {
    let (ws, handle) = pair(8);
    let frames = vec![
        Frame::Ping,
        Frame::Message(update("a", 3, 1)),
        Frame::Pong,
        Frame::Message(update("b", 300, 2)),
    ];
    for (i, f) in frames.iter().enumerate() {
        if i == 2 {
            handle.push(WsMsg::Ping);
        }
        handle.push(binary(f));
    }
    drop(handle);
    let got: Vec<Frame> = block_on(
        FrameStream::<_, WsMsg>::new(ws)
            .map(|r| r.unwrap())
            .collect(),
    );
    assert_eq!(got, frames);
}

#[test]
fn frames_sent_become_one_binary_message_each() {
    let (ws, mut handle) = pair(8);
    let mut conn: FrameStream<MockWs, WsMsg> = FrameStream::new(ws);
    block_on(async {
        conn.send(Frame::Pong).await.unwrap();
        conn.send(Frame::Message(update("d", 5, 9))).await.unwrap();
    });
    assert_eq!(
        handle.written(),
        vec![
            WsMsg::Binary(Bytes::from_static(b"YJSpong")),
            binary(&Frame::Message(update("d", 5, 9)))
        ]
    );
}

#[test]
fn text_frame_is_an_error_and_the_stream_goes_on() {
    let (ws, handle) = pair(1);
    handle.push(WsMsg::Text("hello".into()));
    handle.push(binary(&Frame::Ping));
    let mut conn: FrameStream<_, WsMsg> = FrameStream::new(ws);
    block_on(async {
        assert!(matches!(
            conn.next().await,
            Some(Err(TransportError::TextFrame { len: 5 }))
        ));
        assert_eq!(conn.next().await.unwrap().unwrap(), Frame::Ping);
    });
}

#[test]
fn close_message_ends_the_stream_for_good() {
    let (ws, handle) = pair(1);
    handle.push(WsMsg::Close);
    handle.push(binary(&Frame::Ping));
    let mut conn: FrameStream<_, WsMsg> = FrameStream::new(ws);
    block_on(async {
        assert!(conn.next().await.is_none());
        assert!(conn.next().await.is_none());
    });
}

#[test]
fn binary_frame_without_yjs_magic_is_a_decode_error() {
    let (ws, handle) = pair(1);
    handle.push(WsMsg::Binary(Bytes::from_static(b"hello")));
    let mut conn: FrameStream<_, WsMsg> = FrameStream::new(ws);
    let got = block_on(conn.next());
    assert!(
        matches!(got, Some(Err(TransportError::Decode(_)))),
        "{got:?}"
    );
}

#[test]
fn library_errors_pass_through_as_transport_errors() {
    let (ws, handle) = pair(1);
    handle.push_err(TransportError::Closed);
    let mut conn: FrameStream<_, WsMsg> = FrameStream::new(ws);
    assert!(matches!(
        block_on(conn.next()),
        Some(Err(TransportError::Closed))
    ));
}

#[test]
fn too_large_frame_errors_with_size_and_limit_then_later_frames_arrive() {
    let big = Frame::Message(update("d", 100, 0));
    let size = big.to_bytes().len();
    let (ws, handle) = pair(1);
    handle.push(binary(&big));
    handle.push(binary(&Frame::Ping));
    // Below the decoder: the raw payload is measured before decoding.
    let mut conn: FrameStream<_, WsMsg> = FrameStream::new(MaxMessageSize::new(ws, 64));
    block_on(async {
        let err = conn.next().await.unwrap().unwrap_err();
        assert!(
            matches!(err, TransportError::MessageTooLarge { size: s, max: 64 } if s == size as u64),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("message-too-large: {size} > 64 bytes")
        );
        assert_eq!(conn.next().await.unwrap().unwrap(), Frame::Ping);
    });
}

#[test]
fn size_limit_above_the_decoder_measures_the_encoded_frame() {
    let exact = Frame::Message(update("d", 20, 0));
    let size = exact.encoded_len();
    assert_eq!(size, exact.to_bytes().len());
    let (ws, handle) = pair(1);
    handle.push(binary(&exact));
    handle.push(binary(&Frame::Message(update("d", 21, 0))));
    let mut conn = MaxMessageSizeLayer::new(size).layer(FrameStream::<_, WsMsg>::new(ws));
    block_on(async {
        assert_eq!(conn.next().await.unwrap().unwrap(), exact);
        assert!(matches!(
            conn.next().await,
            Some(Err(TransportError::MessageTooLarge { max, .. })) if max == size
        ));
    });
}

#[test]
fn inspection_sees_every_message_with_direction_and_client_id() {
    let (ws, mut handle) = pair(8);
    let (seen, callback) = recorder();
    let mut conn = Inspect::new(FrameStream::<_, WsMsg>::new(ws), "c1", callback);
    assert_eq!(conn.client_id(), "c1");
    handle.push(binary(&Frame::Ping));
    handle.push(binary(&Frame::Message(update("d", 4, 4))));
    block_on(async {
        assert_eq!(conn.next().await.unwrap().unwrap(), Frame::Ping);
        conn.send(Frame::Pong).await.unwrap();
        conn.next().await.unwrap().unwrap();
    });
    assert_eq!(handle.written().len(), 1);
    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        vec![
            (Direction::Incoming, "c1".to_owned(), Frame::Ping),
            (Direction::Outgoing, "c1".to_owned(), Frame::Pong),
            (
                Direction::Incoming,
                "c1".to_owned(),
                Frame::Message(update("d", 4, 4))
            ),
        ]
    );
}

#[test]
fn inspection_does_not_see_errors() {
    let (ws, handle) = pair(1);
    let (seen, callback) = recorder();
    let mut conn = InspectLayer::new("c", callback).layer(FrameStream::<_, WsMsg>::new(ws));
    handle.push(WsMsg::Text("x".into()));
    assert!(block_on(conn.next()).unwrap().is_err());
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn metrics_count_messages_bytes_and_errors_both_ways() {
    let metrics = TransportMetrics::new();
    let (ws, mut handle) = pair(8);
    // Metered on the raw socket: sizes are the WebSocket payloads.
    let mut conn: FrameStream<_, WsMsg> =
        FrameStream::new(MeteredLayer::new(metrics.clone()).layer(ws));
    let m = Frame::Message(update("d", 10, 1));
    handle.push(binary(&m));
    handle.push(WsMsg::Binary(Bytes::from_static(b"junk")));
    handle.push_err(TransportError::Closed);
    block_on(async {
        conn.next().await.unwrap().unwrap();
        // Junk is counted as a message here (the socket delivered it), then fails to decode.
        assert!(conn.next().await.unwrap().is_err());
        assert!(conn.next().await.unwrap().is_err());
        conn.send(Frame::Ping).await.unwrap();
        conn.send(m.clone()).await.unwrap();
    });
    assert_eq!(handle.written().len(), 2);
    let m_len = m.to_bytes().len() as u64;
    let expected = metrics.snapshot();
    assert_eq!(
        (
            expected.messages_in,
            expected.bytes_in,
            expected.errors_in,
            expected.messages_out,
            expected.bytes_out,
            expected.errors_out
        ),
        (2, m_len + 4, 1, 2, 7 + m_len, 0)
    );
}

#[test]
fn metrics_count_send_errors_when_the_peer_is_gone() {
    let metrics = TransportMetrics::new();
    let (ws, handle) = pair(1);
    drop(handle);
    let mut conn = Metered::new(FrameStream::<_, WsMsg>::new(ws), metrics.clone());
    assert_eq!(metrics.snapshot(), MetricsSnapshot::default());
    let err = block_on(conn.send(Frame::Ping)).unwrap_err();
    assert!(matches!(err, TransportError::Closed), "{err:?}");
    assert_eq!(metrics.snapshot().errors_out, 1);
    assert_eq!(metrics.snapshot().messages_out, 0);
}

/// The whole stack, as a server would build it.
fn stack(
    ws: MockWs,
    metrics: &TransportMetrics,
    inspect: impl Fn(&Inspection<'_, Frame>),
) -> impl futures::Stream<Item = Result<Frame, TransportError>> + Sink<Frame, Error = TransportError>
{
    let framed: FrameStream<_, WsMsg> = FrameStream::new(MaxMessageSizeLayer::new(1024).layer(ws));
    let metered = MeteredLayer::new(metrics.clone()).layer(framed);
    InspectLayer::new("c", inspect).layer(metered)
}

#[test]
fn sink_not_ready_is_not_fed_through_the_whole_stack() {
    let metrics = TransportMetrics::new();
    let (seen, callback) = recorder();
    // futures' mpsc gives each sender one slot on top of the buffer: room for one message.
    let (ws, mut handle) = pair(0);
    let mut conn = Box::pin(stack(ws, &metrics, callback));
    let mut cx = Context::from_waker(noop_waker_ref());

    assert!(matches!(
        conn.as_mut().poll_ready(&mut cx),
        Poll::Ready(Ok(()))
    ));
    conn.as_mut().start_send(Frame::Ping).unwrap();
    // The peer has not read: every layer must report not ready, and nothing is counted or shown.
    assert!(conn.as_mut().poll_ready(&mut cx).is_pending());
    assert!(conn.as_mut().poll_ready(&mut cx).is_pending());
    assert_eq!(metrics.snapshot().messages_out, 1);
    assert_eq!(seen.lock().unwrap().len(), 1);
    // A `send` while the peer lags waits instead of feeding the frame anywhere.
    assert!(conn.send(Frame::Pong).now_or_never().is_none());
    assert_eq!(metrics.snapshot().messages_out, 1);
    assert_eq!(seen.lock().unwrap().len(), 1);

    assert_eq!(handle.written(), vec![binary(&Frame::Ping)]);
    assert!(matches!(
        conn.as_mut().poll_ready(&mut cx),
        Poll::Ready(Ok(()))
    ));
    conn.as_mut().start_send(Frame::Pong).unwrap();
    assert_eq!(handle.written(), vec![binary(&Frame::Pong)]);
}

#[test]
fn stacked_layers_carry_frames_both_ways() {
    let metrics = TransportMetrics::new();
    let (seen, callback) = recorder();
    let (ws, mut handle) = pair(16);
    let mut conn = Box::pin(stack(ws, &metrics, callback));
    let frames: Vec<Frame> = (0..10)
        .map(|i| Frame::Message(update("d", i * 10, 7)))
        .collect();
    for f in &frames {
        handle.push(binary(f));
    }
    handle.push(binary(&Frame::Message(update("d", 2000, 0))));
    block_on(async {
        for f in &frames {
            assert_eq!(conn.next().await.unwrap().unwrap(), *f);
            conn.send(f.clone()).await.unwrap();
        }
        assert!(matches!(
            conn.next().await,
            Some(Err(TransportError::MessageTooLarge { max: 1024, .. }))
        ));
    });
    assert_eq!(
        handle.written(),
        frames.iter().map(binary).collect::<Vec<_>>()
    );
    let s = metrics.snapshot();
    assert_eq!((s.messages_in, s.messages_out, s.errors_in), (10, 10, 1));
    assert_eq!(seen.lock().unwrap().len(), 20);
}

#[test]
fn y_messages_travel_one_per_binary_frame() {
    let (ws, mut handle) = pair(4);
    let msgs = vec![
        YMessage::Sync(SyncMessage::Step1(Bytes::from_static(&[0]))),
        YMessage::QueryAwareness,
        YMessage::Sync(SyncMessage::Update(Bytes::from_static(&[0, 0]))),
    ];
    let mut conn: YMessageStream<_, WsMsg> = YMessageStream::new(ws);
    block_on(async {
        for m in &msgs {
            conn.send(m.clone()).await.unwrap();
        }
    });
    let written = handle.written();
    assert_eq!(
        written,
        msgs.iter()
            .map(|m| WsMsg::Binary(m.to_bytes()))
            .collect::<Vec<_>>()
    );
    for w in written {
        handle.push(w);
    }
    drop(handle);
    let back: Vec<YMessage> = block_on(conn.map(|r| r.unwrap()).collect());
    assert_eq!(back, msgs);
}

#[test]
fn wrappers_give_back_their_inner_transport() {
    let (ws, _handle) = pair(1);
    let mut conn = MaxMessageSize::new(Metered::new(ws, TransportMetrics::new()), 10);
    assert_eq!(conn.max(), 10);
    let _: &Metered<MockWs> = conn.get_ref();
    let _: &mut Metered<MockWs> = conn.get_mut();
    let _: MockWs = conn.into_inner().into_inner();
}

#[test]
fn encoded_len_of_a_message_is_its_wire_size() {
    let m: Message = update("doc", 33, 3);
    assert_eq!(m.encoded_len(), m.to_bytes().len());
    assert_eq!(Frame::Ping.encoded_len(), 7);
}
