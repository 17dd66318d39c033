//! Writing GGUF v3: metadata and tensor index first, then tensor data streamed one tensor at a
//! time, so that a quantizer never holds more than the tensor it is producing.
//!
//! The layout is the one llama.cpp and the Python `gguf` package write: tensors in index
//! order, each starting at a multiple of `general.alignment` (default 32) and padded with
//! zeros to the next multiple, the last one included. A file laid out that way is reproduced
//! byte for byte by reading it and writing it back.
//!
//! The file is written under a temporary name in the target directory and renamed only by
//! [`GgufWriter::finish`]; a writer dropped before that removes its temporary file, so a
//! failed or interrupted write never leaves a half-written model under the final name.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ms_quant::GgmlType;

use crate::GgufError;
use crate::metadata::{Array, Metadata, Value};
use crate::reader::{DEFAULT_ALIGNMENT, MAX_DIMS, TensorInfo, align_up, tensor_size};

/// The GGUF version this writer produces.
pub const WRITE_VERSION: u32 = 3;

/// A tensor as the writer needs to know it before any data: name, shape and type.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorDesc {
    pub name: String,
    /// Dimensions innermost first (`dims[0]` is the row length), as in [`TensorInfo`].
    pub dims: Vec<u64>,
    pub ty: GgmlType,
}

impl TensorDesc {
    pub fn new(name: impl Into<String>, dims: impl Into<Vec<u64>>, ty: GgmlType) -> Self {
        TensorDesc {
            name: name.into(),
            dims: dims.into(),
            ty,
        }
    }
}

impl From<&TensorInfo> for TensorDesc {
    fn from(t: &TensorInfo) -> Self {
        TensorDesc::new(t.name.clone(), t.dims.clone(), t.ty)
    }
}

/// A GGUF file being written. Create it with the complete metadata and tensor list, then
/// supply each tensor's bytes in index order ([`write_tensor`](Self::write_tensor) for a whole
/// tensor, [`write_tensor_data`](Self::write_tensor_data) for pieces of it), then
/// [`finish`](Self::finish).
pub struct GgufWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    /// Set once the file is renamed into place; until then dropping removes the temp file.
    renamed: bool,
    alignment: u64,
    /// The planned index; offsets are absolute, as in files read back.
    tensors: Vec<TensorInfo>,
    /// Index of the tensor whose data comes next.
    next: usize,
    /// Bytes of tensor `next` already written.
    written: u64,
    /// Bytes written to the file so far.
    pos: u64,
}

impl std::fmt::Debug for GgufWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufWriter")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .field("next", &self.next)
            .finish()
    }
}

/// Distinguishes temporary files of writers in the same process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

const BUF_SIZE: usize = 1 << 20;

impl GgufWriter {
    /// Validates the tensor list, creates the temporary file next to `path` and writes the
    /// header, metadata and tensor index. Alignment comes from `general.alignment` when the
    /// metadata has it.
    pub fn create(
        path: impl AsRef<Path>,
        metadata: &Metadata,
        tensors: &[TensorDesc],
    ) -> Result<Self, GgufError> {
        let path = path.as_ref().to_path_buf();
        let invalid = |what: String| GgufError::Write {
            path: path.clone(),
            what,
        };
        let alignment = alignment_of(metadata).map_err(invalid)?;

        let mut infos = Vec::with_capacity(tensors.len());
        let mut names = std::collections::HashSet::with_capacity(tensors.len());
        let mut rel = 0u64;
        for t in tensors {
            if !names.insert(t.name.as_str()) {
                return Err(invalid(format!("duplicate tensor name '{}'", t.name)));
            }
            if t.dims.is_empty() || t.dims.len() > MAX_DIMS {
                return Err(invalid(format!(
                    "tensor '{}' has {} dimensions; GGML tensors have 1 to {MAX_DIMS}",
                    t.name,
                    t.dims.len()
                )));
            }
            let size = tensor_size(&t.dims, t.ty)
                .map_err(|e| invalid(format!("tensor '{}': {e}", t.name)))?;
            infos.push(TensorInfo {
                name: t.name.clone(),
                dims: t.dims.clone(),
                ty: t.ty,
                offset: rel,
                size,
            });
            rel = rel
                .checked_add(size)
                .map(|end| align_up(end, alignment))
                .ok_or_else(|| invalid("total tensor data size overflows".into()))?;
        }

        let mut head = Vec::new();
        head.extend_from_slice(b"GGUF");
        head.extend_from_slice(&WRITE_VERSION.to_le_bytes());
        head.extend_from_slice(&(infos.len() as u64).to_le_bytes());
        head.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (key, value) in metadata.iter() {
            put_str(&mut head, key);
            head.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(&mut head, value);
        }
        for t in &infos {
            put_str(&mut head, &t.name);
            head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&t.ty.id().to_le_bytes());
            head.extend_from_slice(&t.offset.to_le_bytes());
        }
        // A file without tensors ends right after its metadata, as the Python `gguf` writer
        // leaves vocabulary-only files.
        let data_offset = if infos.is_empty() {
            head.len() as u64
        } else {
            align_up(head.len() as u64, alignment)
        };
        head.resize(data_offset as usize, 0);
        for t in &mut infos {
            t.offset += data_offset;
        }

        let (tmp, file) = create_temp(&path)?;
        let mut w = GgufWriter {
            path,
            tmp,
            out: Some(BufWriter::with_capacity(BUF_SIZE, file)),
            renamed: false,
            alignment,
            tensors: infos,
            next: 0,
            written: 0,
            pos: 0,
        };
        w.put(&head)?;
        Ok(w)
    }

    /// The final path (the file exists there only after [`finish`](Self::finish)).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// The index as it will be read back: absolute offsets and sizes of every tensor.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor whose data is expected next, `None` when all have been written.
    pub fn next_tensor(&self) -> Option<&TensorInfo> {
        self.tensors.get(self.next)
    }

    /// Writes the whole data of the next tensor, which must be `name` and take exactly its
    /// size in bytes.
    pub fn write_tensor(&mut self, name: &str, data: &[u8]) -> Result<(), GgufError> {
        let Some(t) = self.tensors.get(self.next) else {
            return Err(self.misuse(format!(
                "tensor '{name}' given, but all {} tensors are already written",
                self.tensors.len()
            )));
        };
        if t.name != name || self.written != 0 {
            return Err(self.misuse(format!(
                "tensor '{name}' given, but the next data belongs to tensor '{}' (tensors are \
                 written in index order)",
                t.name
            )));
        }
        if t.size == 0 && data.is_empty() {
            self.next += 1;
            return Ok(());
        }
        if data.len() as u64 != t.size {
            return Err(self.misuse(format!(
                "tensor '{name}' ({} {:?}) takes {} bytes, {} given",
                t.ty,
                t.dims,
                t.size,
                data.len()
            )));
        }
        self.write_tensor_data(data)
    }

    /// Appends bytes to the data of the current tensor; when a tensor is complete the next
    /// call continues with the following one. A chunk may not run past the current tensor.
    pub fn write_tensor_data(&mut self, chunk: &[u8]) -> Result<(), GgufError> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.skip_empty_tensors();
        let Some(t) = self.tensors.get(self.next) else {
            return Err(self.misuse(format!(
                "{} bytes of tensor data given after all tensors were complete",
                chunk.len()
            )));
        };
        let size = t.size;
        let left = size - self.written;
        if chunk.len() as u64 > left {
            return Err(self.misuse(format!(
                "{} bytes given for tensor '{}', which has only {left} bytes left",
                chunk.len(),
                t.name
            )));
        }
        self.put(chunk)?;
        self.written += chunk.len() as u64;
        if self.written == size {
            self.pad_to_alignment()?;
            self.next += 1;
            self.written = 0;
        }
        Ok(())
    }

    /// Tensors with no elements have no data to wait for.
    fn skip_empty_tensors(&mut self) {
        while self.tensors.get(self.next).is_some_and(|t| t.size == 0) {
            self.next += 1;
        }
    }

    fn pad_to_alignment(&mut self) -> Result<(), GgufError> {
        const ZEROS: [u8; 256] = [0; 256];
        let mut pad = align_up(self.pos, self.alignment) - self.pos;
        while pad > 0 {
            let n = pad.min(ZEROS.len() as u64);
            self.put(&ZEROS[..n as usize])?;
            pad -= n;
        }
        Ok(())
    }

    /// Flushes, syncs and renames the file into place. Fails if a tensor's data is missing.
    pub fn finish(mut self) -> Result<(), GgufError> {
        self.skip_empty_tensors();
        if let Some(t) = self.tensors.get(self.next) {
            return Err(self.misuse(format!(
                "finished before tensor '{}' was complete ({} of {} bytes written; {} tensors \
                 remain)",
                t.name,
                self.written,
                t.size,
                self.tensors.len() - self.next
            )));
        }
        let out = self.out.take().expect("writer is open until finish");
        let file = out
            .into_inner()
            .map_err(|e| io_err(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| io_err(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| io_err(&self.path, e))?;
        self.renamed = true;
        // Persist the rename itself; not every filesystem lets a directory be synced.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), GgufError> {
        let out = self.out.as_mut().expect("writer is open until finish");
        out.write_all(bytes).map_err(|e| io_err(&self.tmp, e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn misuse(&self, what: String) -> GgufError {
        GgufError::Write {
            path: self.path.clone(),
            what,
        }
    }
}

impl Drop for GgufWriter {
    fn drop(&mut self) {
        // Close before removing; a failed flush or rename in `finish` ends up here too.
        drop(self.out.take());
        if !self.renamed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

fn io_err(path: &Path, source: std::io::Error) -> GgufError {
    GgufError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `general.alignment` if present (any integer type holding a power of two), else 32.
pub(crate) fn alignment_of(metadata: &Metadata) -> Result<u64, String> {
    match metadata.get("general.alignment") {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(v) => match v.as_integer() {
            Some(a) if a > 0 && a <= 1 << 30 && (a as u64).is_power_of_two() => Ok(a as u64),
            _ => Err(format!(
                "general.alignment must be a power of two up to 2^30, found {v:?}"
            )),
        },
    }
}

fn create_temp(path: &Path) -> Result<(PathBuf, File), GgufError> {
    let name = path
        .file_name()
        .ok_or_else(|| GgufError::Write {
            path: path.to_path_buf(),
            what: "the output path has no file name".into(),
        })?
        .to_string_lossy()
        .into_owned();
    let dir = path.parent().unwrap_or(Path::new(""));
    loop {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.partial-{}-{n}", std::process::id()));
        match File::options().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(&tmp, e)),
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_str(out, s),
        Value::Array(a) => put_array(out, a),
    }
}

/// An array value: element type, length, elements (nested arrays carry their own header).
fn put_array(out: &mut Vec<u8>, a: &Array) {
    out.extend_from_slice(&a.elem_type().id().to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! le {
        ($v:expr) => {
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
        Array::Bool(v) => out.extend(v.iter().map(|&x| u8::from(x))),
        Array::U16(v) => le!(v),
        Array::I16(v) => le!(v),
        Array::U32(v) => le!(v),
        Array::I32(v) => le!(v),
        Array::F32(v) => le!(v),
        Array::U64(v) => le!(v),
        Array::I64(v) => le!(v),
        Array::F64(v) => le!(v),
        Array::String(v) => {
            for s in v {
                put_str(out, s);
            }
        }
        Array::Array(v) => {
            for inner in v {
                put_array(out, inner);
            }
        }
    }
}

/// Writes `file`'s metadata and tensors to `path` unchanged (the layout is the writer's, see
/// the module documentation).
pub fn copy(file: &crate::GgufFile, path: impl AsRef<Path>) -> Result<(), GgufError> {
    let descs: Vec<TensorDesc> = file.tensors().iter().map(TensorDesc::from).collect();
    let mut w = GgufWriter::create(path, file.metadata(), &descs)?;
    for t in file.tensors() {
        w.write_tensor(&t.name, file.tensor_data(t))?;
    }
    w.finish()
}
