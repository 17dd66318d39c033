//! Canonical JSON for digests: object keys sorted (by UTF-16 code units would be RFC 8785; our
//! keys are ASCII, so byte order is the same), no whitespace, numbers and strings as
//! serde_json writes them. The same record always hashes the same, whatever order its fields
//! were built in (the workspace's serde_json preserves insertion order).

use serde::Serialize;
use serde_json::Value;

use crate::digest::Digest;

/// The canonical text of `v`.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// sha256 of the canonical JSON of a serializable record.
pub fn digest_of<T: Serialize>(record: &T) -> Digest {
    let v = serde_json::to_value(record).expect("records serialize to JSON");
    Digest::of(to_string(&v).as_bytes())
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_matter() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,"x"],"x":null}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[1,"x"]},"b":1}"#).unwrap();
        assert_eq!(to_string(&a), r#"{"a":{"x":null,"y":[1,"x"]},"b":1}"#);
        assert_eq!(to_string(&a), to_string(&b));
    }
}
