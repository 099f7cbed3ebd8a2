//! `Value`: what a node outputs and its dependents read.

use std::{any::Any, fmt, sync::Arc};

use flowmem_intern::Symbol;

/// A node's output, read by the nodes that depend on it.
///
/// The common cases need no allocation (numbers, flags, interned strings); text and bytes are shared
/// (`Arc`), so a value read by many dependents is never copied. `Opaque` carries any other type: it works
/// in memory but cannot be checkpointed by a durable store (which refuses it with an error).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Value {
    /// No value (a node that only has effects).
    #[default]
    Unit,
    /// A flag.
    Bool(bool),
    /// An unsigned integer (counts, sizes, ids).
    U64(u64),
    /// A signed integer.
    I64(i64),
    /// A float.
    F64(f64),
    /// An interned string (a status, a name): four bytes, compared as an integer.
    Symbol(Symbol),
    /// Text.
    Text(Arc<str>),
    /// Bytes.
    Bytes(Arc<[u8]>),
    /// Any other `Send + Sync` type, in memory only.
    Opaque(Arc<dyn Any + Send + Sync>),
    /// A value of any `serde` type, as JSON text ([`Value::serde`], [`NodeCtx::set_output_serde`]); read it
    /// back with [`Value::to_serde`]. A durable store checkpoints the text.
    ///
    /// [`NodeCtx::set_output_serde`]: crate::NodeCtx::set_output_serde
    Json(Arc<str>),
}

/// A value that is not of the type asked for (from [`Value::to_serde`] and the typed readers of
/// [`NodeCtx`](crate::NodeCtx) and [`RunReport`](crate::RunReport)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} does not decode as `{type_name}`: {message}")]
pub struct DecodeError {
    /// What was read (`the output of node `fetch``, `context value `limit``, `a value`).
    pub what: String,
    /// The type asked for.
    pub type_name: &'static str,
    /// Why it does not decode.
    pub message: String,
}

impl Value {
    /// The integer, if this is a `U64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::U64(v) => Some(*v),
            _ => None,
        }
    }

    /// The integer, if this is an `I64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::I64(v) => Some(*v),
            _ => None,
        }
    }

    /// The float, if this is an `F64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::F64(v) => Some(*v),
            _ => None,
        }
    }

    /// The flag, if this is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(v) => Some(*v),
            _ => None,
        }
    }

    /// The text of a `Text`, or of a `Symbol` (resolved in the process-wide pool).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            Value::Symbol(s) => Some(flowmem_intern::resolve(*s)),
            _ => None,
        }
    }

    /// The bytes of a `Bytes` (or of a `Text`).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            Value::Text(t) => Some(t.as_bytes()),
            _ => None,
        }
    }

    /// The value of an `Opaque` of type `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        match self {
            Value::Opaque(v) => v.downcast_ref(),
            _ => None,
        }
    }

    /// `value` as a [`Value::Json`]: any type that implements `serde::Serialize`, encoded as JSON.
    ///
    /// ```
    /// use flowmem_engine::Value;
    ///
    /// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    /// struct Rows { table: String, count: u32 }
    ///
    /// let v = Value::serde(&Rows { table: "users".into(), count: 3 })?;
    /// assert_eq!(v.to_serde::<Rows>()?, Rows { table: "users".into(), count: 3 });
    /// assert!(v.to_serde::<Vec<u8>>().unwrap_err().to_string().contains("Vec<u8>"));
    /// assert_eq!(Value::from(7u64).to_serde::<u64>()?, 7); // plain values read as their serde form
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The type's `Serialize` fails, or it has no JSON form (a map with keys that are not strings).
    pub fn serde<T: serde::Serialize + ?Sized>(value: &T) -> Result<Value, DecodeError> {
        serde_json::to_string(value)
            .map(|text| Value::Json(text.into()))
            .map_err(|e| DecodeError {
                what: "a value".into(),
                type_name: std::any::type_name::<T>(),
                message: format!("cannot be encoded as JSON: {e}"),
            })
    }

    /// This value as a `T`: a [`Json`](Value::Json) value decoded, or a plain one (a number, a flag, text,
    /// bytes as a sequence of numbers, unit as `null`) read through its serde form.
    ///
    /// # Errors
    /// [`DecodeError`] naming `T`: the value is not a `T`, or is `Opaque`.
    pub fn to_serde<T: serde::de::DeserializeOwned>(&self) -> Result<T, DecodeError> {
        self.decode_as("a value")
    }

    /// [`to_serde`](Self::to_serde), the error naming `what` was read.
    pub(crate) fn decode_as<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
    ) -> Result<T, DecodeError> {
        let fail = |message: String| DecodeError {
            what: what.to_string(),
            type_name: std::any::type_name::<T>(),
            message,
        };
        let plain = match self {
            Value::Json(text) => {
                return serde_json::from_str(text).map_err(|e| fail(e.to_string()));
            }
            Value::Unit => serde_json::Value::Null,
            Value::Bool(v) => serde_json::Value::Bool(*v),
            Value::U64(v) => serde_json::Value::from(*v),
            Value::I64(v) => serde_json::Value::from(*v),
            Value::F64(v) => serde_json::Value::from(*v),
            Value::Symbol(_) | Value::Text(_) => {
                serde_json::Value::String(self.as_str().unwrap_or_default().to_string())
            }
            Value::Bytes(b) => serde_json::Value::from(b.to_vec()),
            Value::Opaque(_) => return Err(fail("it is an opaque value".into())),
        };
        serde_json::from_value(plain).map_err(|e| fail(e.to_string()))
    }

    /// Whether a durable store can checkpoint it (everything but `Opaque`).
    pub fn is_persistable(&self) -> bool {
        !matches!(self, Value::Opaque(_))
    }

    /// The variant's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Unit => "unit",
            Value::Bool(_) => "bool",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
            Value::Symbol(_) => "symbol",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Opaque(_) => "opaque",
            Value::Json(_) => "json",
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Unit, Value::Unit) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::U64(a), Value::U64(b)) => a == b,
            (Value::I64(a), Value::I64(b)) => a == b,
            (Value::F64(a), Value::F64(b)) => a.to_bits() == b.to_bits(),
            (Value::Symbol(a), Value::Symbol(b)) => a == b,
            (Value::Text(a), Value::Text(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Opaque(a), Value::Opaque(b)) => Arc::ptr_eq(a, b),
            (Value::Json(a), Value::Json(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unit => f.write_str("Unit"),
            Value::Bool(v) => write!(f, "Bool({v})"),
            Value::U64(v) => write!(f, "U64({v})"),
            Value::I64(v) => write!(f, "I64({v})"),
            Value::F64(v) => write!(f, "F64({v})"),
            Value::Symbol(s) => write!(f, "Symbol({:?})", flowmem_intern::resolve(*s)),
            Value::Text(t) => write!(f, "Text({t:?})"),
            Value::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Value::Opaque(_) => f.write_str("Opaque(..)"),
            Value::Json(t) => write!(f, "Json({t})"),
        }
    }
}

macro_rules! from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v.into())
            }
        })*
    };
}

from!(bool => Bool, u64 => U64, u32 => U64, u16 => U64, u8 => U64, i64 => I64, i32 => I64, i16 => I64,
      i8 => I64, f64 => F64, f32 => F64, Symbol => Symbol,
      &str => Text, String => Text, Arc<str> => Text, Vec<u8> => Bytes, &[u8] => Bytes, Arc<[u8]> => Bytes);

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::U64(v as u64)
    }
}

impl From<isize> for Value {
    fn from(v: isize) -> Self {
        Value::I64(v as i64)
    }
}

impl From<()> for Value {
    fn from((): ()) -> Self {
        Value::Unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_and_accessors_agree() {
        assert_eq!(Value::from(7u32).as_u64(), Some(7));
        assert_eq!(Value::from(-7).as_i64(), Some(-7));
        assert_eq!(Value::from("hi").as_str(), Some("hi"));
        assert_eq!(
            Value::from(flowmem_intern::intern("DONE")).as_str(),
            Some("DONE")
        );
        assert_eq!(Value::from(vec![1u8, 2]).as_bytes(), Some(&[1u8, 2][..]));
        assert_eq!(Value::from(2.5).as_f64(), Some(2.5));
        assert_eq!(Value::from(true).as_bool(), Some(true));
        assert_eq!(Value::from(()), Value::Unit);
        let opaque = Value::Opaque(Arc::new(vec![1u16]));
        assert_eq!(opaque.downcast_ref::<Vec<u16>>(), Some(&vec![1u16]));
        assert!(!opaque.is_persistable() && Value::from(1u64).is_persistable());
        assert_eq!(format!("{:?}", Value::from("x")), "Text(\"x\")");
    }
}
