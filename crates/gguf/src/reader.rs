//! Reading GGUF v2/v3: header, metadata, tensor index, and zero-copy views of tensor data.
//!
//! Every length and offset read from the file is checked against the bytes that remain before
//! anything is allocated or sliced, so a hostile file yields an error, never a panic or a read
//! outside the mapping.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use ms_quant::GgmlType;

use crate::GgufError;
use crate::metadata::{Array, LazyValue, Metadata, Value, ValueType};

pub const DEFAULT_ALIGNMENT: u64 = 32;
/// GGML tensors have at most four dimensions.
pub const MAX_DIMS: usize = 4;
/// Arrays nested deeper than this are rejected (no real file nests more than twice).
const MAX_ARRAY_DEPTH: usize = 8;
/// String arrays at least this long are validated at open and materialized on first access.
const LAZY_MIN_STRINGS: u64 = 1024;

/// One tensor's index entry. `offset` is absolute within the file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions innermost first, as GGML stores them (`dims[0]` is the row length).
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Absolute byte offset of the data in the file.
    pub offset: u64,
    /// Bytes of data.
    pub size: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Values per row (the innermost dimension).
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows (product of the outer dimensions).
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }
}

enum Backing {
    Mmap(Mmap),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Backing {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Deref for Backing {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// An open GGUF file: metadata and tensor index parsed, tensor data left in the mapping.
pub struct GgufFile {
    path: PathBuf,
    bytes: Arc<Backing>,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Memory-maps and indexes `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| GgufError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if meta.is_dir() {
            return Err(io(std::io::Error::other("is a directory, not a GGUF file")));
        }
        let bytes = if meta.len() == 0 {
            Backing::Owned(Vec::new())
        } else {
            // SAFETY: the mapping is read-only. Like every mmap-based model loader we rely on
            // the file not being truncated by another process while it is open.
            Backing::Mmap(unsafe { Mmap::map(&file) }.map_err(io)?)
        };
        Self::parse(path, bytes)
    }

    /// Indexes a file held in memory (tests, fuzzing, downloads in flight).
    pub fn from_bytes(name: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self, GgufError> {
        Self::parse(name.into(), Backing::Owned(bytes))
    }

    fn parse(path: PathBuf, bytes: Backing) -> Result<Self, GgufError> {
        let bytes = Arc::new(bytes);
        let mut c = Cursor {
            buf: &bytes,
            pos: 0,
            path: &path,
        };
        let magic = c.take(4, "the magic bytes")?;
        if magic != b"GGUF" {
            return Err(GgufError::BadMagic {
                path: path.clone(),
                found: magic.to_vec(),
            });
        }
        let version = c.u32("the version")?;
        if version != 2 && version != 3 {
            let swapped = version.swap_bytes();
            return Err(if swapped == 2 || swapped == 3 {
                c.invalid(
                    4,
                    format!(
                        "this is a big-endian GGUF v{swapped} file; only little-endian files \
                         are supported (convert it with llama.cpp's gguf tools)"
                    ),
                )
            } else {
                GgufError::UnsupportedVersion {
                    path: path.clone(),
                    version,
                }
            });
        }
        let n_tensors = c.u64("the tensor count")?;
        let n_kv = c.u64("the metadata count")?;
        // A key/value needs at least 8 (key length) + 4 (type) + 1 bytes; a tensor entry
        // at least 8 + 4 + 4 + 8.
        c.check_count(n_kv, 13, "metadata entries")?;
        c.check_count(n_tensors, 24, "tensor entries")?;

        let mut metadata = Metadata::default();
        let mut alignment_at = 0;
        for _ in 0..n_kv {
            let at = c.pos;
            let key = c.string("a metadata key")?;
            if metadata.contains_key(&key) {
                return Err(c.invalid(at, format!("duplicate metadata key '{key}'")));
            }
            if key == "general.alignment" {
                alignment_at = at;
            }
            let value_at = c.pos;
            let parsed = c.value_type("the value type").and_then(|ty| {
                if ty == ValueType::Array && c.is_long_string_array() {
                    let array_at = c.pos;
                    c.validate_string_array()?;
                    let shared: Arc<dyn AsRef<[u8]> + Send + Sync> = bytes.clone();
                    Ok(Err(LazyValue::new(shared, array_at, materialize_array)))
                } else {
                    c.value(ty, 0).map(Ok)
                }
            });
            match parsed.map_err(|e| in_key(e, &key, value_at))? {
                Ok(value) => metadata.insert(key, value),
                Err(lazy) => metadata.insert_lazy(key, lazy),
            }
        }

        let alignment =
            crate::writer::alignment_of(&metadata).map_err(|what| c.invalid(alignment_at, what))?;

        let mut raw = Vec::with_capacity(n_tensors as usize);
        let mut by_name = HashMap::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let at = c.pos;
            let name = c.string("a tensor name")?;
            let n_dims = c.u32("a tensor's dimension count")? as usize;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(bad_tensor(
                    &path,
                    &name,
                    format!("has {n_dims} dimensions; GGML tensors have 1 to {MAX_DIMS}"),
                ));
            }
            let mut dims = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                dims.push(c.u64("a tensor dimension")?);
            }
            let ty_id = c.u32("a tensor type")?;
            let offset = c.u64("a tensor offset")?;
            let ty =
                GgmlType::from_id(ty_id).map_err(|e| bad_tensor(&path, &name, format!("{e}")))?;
            if by_name.insert(name.clone(), raw.len()).is_some() {
                return Err(c.invalid(at, format!("duplicate tensor name '{name}'")));
            }
            raw.push((name, dims, ty, offset));
        }

        let data_offset = align_up(c.pos as u64, alignment);
        let file_len = bytes.len() as u64;
        if data_offset > file_len && !raw.is_empty() {
            return Err(GgufError::Truncated {
                path: path.clone(),
                offset: file_len,
                needed: data_offset - file_len,
                what: "the padding before tensor data".into(),
            });
        }
        let mut tensors = Vec::with_capacity(raw.len());
        for (name, dims, ty, rel) in raw {
            let size = tensor_size(&dims, ty).map_err(|what| bad_tensor(&path, &name, what))?;
            if rel % alignment != 0 {
                return Err(bad_tensor(
                    &path,
                    &name,
                    format!("data offset {rel} is not a multiple of the alignment {alignment}"),
                ));
            }
            let offset = data_offset.checked_add(rel);
            let end = offset.and_then(|o| o.checked_add(size));
            match (offset, end) {
                (Some(offset), Some(end)) if end <= file_len => tensors.push(TensorInfo {
                    name,
                    dims,
                    ty,
                    offset,
                    size,
                }),
                _ => {
                    return Err(bad_tensor(
                        &path,
                        &name,
                        format!(
                            "data (offset {rel} + {size} bytes after the data start at {data_offset}) \
                             runs past the end of the file ({file_len} bytes)"
                        ),
                    ));
                }
            }
        }

        Ok(GgufFile {
            path,
            bytes,
            version,
            alignment,
            data_offset,
            metadata,
            tensors,
            by_name,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute offset where tensor data starts.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    pub fn file_size(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).and_then(|&i| self.tensors.get(i))
    }

    /// The raw bytes of a tensor, borrowed from the mapping.
    ///
    /// # Panics
    /// If `info` does not describe bytes of this file (it comes from another file's index):
    /// that is a programming error, as every entry of [`tensors`](Self::tensors) was checked
    /// against the file length when the index was read.
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        info.offset
            .checked_add(info.size)
            .and_then(|end| self.bytes.get(info.offset as usize..end as usize))
            .unwrap_or_else(|| {
                panic!(
                    "tensor '{}' ({} bytes at {}) is not part of {}",
                    info.name,
                    info.size,
                    info.offset,
                    self.path.display()
                )
            })
    }

    /// The whole file's bytes (the mapping).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `general.architecture`, the key every model file carries.
    pub fn architecture(&self) -> Option<&str> {
        self.metadata
            .get_str_opt("general.architecture")
            .ok()
            .flatten()
    }
}

/// Says which metadata key (starting at `at`) an error occurred in.
fn in_key(e: GgufError, key: &str, at: usize) -> GgufError {
    match e {
        GgufError::Truncated {
            path,
            offset,
            needed,
            what,
        } => GgufError::Truncated {
            path,
            offset,
            needed,
            what: format!("{what} of metadata key '{key}' (at byte {at})"),
        },
        GgufError::Invalid { path, offset, what } => GgufError::Invalid {
            path,
            offset,
            what: format!("metadata key '{key}': {what}"),
        },
        other => other,
    }
}

fn bad_tensor(path: &Path, name: &str, what: String) -> GgufError {
    GgufError::BadTensor {
        path: path.to_path_buf(),
        tensor: name.to_string(),
        what,
    }
}

pub(crate) fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Bytes of a tensor of `dims` and `ty`, checking that rows are whole blocks and nothing
/// overflows (every partial product, so a zero dimension cannot hide an overflow).
pub(crate) fn tensor_size(dims: &[u64], ty: GgmlType) -> Result<u64, String> {
    let overflow = || format!("dimensions {dims:?} overflow");
    let (&row_len, outer) = dims.split_first().ok_or("has no dimensions")?;
    let mut n: u64 = row_len;
    let mut rows: u64 = 1;
    for &d in outer {
        n = n.checked_mul(d).ok_or_else(overflow)?;
        rows = rows.checked_mul(d).ok_or_else(overflow)?;
    }
    if n > i64::MAX as u64 {
        return Err(overflow());
    }
    let row = ty.row_bytes(row_len).ok_or_else(|| {
        format!(
            "row length {row_len} is not a multiple of the {ty} block size {}",
            ty.block_len()
        )
    })?;
    row.checked_mul(rows).ok_or_else(overflow)
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                path: self.path.to_path_buf(),
                offset: self.pos as u64,
                needed: (n - self.remaining()) as u64,
                what: what.to_string(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn invalid(&self, offset: usize, what: String) -> GgufError {
        GgufError::Invalid {
            path: self.path.to_path_buf(),
            offset: offset as u64,
            what,
        }
    }

    /// Rejects a count whose entries could not fit in the bytes left, before allocating.
    fn check_count(&self, n: u64, min_entry: usize, what: &str) -> Result<(), GgufError> {
        if n > (self.remaining() / min_entry) as u64 {
            return Err(self.invalid(
                self.pos,
                format!(
                    "{n} {what} cannot fit in the {} bytes that remain",
                    self.remaining()
                ),
            ));
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        Ok(self
            .take(N, what)?
            .try_into()
            .expect("take returned N bytes"))
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        self.str(what).map(str::to_owned)
    }

    /// A string borrowed from the buffer, validated.
    fn str(&mut self, what: &str) -> Result<&'a str, GgufError> {
        let at = self.pos;
        let len = self.u64(what)?;
        if len > self.remaining() as u64 {
            return Err(GgufError::Truncated {
                path: self.path.to_path_buf(),
                offset: self.pos as u64,
                needed: len - self.remaining() as u64,
                what: format!("{what} of {len} bytes"),
            });
        }
        let bytes = self.take(len as usize, what)?;
        std::str::from_utf8(bytes)
            .map_err(|e| self.invalid(at, format!("{what} is not valid UTF-8: {e}")))
    }

    /// Whether an array value starting here holds at least `LAZY_MIN_STRINGS` strings.
    fn is_long_string_array(&self) -> bool {
        let head = self.buf.get(self.pos..self.pos + 12);
        head.is_some_and(|h| {
            h[..4] == ValueType::String.id().to_le_bytes()
                && u64::from_le_bytes(h[4..].try_into().unwrap_or([0; 8])) >= LAZY_MIN_STRINGS
        })
    }

    /// Checks an array of strings (lengths within the file, UTF-8) without keeping it.
    fn validate_string_array(&mut self) -> Result<(), GgufError> {
        self.value_type("an array's element type")?;
        let n = self.u64("an array's length")?;
        self.check_count(n, 8, "array elements")?;
        let start = self.pos;
        if let Some(end) = scan_strings(self.buf, start, n) {
            self.pos = end;
            return Ok(());
        }
        // Something is wrong: read again entry by entry for a precise error.
        for _ in 0..n {
            self.str("an array string")?;
        }
        Ok(())
    }

    fn value_type(&mut self, what: &str) -> Result<ValueType, GgufError> {
        let at = self.pos;
        let id = self.u32(what)?;
        ValueType::from_id(id).ok_or_else(|| self.invalid(at, format!("unknown value type {id}")))
    }

    fn value(&mut self, ty: ValueType, depth: usize) -> Result<Value, GgufError> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>("a u8")?[0]),
            ValueType::I8 => Value::I8(self.array::<1>("an i8")?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array("a u16")?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array("an i16")?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array("a u32")?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array("an i32")?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array("an f32")?)),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array("a u64")?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array("an i64")?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array("an f64")?)),
            ValueType::Bool => {
                let at = self.pos;
                match self.array::<1>("a bool")?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => return Err(self.invalid(at, format!("bool byte is {b}, not 0 or 1"))),
                }
            }
            ValueType::String => Value::String(self.string("a string value")?),
            ValueType::Array => Value::Array(self.array_value(depth)?),
        })
    }

    fn array_value(&mut self, depth: usize) -> Result<Array, GgufError> {
        let at = self.pos;
        if depth >= MAX_ARRAY_DEPTH {
            return Err(self.invalid(at, format!("arrays nested deeper than {MAX_ARRAY_DEPTH}")));
        }
        let ty = self.value_type("an array's element type")?;
        let n = self.u64("an array's length")?;
        // Strings and arrays take at least 8 bytes (their length) per element.
        let min = ty.fixed_size().unwrap_or(8);
        self.check_count(n, min, "array elements")?;
        let n = n as usize;
        macro_rules! fixed {
            ($variant:ident, $t:ty) => {{
                let raw = self.take(n * std::mem::size_of::<$t>(), "array data")?;
                Array::$variant(
                    raw.chunks_exact(std::mem::size_of::<$t>())
                        .map(|c| <$t>::from_le_bytes(c.try_into().unwrap()))
                        .collect(),
                )
            }};
        }
        Ok(match ty {
            ValueType::U8 => Array::U8(self.take(n, "array data")?.to_vec()),
            ValueType::I8 => Array::I8(
                self.take(n, "array data")?
                    .iter()
                    .map(|&b| b as i8)
                    .collect(),
            ),
            ValueType::U16 => fixed!(U16, u16),
            ValueType::I16 => fixed!(I16, i16),
            ValueType::U32 => fixed!(U32, u32),
            ValueType::I32 => fixed!(I32, i32),
            ValueType::F32 => fixed!(F32, f32),
            ValueType::U64 => fixed!(U64, u64),
            ValueType::I64 => fixed!(I64, i64),
            ValueType::F64 => fixed!(F64, f64),
            ValueType::Bool => {
                let raw = self.take(n, "array data")?;
                let mut v = Vec::with_capacity(n);
                for (i, &b) in raw.iter().enumerate() {
                    match b {
                        0 => v.push(false),
                        1 => v.push(true),
                        _ => {
                            return Err(self.invalid(
                                self.pos - n + i,
                                format!("bool byte is {b}, not 0 or 1"),
                            ));
                        }
                    }
                }
                Array::Bool(v)
            }
            ValueType::String => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.string("an array string")?);
                }
                Array::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    match self.value(ValueType::Array, depth + 1)? {
                        Value::Array(a) => v.push(a),
                        _ => unreachable!("value(Array) returns an array"),
                    }
                }
                Array::Array(v)
            }
        })
    }
}

/// Walks `n` length-prefixed strings from `pos`; the end position if all lie within `buf`
/// and are UTF-8. A tight loop for vocabularies of hundreds of thousands of short strings.
fn scan_strings(buf: &[u8], mut pos: usize, n: u64) -> Option<usize> {
    for _ in 0..n {
        let len_bytes: [u8; 8] = buf.get(pos..pos.checked_add(8)?)?.try_into().ok()?;
        let len = usize::try_from(u64::from_le_bytes(len_bytes)).ok()?;
        let start = pos + 8;
        let end = start.checked_add(len)?;
        if !is_utf8(buf.get(start..end)?) {
            return None;
        }
        pos = end;
    }
    Some(pos)
}

/// UTF-8 validity (the rules of `std::str::from_utf8`: no overlong forms, no surrogates,
/// nothing above U+10FFFF), cheaper than the standard validator on strings of a few bytes.
pub(crate) fn is_utf8(b: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c < 0x80 {
            i += 1;
            continue;
        }
        let cont = |k: usize| b.get(i + k).is_some_and(|&x| x & 0xC0 == 0x80);
        let second = b.get(i + 1).copied().unwrap_or(0);
        let width = match c {
            0xC2..=0xDF => 2,
            0xE0 if (0xA0..=0xBF).contains(&second) => 3,
            0xE1..=0xEC | 0xEE..=0xEF => 3,
            0xED if (0x80..=0x9F).contains(&second) => 3,
            0xF0 if (0x90..=0xBF).contains(&second) => 4,
            0xF1..=0xF3 => 4,
            0xF4 if (0x80..=0x8F).contains(&second) => 4,
            _ => return false,
        };
        if !(1..width).all(cont) {
            return false;
        }
        i += width;
    }
    true
}

/// Parses an array value that [`Cursor::validate_string_array`] accepted when the file was
/// opened. The same checks run again; should the bytes have changed on disk since (the
/// mapping is shared), the array ends at the first bad entry instead of panicking.
fn materialize_array(buf: &[u8], at: usize) -> Value {
    let path = Path::new("");
    let mut c = Cursor { buf, pos: at, path };
    let parsed = c.value_type("").and_then(|_| c.u64("")).map(|n| {
        let mut v = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(buf.len() / 8));
        for _ in 0..n {
            match c.string("") {
                Ok(s) => v.push(s),
                Err(e) => {
                    // Fuzzing and tests run with debug assertions: a disagreement between the
                    // validation at open and this parse must surface there.
                    debug_assert!(false, "array validated at open fails to parse: {e}");
                    break;
                }
            }
        }
        v
    });
    Value::Array(Array::String(parsed.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::is_utf8;

    #[test]
    fn utf8_check_agrees_with_std_on_every_short_sequence() {
        // Every 1- and 2-byte sequence, and every 3- and 4-byte sequence whose later bytes
        // are drawn from the values where the rules change.
        let edges: Vec<u8> = vec![
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
            0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
        ];
        let check = |s: &[u8]| {
            assert_eq!(is_utf8(s), std::str::from_utf8(s).is_ok(), "{s:02x?}");
        };
        for a in 0..=255u8 {
            check(&[a]);
            for b in 0..=255u8 {
                check(&[a, b]);
                for &c in &edges {
                    check(&[a, b, c]);
                    for &d in &edges {
                        check(&[a, b, c, d]);
                    }
                }
            }
        }
        check("▁hé €𝄞".as_bytes());
    }
}
