//! Codec micro-benchmarks: a WAMP EVENT through each serializer (encode, decode), an MQTT
//! PUBLISH (encode, decode). `cargo bench --bench codecs`.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use junction::mqtt::{write_publish, MqttCodec, Packet, QoS};
use junction::wamp::message::{Message, Payload};
use junction::wire::{Dict, Serializer, Value};
use tokio_util::codec::Decoder;

/// A typical EVENT: 64-byte string argument, a small kwargs dict, empty details.
fn event() -> Message {
    let mut kwargs = Dict::new();
    kwargs.insert("sensor".into(), Value::from("s-17"));
    kwargs.insert("temp".into(), Value::Float(21.5));
    kwargs.insert("seq".into(), Value::Int(123_456));
    Message::Event {
        subscription: 4_503_599_627_370_495,
        publication: 7_123_456_789,
        details: Dict::new(),
        payload: Payload {
            args: Some(vec![Value::from("x".repeat(64)), Value::Int(42)]),
            kwargs: Some(kwargs),
            raw: None,
        },
    }
}

fn wamp(c: &mut Criterion) {
    let msg = event();
    let value = msg.to_value();
    // encode = Message -> value tree -> bytes, as the router does for each EVENT
    for ser in Serializer::ALL {
        let mut g = c.benchmark_group(format!("wamp_event_{}", ser.name()));
        let mut out = Vec::with_capacity(256);
        ser.encode(&value, &mut out);
        let wire = out.clone();
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function("encode", |b| {
            b.iter(|| {
                out.clear();
                let v = black_box(&msg).to_value();
                ser.encode(&v, &mut out);
                black_box(out.len())
            })
        });
        g.bench_function("decode", |b| {
            b.iter(|| {
                let v = ser.decode(black_box(&wire)).expect("decodes");
                black_box(Message::from_value(v).expect("valid EVENT"))
            })
        });
        g.finish();
    }
}

fn mqtt(c: &mut Criterion) {
    let payload = Bytes::from(vec![b'p'; 64]);
    let topic = "sensors/building-1/floor-3/room-12/temperature";
    let mut g = c.benchmark_group("mqtt_publish");
    let mut one = BytesMut::new();
    write_publish(
        &mut one,
        topic,
        QoS::AtLeastOnce,
        false,
        false,
        17,
        &payload,
    )
    .expect("fits");
    g.throughput(Throughput::Bytes(one.len() as u64));
    let mut out = BytesMut::with_capacity(64 * 1024);
    g.bench_function("encode_qos1", |b| {
        b.iter(|| {
            out.clear();
            write_publish(
                &mut out,
                black_box(topic),
                QoS::AtLeastOnce,
                false,
                false,
                17,
                black_box(&payload),
            )
            .expect("fits");
            black_box(out.len())
        })
    });
    let wire = one.freeze();
    g.bench_function("decode_qos1", |b| {
        let mut codec = MqttCodec::new(1 << 20);
        b.iter(|| {
            let mut buf = BytesMut::from(&wire[..]);
            match codec.decode(&mut buf) {
                Ok(Some(Packet::Publish(p))) => black_box(p.payload.len()),
                other => panic!("expected PUBLISH, got {other:?}"),
            }
        })
    });
    g.finish();
}

criterion_group!(benches, wamp, mqtt);
criterion_main!(benches);
