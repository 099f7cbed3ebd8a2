//! serde for the engine's reports, ids, errors and values (feature `serde`).
//!
//! - `RunReport`, `NodeReport`, `AttemptRecord`: serialized with durations as whole nanoseconds
//!   (`duration_ns`, `start_ns`, `end_ns`), the run id as its UUID text, a store error as its message.
//! - `RunId`: its UUID text, both ways.
//! - `ActionError`: `{"kind": "Failed", "message": "…"}`, both ways.
//! - `Value`: as the JSON value it stands for (`Unit` → `null`, numbers, flags, text and symbols as
//!   strings, bytes as an array of numbers, `Json` as the value it holds); an `Opaque` value is an error.
//!   Deserialized, `null` is `Unit`, flags, numbers and strings come back as `Bool`, `U64`/`I64`/`F64` and
//!   `Text`, and arrays and objects as `Json`: a `Symbol` comes back as `Text`, `Bytes` as `Json`.

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    ser::{Error as _, SerializeStruct},
};

use crate::{
    ActionError, ActionErrorKind, AttemptOutcome, AttemptRecord, NodeReport, RunId, RunReport,
    Value,
};

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Serialize for RunId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for ActionError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ActionError", 2)?;
        st.serialize_field("kind", &self.kind())?;
        st.serialize_field("message", self.message())?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for ActionError {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Parts {
            kind: ActionErrorKind,
            message: String,
        }
        let p = Parts::deserialize(d)?;
        Ok(ActionError::with_kind(p.kind, p.message))
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Unit => s.serialize_unit(),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::U64(v) => s.serialize_u64(*v),
            Value::I64(v) => s.serialize_i64(*v),
            Value::F64(v) => s.serialize_f64(*v),
            Value::Symbol(_) | Value::Text(_) => s.serialize_str(self.as_str().unwrap_or_default()),
            Value::Bytes(b) => s.collect_seq(b.iter()),
            Value::Json(text) => serde_json::from_str::<serde_json::Value>(text)
                .map_err(S::Error::custom)?
                .serialize(s),
            Value::Opaque(_) => Err(S::Error::custom(
                "an Opaque value cannot be serialized (give the node a serde type: set_output_serde)",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match serde_json::Value::deserialize(d)? {
            serde_json::Value::Null => Value::Unit,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Value::U64(u),
                (None, Some(i), _) => Value::I64(i),
                (_, _, Some(f)) => Value::F64(f),
                _ => Value::Json(n.to_string().into()),
            },
            serde_json::Value::String(text) => Value::Text(text.into()),
            other => Value::Json(other.to_string().into()),
        })
    }
}

impl Serialize for RunReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// The context as a JSON object.
        struct Context<'a>(&'a [(String, Value)]);
        impl Serialize for Context<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
            }
        }
        let mut st = s.serialize_struct("RunReport", 9)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("workflow", &*self.workflow)?;
        st.serialize_field("status", &self.status)?;
        st.serialize_field("durable", &self.durable)?;
        st.serialize_field(
            "store_error",
            &self.store_error.as_ref().map(ToString::to_string),
        )?;
        st.serialize_field("duration_ns", &nanos(self.duration))?;
        st.serialize_field("nodes", &self.nodes)?;
        st.serialize_field("context", &Context(&self.context))?;
        st.serialize_field("attempts", &self.attempts)?;
        st.end()
    }
}

impl Serialize for NodeReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("NodeReport", 7)?;
        st.serialize_field("name", &*self.name)?;
        st.serialize_field("status", &self.status)?;
        st.serialize_field("attempts", &self.attempts)?;
        st.serialize_field("duration_ns", &nanos(self.duration))?;
        st.serialize_field("error", &self.error)?;
        st.serialize_field("output", &self.output)?;
        st.serialize_field("restored", &self.restored)?;
        st.end()
    }
}

impl Serialize for AttemptRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("AttemptRecord", 8)?;
        st.serialize_field("node", &self.node)?;
        st.serialize_field("attempt", &self.attempt)?;
        st.serialize_field("worker", &self.worker)?;
        st.serialize_field("start_ns", &nanos(self.start))?;
        st.serialize_field("end_ns", &nanos(self.end))?;
        st.serialize_field("outcome", self.outcome.label())?;
        st.serialize_field(
            "error_kind",
            &match self.outcome {
                AttemptOutcome::Retried(k) | AttemptOutcome::Failed(k) => Some(k),
                _ => None,
            },
        )?;
        st.serialize_field("is_async", &self.is_async)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_serialize_as_the_json_they_stand_for() {
        let cases: [(Value, &str); 8] = [
            (Value::Unit, "null"),
            (Value::Bool(true), "true"),
            (Value::U64(7), "7"),
            (Value::I64(-7), "-7"),
            (Value::F64(1.5), "1.5"),
            (Value::from("text"), "\"text\""),
            (Value::Bytes(vec![1u8, 2].into()), "[1,2]"),
            (Value::Json(r#"{"a": [1, 2]}"#.into()), r#"{"a":[1,2]}"#),
        ];
        for (value, json) in cases {
            assert_eq!(serde_json::to_string(&value).unwrap(), json, "{value:?}");
        }
        let opaque = Value::Opaque(std::sync::Arc::new(3u8));
        let error = serde_json::to_string(&opaque).unwrap_err().to_string();
        assert!(
            error.contains("Opaque value cannot be serialized"),
            "{error}"
        );
    }

    #[test]
    fn values_deserialize_from_json() {
        let back = |json: &str| serde_json::from_str::<Value>(json).unwrap();
        assert!(matches!(back("null"), Value::Unit));
        assert_eq!(back("7").as_u64(), Some(7));
        assert_eq!(back("-7").as_i64(), Some(-7));
        assert_eq!(back("2.5").as_f64(), Some(2.5));
        assert_eq!(back("\"hi\"").as_str(), Some("hi"));
        assert!(matches!(back("[1, 2]"), Value::Json(t) if &*t == "[1,2]"));
    }

    #[test]
    fn ids_and_errors_round_trip() {
        let id = RunId::named("nightly");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<RunId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<RunId>("\"not a uuid\"").is_err());
        let error = ActionError::permanent("bad input");
        let json = serde_json::to_string(&error).unwrap();
        assert_eq!(json, r#"{"kind":"Permanent","message":"bad input"}"#);
        assert_eq!(serde_json::from_str::<ActionError>(&json).unwrap(), error);
    }
}
