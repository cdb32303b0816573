//! Test helpers shared by the codec tests: value strategies and comparisons.

use bytes::Bytes;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use super::{Dict, Serializer, Value};

/// Builds a `Dict` from pairs.
pub(crate) fn dict<const N: usize>(pairs: [(&str, Value); N]) -> Dict {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Finite floats of every class (normal, subnormal, zero, both signs).
fn arb_finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64;
    f64::POSITIVE | f64::NEGATIVE | f64::NORMAL | f64::SUBNORMAL | f64::ZERO
}

/// Arbitrary values, at most 4 containers deep, with finite floats.
pub(crate) fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![-300i64..300, Just(i64::MIN), Just(i64::MAX)].prop_map(Value::Int),
        ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(Value::UInt),
        arb_finite_f64().prop_map(Value::Float),
        any::<String>().prop_map(Value::Str),
        "[a-z]{0,3}".prop_map(Value::Str),
        vec(any::<u8>(), 0..40).prop_map(|b| Value::Bytes(Bytes::from(b))),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::List),
            btree_map(any::<String>(), inner, 0..8).prop_map(Value::Dict),
        ]
    })
}

/// Encodings of arbitrary values with a few bytes overwritten and possibly truncated: inputs
/// that get deep into a decoder before going wrong.
pub(crate) fn mutated(ser: Serializer) -> impl Strategy<Value = Vec<u8>> {
    (
        arb_value(),
        vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(move |(v, edits, cut, truncate)| {
            let mut buf = ser.encode_to_bytes(&v).to_vec();
            if !buf.is_empty() {
                for (at, byte) in edits {
                    let i = at.index(buf.len());
                    buf[i] = byte;
                }
                if truncate {
                    buf.truncate(cut.index(buf.len()));
                }
            }
            buf
        })
}

/// Asserts `a == b`, except that floats may differ by up to `ulps` units in the last place.
#[track_caller]
pub(crate) fn assert_eq_float_ulps(a: &Value, b: &Value, ulps: u64) {
    assert!(eq_float_ulps(a, b, ulps), "{a:?} != {b:?}");
}

fn eq_float_ulps(a: &Value, b: &Value, ulps: u64) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            x == y || (x.signum() == y.signum() && x.to_bits().abs_diff(y.to_bits()) <= ulps)
        }
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| eq_float_ulps(x, y, ulps))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, x), (ky, y))| kx == ky && eq_float_ulps(x, y, ulps))
        }
        _ => a == b,
    }
}
