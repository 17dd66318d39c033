//! The HTTP layer's codes (`MG05xx`): what the control plane's server answers before a request
//! reaches the registry (malformed JSON, a missing token, an unknown route, limits) and what
//! its client says when the server cannot be reached or answers something that is not the
//! error shape. The catalog of every `MG` code concatenates [`TABLE`].

use crate::codes::CodeInfo;

macro_rules! codes {
    ($( $(#[$doc:meta])* $id:ident = $code:literal $title:literal $text:literal ;)*) => {
        $( $(#[$doc])* pub const $id: &str = $code; )*
        /// Every HTTP-layer code with its explanation, in code order.
        pub const TABLE: &[CodeInfo] = &[ $( CodeInfo {
            code: $code,
            title: $title,
            explanation: $text,
        }, )* ];
    };
}

codes! {
    /// The body is not JSON, or not the record the route expects.
    BAD_JSON = "MG0501" "The request body is not valid JSON, or not the expected record."
    "The request body is not valid JSON, or a field is missing, unknown or of the wrong type. The error's `pointer` names the field (a JSON pointer into the body) and the message the line and column for syntax errors. Send the record the API documents (GET /openapi.json), camelCase field names.";
    /// The body has the wrong `Content-Type`.
    BAD_CONTENT_TYPE = "MG0502" "The request body has the wrong Content-Type."
    "JSON routes need `Content-Type: application/json`; `POST /artifact/upload` takes raw bytes (any other type) or `multipart/form-data` with a `metadata` part (JSON) then a `file` part.";
    /// No usable credentials on a call that needs them.
    NO_CREDENTIALS = "MG0503" "The call needs credentials (a bearer token or a client certificate)."
    "Every call but GET /healthz and GET /openapi.json needs `Authorization: Bearer TOKEN` (a token from `modelspec registry token create`), or, when the server requires client certificates, a certificate whose subject CN has a role (`--cert-role CN=ROLE`).";
    /// No such route.
    NO_ROUTE = "MG0504" "No route of the API has this path."
    "The method and path are not part of the API. GET /openapi.json lists every route.";
    /// A declared size above the limit, or a JSON body above the JSON limit.
    BODY_TOO_LARGE = "MG0505" "The request body or the declared size is above a limit."
    "A JSON body may be at most the server's JSON limit (16 MiB by default), and an artifact at most the blob store's size limit; a declared `Content-Length` above it is refused before any byte is read. Large files go through POST /artifact/upload or a resumable upload session.";
    /// A query parameter that cannot be read.
    BAD_QUERY = "MG0506" "A query parameter cannot be read."
    "A query parameter has the wrong type or an unknown value (the message names it). GET /openapi.json lists each route's parameters.";
    /// A path segment that is not an id.
    BAD_PATH = "MG0507" "A path segment is not the digest the route expects."
    "Artifacts and datasets are addressed by `sha256:` followed by 64 lowercase hex digits; the path segment is something else (or not valid percent-encoding). Other ids (model names, versions, upload ids) are looked up as given and are simply not found when they name nothing.";
    /// A `Range` or `Content-Range` header that cannot be read.
    BAD_RANGE = "MG0508" "A Range, Content-Range or upload offset header cannot be used."
    "`GET /artifact/{id}/content` takes one range: `Range: bytes=START-END`, `bytes=START-` or `bytes=-SUFFIX`. `PATCH /artifact/uploads/{id}` takes `Content-Range: bytes START-END/*` (or `Upload-Offset: START`), START being the session's offset.";
    /// The request headers are above the limit.
    HEADERS_TOO_LARGE = "MG0509" "The request headers are too large."
    "The request's headers together are larger than the server accepts (32 KiB and 100 headers by default). Send fewer or shorter headers.";
    /// The body stopped arriving.
    BODY_TIMEOUT = "MG0510" "The request body stopped arriving."
    "No byte of the request body arrived for longer than the server's body timeout; the request was abandoned. A resumable upload continues from `GET /artifact/uploads/{id}`'s offset.";
    /// The client certificate's subject has no role.
    UNMAPPED_CERTIFICATE = "MG0511" "The client certificate's subject CN has no role."
    "The client certificate is valid but its subject CN is not given a role by `--cert-role CN=ROLE`; add one, or send a bearer token.";
    /// The server refuses to listen where it was told to.
    BIND_REFUSED = "MG0512" "The server refuses to listen on that address without TLS."
    "Without TLS (`--tls-cert`/`--tls-key`) the server binds only loopback addresses, since tokens would cross the network in clear text. Give TLS files, or `--insecure` to accept that risk (e.g. behind a TLS-terminating proxy).";
    /// The TLS files cannot be used.
    BAD_TLS = "MG0513" "The TLS files or certificates cannot be used."
    "`--tls-cert` must be a PEM certificate chain, `--tls-key` its PEM private key, `--client-ca` PEM CA certificates; both `--tls-cert` and `--tls-key` are needed, and `--client-ca` needs them.";
    /// The control plane cannot be reached.
    UNREACHABLE = "MG0514" "The control plane cannot be reached."
    "The client could not connect to the registry URL, or the connection broke. Check that `modelspec registry serve` runs there, the URL's scheme (http/https) and port, and the network.";
    /// The server answered something that is not the API's.
    BAD_RESPONSE = "MG0515" "The server's answer is not the API's."
    "The server's answer is not what the API documents (not JSON, or not the error shape). The URL may point at something other than `modelspec registry serve`, or at a different version of it.";
    /// The method is not allowed on the route.
    BAD_METHOD = "MG0516" "The route does not take this method."
    "The path exists but not with this method. GET /openapi.json lists the methods of every route.";
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_in_range_and_sorted() {
        let mut last = "";
        for c in super::TABLE {
            assert!(
                c.code.starts_with("MG05") && c.code.len() == 6,
                "{}",
                c.code
            );
            assert!(c.code > last, "{} out of order", c.code);
            assert!(!c.title.is_empty() && !c.explanation.is_empty());
            last = c.code;
        }
    }
}
