//! Bearer tokens and roles. A token is `mgt_<id>_<secret>`: the id (16 hex digits) finds the
//! row, the secret (256 random bits, 64 hex digits) is shown once at creation and stored only
//! as its sha256, compared in constant time. Roles nest: reader < writer < approver < admin.

use sqlx::Row;

use crate::codes;
use crate::db::{Db, Tx, db_err};
use crate::digest::Digest;
use crate::entity::{Principal, Role, TokenInfo};
use crate::error::{ErrorKind, RegistryError, Result};

/// `n` random bytes from the operating system, as hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the operating system's random source works");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The principal of the embedded registry: the OS user, as admin (they own the files).
pub fn os_principal() -> Principal {
    Principal {
        name: crate::locate::os_principal_name(),
        role: Role::Admin,
    }
}

pub fn role_str(r: Role) -> &'static str {
    match r {
        Role::Reader => "reader",
        Role::Writer => "writer",
        Role::Approver => "approver",
        Role::Admin => "admin",
    }
}

pub fn parse_role(s: &str) -> Result<Role> {
    Ok(match s {
        "reader" => Role::Reader,
        "writer" => Role::Writer,
        "approver" => Role::Approver,
        "admin" => Role::Admin,
        _ => {
            return Err(RegistryError::new(
                ErrorKind::Internal,
                codes::MG0001,
                format!("unknown role {s:?} in the database"),
            ));
        }
    })
}

/// Refuses the call unless `who` has at least `needed`.
pub fn require(who: &Principal, needed: Role, what: &str) -> Result<()> {
    if who.role >= needed {
        return Ok(());
    }
    Err(RegistryError::new(
        ErrorKind::Forbidden,
        codes::MG0403,
        format!(
            "{what} needs the {} role; {} is {}",
            role_str(needed),
            who.name,
            role_str(who.role)
        ),
    )
    .hint("ask an admin for a token with that role (modelspec registry token create)"))
}

fn hash_secret(secret: &str) -> String {
    Digest::of(secret.as_bytes()).to_string()
}

/// Equal without an early exit, so that timing does not tell how much of a hash matched.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn unauthenticated(msg: &str) -> RegistryError {
    RegistryError::new(ErrorKind::Unauthenticated, codes::MG0401, msg.to_string())
        .hint("pass a token with --token or MODELSPEC_REGISTRY_TOKEN (Authorization: Bearer …)")
}

/// Who holds `token` (the whole `mgt_…` string). Unknown, malformed and revoked tokens are all
/// refused; the secret never appears in an error.
pub async fn authenticate(db: &Db, token: &str) -> Result<Principal> {
    let token = token.trim();
    let Some((id, secret)) = token
        .strip_prefix("mgt_")
        .and_then(|rest| rest.split_once('_'))
    else {
        return Err(unauthenticated("the token is not a registry token (mgt_…)"));
    };
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unauthenticated("the token is not a registry token (mgt_…)"));
    }
    let row =
        sqlx::query("SELECT name, role, secret_hash, revoked_at FROM tokens WHERE token_id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await
            .map_err(db_err)?;
    let Some(row) = row else {
        return Err(unauthenticated("unknown token"));
    };
    let stored: String = row.try_get("secret_hash").map_err(db_err)?;
    if !ct_eq(stored.as_bytes(), hash_secret(secret).as_bytes()) {
        return Err(unauthenticated("unknown token"));
    }
    let revoked: Option<String> = row.try_get("revoked_at").map_err(db_err)?;
    if let Some(at) = revoked {
        return Err(RegistryError::new(
            ErrorKind::Unauthenticated,
            codes::MG0402,
            format!("token {id} was revoked at {at}"),
        ));
    }
    Ok(Principal {
        name: row.try_get("name").map_err(db_err)?,
        role: parse_role(&row.try_get::<String, _>("role").map_err(db_err)?)?,
    })
}

/// Token names: what `createdBy` will say for its holder.
pub fn validate_token_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
        && !name.starts_with("os:");
    if ok {
        return Ok(());
    }
    Err(RegistryError::new(
        ErrorKind::Invalid,
        codes::MG0405,
        format!("token name {name:?} is not allowed"),
    )
    .at("/name")
    .hint("1 to 128 characters of letters, digits, `.`, `_`, `-`, `@`"))
}

/// Inserts a new token; returns the secret (shown once) and the info.
pub(crate) async fn insert(
    tx: &mut Tx,
    name: &str,
    role: Role,
    by: &str,
    at: &str,
) -> Result<(String, TokenInfo)> {
    let id = random_hex(8);
    let secret = random_hex(32);
    sqlx::query(
        "INSERT INTO tokens (token_id, name, role, secret_hash, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(name)
    .bind(role_str(role))
    .bind(hash_secret(&secret))
    .bind(at)
    .bind(by)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    let info = TokenInfo {
        token_id: id.clone(),
        name: name.into(),
        role,
        created_at: at.into(),
        created_by: by.into(),
        revoked_at: None,
    };
    Ok((format!("mgt_{id}_{secret}"), info))
}

fn info_from_row(row: &sqlx::any::AnyRow) -> Result<TokenInfo> {
    Ok(TokenInfo {
        token_id: row.try_get("token_id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        role: parse_role(&row.try_get::<String, _>("role").map_err(db_err)?)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        created_by: row.try_get("created_by").map_err(db_err)?,
        revoked_at: row.try_get("revoked_at").map_err(db_err)?,
    })
}

const INFO_COLS: &str = "token_id, name, role, created_at, created_by, revoked_at";

pub(crate) async fn get(tx: &mut Tx, id: &str) -> Result<TokenInfo> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INFO_COLS} FROM tokens WHERE token_id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?;
    match row {
        Some(r) => info_from_row(&r),
        None => Err(RegistryError::new(
            ErrorKind::NotFound,
            codes::MG0404,
            format!("no token {id:?}"),
        )
        .hint("modelspec registry token list shows the token ids")),
    }
}

pub(crate) async fn mark_revoked(tx: &mut Tx, id: &str, at: &str) -> Result<()> {
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE token_id = $2")
        .bind(at)
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list(db: &Db) -> Result<Vec<TokenInfo>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INFO_COLS} FROM tokens ORDER BY created_at, token_id"
    )))
    .fetch_all(db.pool())
    .await
    .map_err(db_err)?;
    rows.iter().map(info_from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest_and_compare_in_constant_time() {
        let w = Principal {
            name: "ci".into(),
            role: Role::Writer,
        };
        assert!(require(&w, Role::Reader, "x").is_ok());
        assert!(require(&w, Role::Writer, "x").is_ok());
        let e = require(&w, Role::Approver, "promote").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"a", b"ab"));
        assert_eq!(random_hex(32).len(), 64);
        assert_ne!(random_hex(32), random_hex(32));
    }
}
