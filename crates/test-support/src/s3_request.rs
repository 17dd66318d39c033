//! One AWS Signature Version 4 request without a body over a plain TCP connection: what the
//! SeaweedFS harness needs to create buckets and to see that the S3 gateway authenticates
//! (tests themselves use a real S3 client, object_store). Kept to the few lines SigV4 takes so
//! that test-support needs no HTTP or AWS crate.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Where and as whom to send.
pub(crate) struct S3Target<'a> {
    /// `127.0.0.1:PORT`
    pub host: &'a str,
    pub region: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)` of a UTC time.
fn amz_dates(now: SystemTime) -> (String, String) {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let date = format!("{year:04}{month:02}{day:02}");
    let time = format!(
        "{date}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    (date, time)
}

/// The `Authorization` header of a body-less request to `path` (already URI-encoded, no query).
fn authorization(t: &S3Target, method: &str, path: &str, date: &str, time: &str) -> String {
    let empty = hex(&Sha256::digest(b""));
    let signed_headers = "host;x-amz-content-sha256;x-amz-date";
    let canonical = format!(
        "{method}\n{path}\n\nhost:{}\nx-amz-content-sha256:{empty}\nx-amz-date:{time}\n\n\
         {signed_headers}\n{empty}",
        t.host
    );
    let scope = format!("{date}/{}/s3/aws4_request", t.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{time}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{}", t.secret_key).as_bytes(), date.as_bytes());
    for part in [t.region, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={}",
        t.access_key,
        hex(&hmac_sha256(&key, to_sign.as_bytes()))
    )
}

/// Sends a signed body-less request; returns the status code and the body.
pub(crate) fn send(t: &S3Target, method: &str, path: &str) -> io::Result<(u16, String)> {
    let (date, time) = amz_dates(SystemTime::now());
    let auth = authorization(t, method, path, &date, &time);
    let mut stream = TcpStream::connect(t.host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nx-amz-content-sha256: {}\r\n\
         x-amz-date: {time}\r\nAuthorization: {auth}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n",
        t.host,
        hex(&Sha256::digest(b""))
    )?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    let reply = String::from_utf8_lossy(&reply);
    let status = reply
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3)?.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP reply: {reply:.200}")))?;
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // 2024-02-29 12:34:56 UTC
        assert_eq!(
            amz_dates(t),
            ("20240229".to_string(), "20240229T123456Z".to_string())
        );
    }
}
