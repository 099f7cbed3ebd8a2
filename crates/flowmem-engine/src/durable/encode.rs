//! The persisted forms of values and run records (postcard), and the record keys of the file store.
//!
//! Everything here is part of the file format: changing an encoding or a key breaks files already
//! written. docs/engine.md describes it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::{DurabilityError, RunId};
use crate::{Value, Workflow};

/// A value as persisted. Symbols are stored as their text (interned again on load: a symbol's number is
/// only meaningful within one process).
#[derive(Serialize, Deserialize)]
enum Persisted<'a> {
    Unit,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Symbol(&'a str),
    Text(&'a str),
    Bytes(#[serde(borrow)] Raw<'a>),
    /// A serde value as JSON text (added after the others: older records still decode).
    Json(&'a str),
}

/// Bytes written as one length-prefixed block (serde's `[u8]` would go byte by byte).
struct Raw<'a>(&'a [u8]);

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = Raw<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("borrowed bytes")
            }
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Raw<'de>, E> {
                Ok(Raw(v))
            }
        }
        d.deserialize_bytes(Visit)
    }
}

impl<'a> Persisted<'a> {
    /// The persisted form of `value`; `None` for an `Opaque` value.
    fn of(value: &'a Value) -> Option<Self> {
        Some(match value {
            Value::Unit => Persisted::Unit,
            Value::Bool(v) => Persisted::Bool(*v),
            Value::U64(v) => Persisted::U64(*v),
            Value::I64(v) => Persisted::I64(*v),
            Value::F64(v) => Persisted::F64(*v),
            Value::Symbol(s) => Persisted::Symbol(flowmem_intern::resolve(*s)),
            Value::Text(t) => Persisted::Text(t),
            Value::Bytes(b) => Persisted::Bytes(Raw(b)),
            Value::Json(t) => Persisted::Json(t),
            Value::Opaque(_) => return None,
        })
    }

    fn value(&self) -> Value {
        match self {
            Persisted::Unit => Value::Unit,
            Persisted::Bool(v) => Value::Bool(*v),
            Persisted::U64(v) => Value::U64(*v),
            Persisted::I64(v) => Value::I64(*v),
            Persisted::F64(v) => Value::F64(*v),
            Persisted::Symbol(s) => Value::Symbol(flowmem_intern::intern(s)),
            Persisted::Text(t) => Value::Text((*t).into()),
            Persisted::Bytes(b) => Value::Bytes(b.0.into()),
            Persisted::Json(t) => Value::Json((*t).into()),
        }
    }
}

/// The first record of a run: which workflow it runs.
#[derive(Serialize, Deserialize)]
pub(super) struct RunHeader<'a> {
    pub(super) run: u128,
    pub(super) workflow: &'a str,
    pub(super) fingerprint: u64,
    pub(super) nodes: u32,
}

/// A completed node and its output.
#[derive(Serialize, Deserialize)]
struct NodeRecord<'a> {
    run: u128,
    node: u32,
    name: &'a str,
    #[serde(borrow)]
    value: Persisted<'a>,
}

/// A value of the run's context.
#[derive(Serialize, Deserialize)]
struct ContextRecord<'a> {
    run: u128,
    key: &'a str,
    #[serde(borrow)]
    value: Persisted<'a>,
}

fn unpersistable(what: impl FnOnce() -> String, value: &Value) -> DurabilityError {
    DurabilityError::Unpersistable {
        what: what(),
        kind: value.kind(),
    }
}

fn encode_into<T: Serialize>(
    what: &'static str,
    record: &T,
    out: &mut Vec<u8>,
) -> Result<(), DurabilityError> {
    let buf =
        postcard::to_extend(record, std::mem::take(out)).map_err(|e| DurabilityError::Encode {
            what,
            source: Box::new(e),
        })?;
    *out = buf;
    Ok(())
}

impl Value {
    /// Appends the persisted form of this value to `out` (postcard; what the file store writes), for
    /// stores of your own.
    ///
    /// # Errors
    /// [`DurabilityError::Unpersistable`] for an [`Opaque`](Value::Opaque) value.
    ///
    /// ```
    /// use flowmem_engine::Value;
    ///
    /// let mut bytes = Vec::new();
    /// Value::from("report.csv").encode(&mut bytes)?;
    /// assert_eq!(Value::decode(&bytes)?, Value::from("report.csv"));
    /// # Ok::<(), flowmem_engine::DurabilityError>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), DurabilityError> {
        let p = Persisted::of(self).ok_or_else(|| unpersistable(|| "the value".into(), self))?;
        encode_into("a value", &p, out)
    }

    /// The value whose persisted form is `bytes` (see [`encode`](Self::encode)).
    ///
    /// # Errors
    /// [`DurabilityError::Decode`] if `bytes` is not a persisted value.
    pub fn decode(bytes: &[u8]) -> Result<Value, DurabilityError> {
        let p: Persisted<'_> =
            postcard::from_bytes(bytes).map_err(|e| DurabilityError::Decode {
                what: "value",
                place: None,
                source: Box::new(e),
            })?;
        Ok(p.value())
    }
}

pub(super) fn encode_header(
    run: RunId,
    workflow: &Workflow,
    out: &mut Vec<u8>,
) -> Result<(), DurabilityError> {
    encode_into(
        "a run header",
        &RunHeader {
            run: run.as_u128(),
            workflow: workflow.name(),
            fingerprint: workflow.fingerprint(),
            nodes: workflow.len() as u32,
        },
        out,
    )
}

pub(super) fn decode_header(bytes: &[u8]) -> Result<RunHeader<'_>, postcard::Error> {
    postcard::from_bytes(bytes)
}

pub(super) fn encode_node(
    run: RunId,
    node: u32,
    name: &str,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), DurabilityError> {
    let value = Persisted::of(value)
        .ok_or_else(|| unpersistable(|| format!("the output of node `{name}`"), value))?;
    encode_into(
        "a node record",
        &NodeRecord {
            run: run.as_u128(),
            node,
            name,
            value,
        },
        out,
    )
}

/// A node record: (run, node index, output).
pub(super) fn decode_node(bytes: &[u8]) -> Result<(u128, u32, Value), postcard::Error> {
    let r: NodeRecord<'_> = postcard::from_bytes(bytes)?;
    Ok((r.run, r.node, r.value.value()))
}

pub(super) fn encode_context(
    run: RunId,
    key: &str,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), DurabilityError> {
    let value = Persisted::of(value)
        .ok_or_else(|| unpersistable(|| format!("context value `{key}`"), value))?;
    encode_into(
        "a context record",
        &ContextRecord {
            run: run.as_u128(),
            key,
            value,
        },
        out,
    )
}

/// A context record: (run, key, value).
pub(super) fn decode_context(bytes: &[u8]) -> Result<(u128, String, Value), postcard::Error> {
    let r: ContextRecord<'_> = postcard::from_bytes(bytes)?;
    Ok((r.run, r.key.to_string(), r.value.value()))
}

/// Kinds of record, in byte 8 of a record id.
pub(super) const KIND_HEADER: u8 = 0;
pub(super) const KIND_NODE: u8 = 1;
pub(super) const KIND_CONTEXT: u8 = 2;

/// The bits of a record id's index (a node's index, a context key's slot).
pub(super) const INDEX_MASK: u64 = (1 << 56) - 1;

/// splitmix64's finaliser: a fixed bijective mix (part of the format, never to change).
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The 64-bit key of a run: the high half of each of its record ids.
pub(super) fn run_key(run: RunId) -> u64 {
    let v = run.as_u128();
    mix64(v as u64 ^ mix64((v >> 64) as u64))
}

/// FNV-1a, 64 bits (stable, defined here: part of the format).
pub(super) fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

pub(super) const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;

/// A record id: run key (64 bits) | kind (8) | index (56: a node's index, a context key's hash).
pub(super) fn record_id(key: u64, kind: u8, index: u64) -> uuid::Uuid {
    uuid::Uuid::from_u128(
        (u128::from(key) << 64) | (u128::from(kind) << 56) | u128::from(index & INDEX_MASK),
    )
}

/// The kind of record of `id` if it belongs to the run of `key`.
pub(super) fn kind_of(id: &uuid::Uuid, key: u64) -> Option<u8> {
    let v = id.as_u128();
    ((v >> 64) as u64 == key).then_some((v >> 56) as u8)
}

/// The index bits of a record id.
pub(super) fn index_of(id: &uuid::Uuid) -> u64 {
    id.as_u128() as u64 & INDEX_MASK
}

/// Where a context key's record goes if no other key of its run took that slot first: its FNV-1a hash
/// (see `slots.rs` for collisions).
pub(super) fn context_index(key: &str) -> u64 {
    fnv1a(key.as_bytes(), FNV_OFFSET)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn every_persistable_value_round_trips() {
        let values = [
            Value::Unit,
            Value::Bool(true),
            Value::U64(u64::MAX),
            Value::I64(-5),
            Value::F64(-0.25),
            Value::Symbol(flowmem_intern::intern("READY")),
            Value::from("text"),
            Value::from(vec![0u8, 255, 7]),
            Value::from(vec![0u8; 100_000]),
            Value::serde(&(1u8, "two", [3.5f64])).unwrap(),
        ];
        for v in values {
            let mut bytes = Vec::new();
            v.encode(&mut bytes).unwrap();
            assert_eq!(Value::decode(&bytes).unwrap(), v);
        }
    }

    #[test]
    fn opaque_values_and_garbage_are_refused_with_an_error() {
        let mut bytes = Vec::new();
        let err = Value::Opaque(Arc::new(1u8)).encode(&mut bytes).unwrap_err();
        assert!(err.to_string().contains("opaque"), "{err}");
        assert!(Value::decode(&[200, 1, 2]).is_err());
        assert!(Value::decode(&[]).is_err());
        let mut node = Vec::new();
        let err = encode_node(
            RunId::from_u128(1),
            3,
            "render",
            &Value::Opaque(Arc::new(())),
            &mut node,
        )
        .unwrap_err();
        assert!(err.to_string().contains("node `render`"), "{err}");
    }

    #[test]
    fn record_ids_carry_their_run_and_kind() {
        let key = run_key(RunId::from_u128(42));
        assert_ne!(key, run_key(RunId::from_u128(43)));
        let id = record_id(key, KIND_NODE, 7);
        assert_eq!(kind_of(&id, key), Some(KIND_NODE));
        assert_eq!(kind_of(&id, key ^ 1), None);
        assert_eq!(
            kind_of(&record_id(key, KIND_CONTEXT, u64::MAX), key),
            Some(KIND_CONTEXT)
        );
    }
}
