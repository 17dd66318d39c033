//! Typed GGUF metadata: values, arrays, and the ordered key/value map with checked accessors.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::MetaError;

/// The type tag of a metadata value, with its on-disk id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    pub fn from_id(id: u32) -> Option<Self> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    pub fn id(self) -> u32 {
        self as u32
    }

    /// Bytes a scalar of this type takes on disk; `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ValueType::U8 => "u8",
            ValueType::I8 => "i8",
            ValueType::U16 => "u16",
            ValueType::I16 => "i16",
            ValueType::U32 => "u32",
            ValueType::I32 => "i32",
            ValueType::F32 => "f32",
            ValueType::Bool => "bool",
            ValueType::String => "string",
            ValueType::Array => "array",
            ValueType::U64 => "u64",
            ValueType::I64 => "i64",
            ValueType::F64 => "f64",
        };
        f.write_str(s)
    }
}

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A homogeneous metadata array, stored typed so that a 262k-entry vocabulary stays compact.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<Array>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// The value as a signed 128-bit integer when it is any integer type.
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_integer().map(|i| i as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl Array {
    pub fn elem_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::F32(_) => ValueType::F32,
            Array::Bool(_) => ValueType::Bool,
            Array::String(_) => ValueType::String,
            Array::Array(_) => ValueType::Array,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F64(_) => ValueType::F64,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as a `Value` (cloned); `None` past the end.
    pub fn get(&self, i: usize) -> Option<Value> {
        Some(match self {
            Array::U8(v) => Value::U8(*v.get(i)?),
            Array::I8(v) => Value::I8(*v.get(i)?),
            Array::U16(v) => Value::U16(*v.get(i)?),
            Array::I16(v) => Value::I16(*v.get(i)?),
            Array::U32(v) => Value::U32(*v.get(i)?),
            Array::I32(v) => Value::I32(*v.get(i)?),
            Array::F32(v) => Value::F32(*v.get(i)?),
            Array::Bool(v) => Value::Bool(*v.get(i)?),
            Array::String(v) => Value::String(v.get(i)?.clone()),
            Array::Array(v) => Value::Array(v.get(i)?.clone()),
            Array::U64(v) => Value::U64(*v.get(i)?),
            Array::I64(v) => Value::I64(*v.get(i)?),
            Array::F64(v) => Value::F64(*v.get(i)?),
        })
    }

    /// Integer arrays of any width as i64 (u64 values above i64::MAX are `None`).
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        Some(match self {
            Array::U8(v) => v.iter().map(|&x| x.into()).collect(),
            Array::I8(v) => v.iter().map(|&x| x.into()).collect(),
            Array::U16(v) => v.iter().map(|&x| x.into()).collect(),
            Array::I16(v) => v.iter().map(|&x| x.into()).collect(),
            Array::U32(v) => v.iter().map(|&x| x.into()).collect(),
            Array::I32(v) => v.iter().map(|&x| x.into()).collect(),
            Array::I64(v) => v.clone(),
            Array::U64(v) => v
                .iter()
                .map(|&x| i64::try_from(x).ok())
                .collect::<Option<_>>()?,
            _ => return None,
        })
    }
}

/// The metadata of one file, in file order, with lookup by key.
///
/// Large arrays of strings read from a file (a vocabulary of 262,144 tokens, its merges) are
/// validated when the file is opened but turned into `String`s only on first access, so
/// opening a model does not pay for hundreds of thousands of allocations it may not need.
#[derive(Clone, Default)]
pub struct Metadata {
    entries: Vec<(String, Slot)>,
    index: HashMap<String, usize>,
}

#[derive(Clone)]
enum Slot {
    Ready(Value),
    Lazy(LazyValue),
}

/// A value whose bytes in the file were validated and are parsed on first access.
#[derive(Clone)]
pub(crate) struct LazyValue {
    parse: fn(&[u8], usize) -> Value,
    bytes: Arc<dyn AsRef<[u8]> + Send + Sync>,
    at: usize,
    cell: OnceLock<Value>,
}

impl LazyValue {
    pub(crate) fn new(
        bytes: Arc<dyn AsRef<[u8]> + Send + Sync>,
        at: usize,
        parse: fn(&[u8], usize) -> Value,
    ) -> Self {
        LazyValue {
            parse,
            bytes,
            at,
            cell: OnceLock::new(),
        }
    }
}

impl Slot {
    fn value(&self) -> &Value {
        match self {
            Slot::Ready(v) => v,
            Slot::Lazy(l) => l.cell.get_or_init(|| (l.parse)((*l.bytes).as_ref(), l.at)),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Slot::Ready(v) => v,
            Slot::Lazy(l) => {
                let LazyValue {
                    parse,
                    bytes,
                    at,
                    cell,
                } = l;
                cell.into_inner()
                    .unwrap_or_else(|| parse((*bytes).as_ref(), at))
            }
        }
    }
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

macro_rules! int_getter {
    ($name:ident, $opt:ident, $t:ty, $label:literal) => {
        #[doc = concat!("The value of `key` as ", $label, " (any integer type whose value fits).")]
        pub fn $name(&self, key: &str) -> Result<$t, MetaError> {
            self.$opt(key)?
                .ok_or_else(|| MetaError::Missing { key: key.into() })
        }

        #[doc = concat!("Like the non-optional getter, but a missing key is `Ok(None)`.")]
        pub fn $opt(&self, key: &str) -> Result<Option<$t>, MetaError> {
            let Some(v) = self.get(key) else {
                return Ok(None);
            };
            v.as_integer()
                .and_then(|i| <$t>::try_from(i).ok())
                .map(Some)
                .ok_or_else(|| MetaError::wrong(key, $label, v.value_type()))
        }
    };
}

impl Metadata {
    /// Inserts or replaces a key, keeping first-insertion order.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        self.insert_slot(key.into(), Slot::Ready(value));
    }

    pub(crate) fn insert_lazy(&mut self, key: String, value: LazyValue) {
        self.insert_slot(key, Slot::Lazy(value));
    }

    fn insert_slot(&mut self, key: String, slot: Slot) {
        if let Some(&i) = self.index.get(&key) {
            self.entries[i].1 = slot;
        } else {
            self.index.insert(key.clone(), self.entries.len());
            self.entries.push((key, slot));
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.index.remove(key)?;
        let (_, slot) = self.entries.remove(i);
        for idx in self.index.values_mut() {
            if *idx > i {
                *idx -= 1;
            }
        }
        Some(slot.into_value())
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| self.entries[i].1.value())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.value()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    int_getter!(get_u8, get_u8_opt, u8, "u8");
    int_getter!(get_u32, get_u32_opt, u32, "u32");
    int_getter!(get_i32, get_i32_opt, i32, "i32");
    int_getter!(get_u64, get_u64_opt, u64, "u64");
    int_getter!(get_i64, get_i64_opt, i64, "i64");
    int_getter!(get_usize, get_usize_opt, usize, "an unsigned integer");

    /// A float (f32 or f64; integers are accepted too, as GGUF writers vary).
    pub fn get_f32(&self, key: &str) -> Result<f32, MetaError> {
        self.get_f32_opt(key)?
            .ok_or_else(|| MetaError::Missing { key: key.into() })
    }

    pub fn get_f32_opt(&self, key: &str) -> Result<Option<f32>, MetaError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        v.as_f64()
            .map(|f| Some(f as f32))
            .ok_or_else(|| MetaError::wrong(key, "a number", v.value_type()))
    }

    pub fn get_bool(&self, key: &str) -> Result<bool, MetaError> {
        self.get_bool_opt(key)?
            .ok_or_else(|| MetaError::Missing { key: key.into() })
    }

    pub fn get_bool_opt(&self, key: &str) -> Result<Option<bool>, MetaError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(MetaError::wrong(key, "bool", v.value_type())),
        }
    }

    pub fn get_str(&self, key: &str) -> Result<&str, MetaError> {
        self.get_str_opt(key)?
            .ok_or_else(|| MetaError::Missing { key: key.into() })
    }

    pub fn get_str_opt(&self, key: &str) -> Result<Option<&str>, MetaError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(MetaError::wrong(key, "string", v.value_type())),
        }
    }

    pub fn get_array(&self, key: &str) -> Result<&Array, MetaError> {
        self.get_array_opt(key)?
            .ok_or_else(|| MetaError::Missing { key: key.into() })
    }

    pub fn get_array_opt(&self, key: &str) -> Result<Option<&Array>, MetaError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(MetaError::wrong(key, "array", v.value_type())),
        }
    }

    pub fn get_str_array(&self, key: &str) -> Result<&[String], MetaError> {
        match self.get_array(key)? {
            Array::String(v) => Ok(v),
            a => Err(MetaError::WrongType {
                key: key.into(),
                expected: "array of string",
                found: format!("array of {}", a.elem_type()),
            }),
        }
    }

    pub fn get_f32_array(&self, key: &str) -> Result<&[f32], MetaError> {
        match self.get_array(key)? {
            Array::F32(v) => Ok(v),
            a => Err(MetaError::WrongType {
                key: key.into(),
                expected: "array of f32",
                found: format!("array of {}", a.elem_type()),
            }),
        }
    }

    /// Integer array of any integer element type, widened to i64.
    pub fn get_int_array(&self, key: &str) -> Result<Vec<i64>, MetaError> {
        let a = self.get_array(key)?;
        a.to_i64_vec().ok_or_else(|| MetaError::WrongType {
            key: key.into(),
            expected: "array of integers",
            found: format!("array of {}", a.elem_type()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_convert_only_when_lossless() {
        let mut m = Metadata::default();
        m.insert("a", Value::U32(7));
        m.insert("neg", Value::I32(-1));
        m.insert("s", Value::String("x".into()));
        assert_eq!(m.get_u32("a"), Ok(7));
        assert_eq!(m.get_u64("a"), Ok(7));
        assert_eq!(m.get_f32("a"), Ok(7.0));
        assert!(matches!(m.get_u32("neg"), Err(MetaError::WrongType { .. })));
        assert_eq!(
            m.get_u32("s").unwrap_err().to_string(),
            "metadata key 's' holds string, expected u32"
        );
        assert_eq!(
            m.get_str("nope").unwrap_err().to_string(),
            "metadata key 'nope' is missing"
        );
        assert_eq!(m.get_u32_opt("nope"), Ok(None));
    }

    #[test]
    fn insert_replace_and_remove_keep_order() {
        let mut m = Metadata::default();
        m.insert("a", Value::U8(1));
        m.insert("b", Value::U8(2));
        m.insert("c", Value::U8(3));
        m.insert("a", Value::U8(9));
        assert_eq!(m.remove("b"), Some(Value::U8(2)));
        let keys: Vec<_> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "c"]);
        assert_eq!(m.get_u8("c"), Ok(3));
        assert_eq!(m.get_u8("a"), Ok(9));
    }
}
