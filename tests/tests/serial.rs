//! The serial link against a real pseudo-terminal: the test plays the Arduino on the
//! other end of a socat pty pair.

mod common;
mod pty;
use common::{connected, recv_until, within, TestRobot};
use pty::{scratch, PtyPair};
use rtcbot::serial::{Incoming, LinkState, SerialConfig, SerialConnection, SerialEvent};
use serde_json::{json, Value};
use shared_protocol::Telemetry;
use tokio::sync::broadcast;

fn keys(k: &[&str]) -> Option<Vec<String>> {
    Some(k.iter().map(|s| s.to_string()).collect())
}

/// The docs' full example: write `<HB`, read `<BH`, both with keys value1/value2.
fn docs_config(path: &std::path::Path) -> SerialConfig {
    SerialConfig {
        path: path.to_owned(),
        write_format: Some("<HB".into()),
        write_keys: keys(&["value1", "value2"]),
        read_format: Some("<BH".into()),
        read_keys: keys(&["value1", "value2"]),
        ..SerialConfig::default()
    }
}

async fn next_message(events: &mut broadcast::Receiver<SerialEvent>) -> Value {
    match within("a struct from the Arduino", events.recv())
        .await
        .unwrap()
    {
        SerialEvent::Message(Incoming::Struct(v)) => v,
        other => panic!("expected a struct, got {other:?}"),
    }
}

async fn next_garbled(events: &mut broadcast::Receiver<SerialEvent>) -> String {
    match within("a garbled-frame report", events.recv())
        .await
        .unwrap()
    {
        SerialEvent::Garbled(reason) => reason,
        other => panic!("expected a garbled report, got {other:?}"),
    }
}

/// The docs' Arduino sketch: read a controlMessage, swap the values, write it back.
async fn echo_swapped(arduino: &mut pty::Arduino) {
    let c = within("a control message", arduino.read_exact(3)).await;
    // controlMessage {uint16_t value1; uint8_t value2;} -> sensorMessage {uint8_t; uint16_t}
    arduino.write(&[c[2], c[0], c[1]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_echo_example_round_trips() {
    let dir = scratch("echo");
    let pair = PtyPair::start(&dir);
    let serial = SerialConnection::open(docs_config(&pair.robot)).unwrap();
    connected(&serial).await;
    let mut arduino = pair.arduino();
    let mut events = serial.events();
    for _ in 0..3 {
        serial.send(&json!({"value1": 1003, "value2": 2})).unwrap();
        echo_swapped(&mut arduino).await;
        assert_eq!(
            next_message(&mut events).await,
            json!({"value1": 2, "value2": 1003})
        );
    }
    // A message that does not fit is refused before it reaches the wire.
    let err = serial
        .send(&json!({"value1": 70000, "value2": 2}))
        .unwrap_err();
    assert!(
        err.to_string().contains("70000 is out of range for 'H'"),
        "{err}"
    );
    serial.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_short_frames_are_skipped_and_reported() {
    let dir = scratch("garbage");
    let pair = PtyPair::start(&dir);
    let serial = SerialConnection::open(SerialConfig {
        start_byte: Some(0xAA),
        ..docs_config(&pair.robot)
    })
    .unwrap();
    connected(&serial).await;
    let mut arduino = pair.arduino();
    let mut events = serial.events();

    // Outgoing structs carry the start byte.
    serial.send(&json!({"value1": 1003, "value2": 2})).unwrap();
    assert_eq!(
        within("a framed struct", arduino.read_exact(4)).await,
        [0xAA, 0xEB, 0x03, 0x02]
    );

    // Line noise, then a good frame in the same burst.
    arduino.write(&[0x01, 0x02, 0x03, 0xAA, 2, 0xEB, 0x03]);
    assert_eq!(
        next_garbled(&mut events).await,
        "skipped 3 bytes before start byte 0xAA"
    );
    assert_eq!(
        next_message(&mut events).await,
        json!({"value1": 2, "value2": 1003})
    );

    // A short frame: the Arduino stops mid-struct. Reported after the frame timeout,
    // then the next frame decodes normally.
    arduino.write(&[0xAA, 7]);
    assert_eq!(
        next_garbled(&mut events).await,
        "skipped a short struct: got 1 of 3 bytes"
    );
    arduino.write(&[0xAA, 9, 0x10, 0x00]);
    assert_eq!(
        next_message(&mut events).await,
        json!({"value1": 9, "value2": 16})
    );
    assert_eq!(
        *serial.state().borrow(),
        LinkState::Connected,
        "never fatal"
    );
    serial.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_mode_reads_lines_with_a_custom_delimiter() {
    let dir = scratch("lines");
    let pair = PtyPair::start(&dir);
    let serial = SerialConnection::open(SerialConfig {
        path: pair.robot.clone(),
        delimiter: ";".into(),
        ..SerialConfig::default()
    })
    .unwrap();
    connected(&serial).await;
    let mut arduino = pair.arduino();
    let mut events = serial.events();
    serial.send(&json!("Hello world!")).unwrap();
    assert_eq!(
        within("a line", arduino.read_exact(13)).await,
        b"Hello world!;"
    );
    arduino.write(b"I received: 72;I rec");
    arduino.write(b"eived: 101;");
    for expected in ["I received: 72", "I received: 101"] {
        let got = within("a line from the Arduino", events.recv())
            .await
            .unwrap();
        assert_eq!(got, SerialEvent::Message(Incoming::Line(expected.into())));
    }
    serial.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_reconnects_after_an_unplug() {
    let dir = scratch("replug");
    let mut pair = PtyPair::start(&dir);
    let serial = SerialConnection::open(docs_config(&pair.robot)).unwrap();
    connected(&serial).await;
    let mut state = serial.state();
    state.borrow_and_update();

    pair.unplug();
    let reason = within("the link to notice the unplug", async {
        loop {
            state.changed().await.unwrap();
            if let LinkState::Disconnected { reason } = state.borrow_and_update().clone() {
                return reason;
            }
        }
    })
    .await;
    assert!(!reason.is_empty());
    // While unplugged, writes are refused, not queued for later.
    let err = serial.send(&json!({"value1": 1, "value2": 1})).unwrap_err();
    assert!(err.to_string().contains("is not connected"), "{err}");

    // Replug at the same path.
    let pair = PtyPair::start(&dir);
    connected(&serial).await;
    let mut arduino = pair.arduino();
    let mut events = serial.events();
    serial.send(&json!({"value1": 1003, "value2": 2})).unwrap();
    echo_swapped(&mut arduino).await;
    assert_eq!(
        next_message(&mut events).await,
        json!({"value1": 2, "value2": 1003})
    );
    serial.close();
}

/// The next `{"type":"serial",...}` telemetry that `pick` accepts.
async fn serial_telemetry(
    client: &mut rtcbot::RobotClient,
    what: &str,
    mut pick: impl FnMut(&Value) -> bool,
) -> Value {
    recv_until(client, what, |m| match m {
        Telemetry::Json(v) if v["type"] == "serial" && pick(&v) => Some(v),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_client_sees_the_link_state_and_garbage_reports() {
    let dir = scratch("telemetry");
    let mut pair = PtyPair::start(&dir);
    let config = SerialConfig {
        start_byte: Some(0xAA),
        ..docs_config(&pair.robot)
    };
    let robot = TestRobot::start_with(move |c| c.serial = Some(config)).await;
    connected(robot.robot.serial().expect("serial link")).await;
    let mut client = robot.client(false).await;

    // Unplugged: the client is told, with the reason.
    pair.unplug();
    let gone = serial_telemetry(&mut client, "the disconnected state", |v| {
        v["state"] == "disconnected"
    })
    .await;
    let reason = gone["reason"].as_str().expect("a reason string");
    assert!(!reason.is_empty(), "{gone}");

    // Plugged in again at the same path: connected.
    let pair = PtyPair::start(&dir);
    serial_telemetry(&mut client, "the connected state", |v| {
        v["state"] == "connected"
    })
    .await;

    // Line noise before a good frame: an error report, then the struct.
    let mut arduino = pair.arduino();
    arduino.write(&[0x01, 0x02, 0x03, 0xAA, 2, 0xEB, 0x03]);
    let error = serial_telemetry(&mut client, "the garbage report", |v| {
        v.get("error").is_some()
    })
    .await;
    assert_eq!(
        error,
        json!({"type": "serial", "error": "skipped 3 bytes before start byte 0xAA"})
    );
    let message = serial_telemetry(&mut client, "the struct after the garbage", |v| {
        v.get("message").is_some()
    })
    .await;
    assert_eq!(
        message,
        json!({"type": "serial", "message": {"value1": 2, "value2": 1003}})
    );
    robot.robot.shutdown().await;
}
