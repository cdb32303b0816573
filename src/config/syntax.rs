//! Hand-written lexical checks for config values: item ids, WAMP URIs, WebSocket URLs and
//! Crossbar's `"$VAR"` environment references.
//!
//! Each function mirrors one regular expression of Crossbar (`common/checkconfig.py`) or
//! Autobahn (`wamp/message.py`, `websocket/util.py`); the pattern is quoted in its doc comment.
//! Called only from `config::check`.

/// A configuration item id: `^[a-z][a-z0-9_]{2,63}$` (Crossbar `_CONFIG_ITEM_ID_PAT`).
pub(super) fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (3..=64).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A web path key (web transport `paths`, universal `websocket` map): `^([a-z0-9A-Z_\-]+|/)$`
/// (Crossbar `_WEB_PATH_PAT_STR`).
pub(super) fn is_web_path(key: &str) -> bool {
    key == "/"
        || (!key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

/// One component of a loose WAMP URI: `[^\s\.#]+` without the `+` (emptiness is the caller's
/// business).
fn is_loose_component(component: &str) -> bool {
    !component
        .chars()
        .any(|c| c.is_whitespace() || c == '.' || c == '#')
}

/// A loose WAMP URI with non-empty components: `^([^\s\.#]+\.)*([^\s\.#]+)$`.
pub(super) fn is_loose_uri(uri: &str) -> bool {
    uri.split('.')
        .all(|c| !c.is_empty() && is_loose_component(c))
}

/// A loose WAMP URI pattern where any component may be empty:
/// `^(([^\s\.#]+\.)|\.)*([^\s\.#]+)?$` (Autobahn `_URI_PAT_LOOSE_EMPTY`, which Crossbar applies
/// to permission URIs). Matches the empty string.
pub(super) fn is_loose_uri_pattern(uri: &str) -> bool {
    uri.split('.').all(is_loose_component)
}

/// Crossbar's "starred URI" conversion (Autobahn `convert_starred_uri`), applied to a
/// permission whose `match` is absent: no `*` → exact; exactly one `*`, at the very end →
/// prefix on the URI without it (`com.x.*` → `com.x.`); otherwise → wildcard with every `*`
/// removed (`com.*.y` → `com..y`).
pub(super) fn convert_starred_uri(uri: &str) -> (String, super::MatchPolicy) {
    use super::MatchPolicy;
    match uri.matches('*').count() {
        0 => (uri.to_owned(), MatchPolicy::Exact),
        1 if uri.ends_with('*') => (uri[..uri.len() - 1].to_owned(), MatchPolicy::Prefix),
        _ => (uri.replace('*', ""), MatchPolicy::Wildcard),
    }
}

/// The variable name of a Crossbar environment reference `"$NAME"`:
/// `^\$([a-zA-Z_][a-zA-Z0-9_]*)$` (Crossbar `_ENV_VAR_PAT`).
pub(super) fn env_reference(value: &str) -> Option<&str> {
    let name = value.strip_prefix('$')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    ((first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some(name)
}

/// The variable name of a Crossbar secret read from the environment, `"${NAME}"`:
/// `^\$\{(.+)\}$` (Crossbar `_ENVPAT`, applied by `maybe_from_env` to tickets and WAMP-CRA
/// secrets). As in Python's `re`, `.` matches anything but a newline.
pub(super) fn env_secret_reference(value: &str) -> Option<&str> {
    let name = value.strip_prefix("${")?.strip_suffix('}')?;
    (!name.is_empty() && !name.contains('\n')).then_some(name)
}

/// Parses a WebSocket URL the way Autobahn's `parse_url` accepts it (scheme `ws` or `wss`, a
/// host, an optional port, no fragment) and returns its path (`"/"` when the URL has none).
/// The query string is not part of the path.
///
/// # Errors
///
/// A lower-case message saying what is wrong with the URL.
pub(super) fn websocket_url_path(url: &str) -> Result<String, String> {
    if url.chars().any(char::is_whitespace) {
        return Err("must not contain whitespace".into());
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("expected a URL like \"ws://host:port/path\"")?;
    if !scheme.eq_ignore_ascii_case("ws") && !scheme.eq_ignore_ascii_case("wss") {
        return Err(format!("scheme {scheme:?} is not ws or wss"));
    }
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    if !fragment.is_empty() {
        return Err(format!("fragment {fragment:?} is not allowed"));
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err("user information is not allowed".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unterminated IPv6 address")?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("unexpected text after IPv6 address")?,
            ),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("missing host name".into());
    }
    if let Some(port) = port {
        // An empty port (`ws://host:/`) means the scheme's default, as in urllib.
        let valid = port.is_empty()
            || (port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|p| p <= 65535));
        if !valid {
            return Err(format!("invalid port {port:?}"));
        }
    }
    let path = rest.split_once('?').map_or(rest, |(path, _query)| path);
    Ok(if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MatchPolicy;

    #[test]
    fn ids() {
        assert!(is_valid_id("router1"));
        assert!(is_valid_id("ws_8080"));
        assert!(is_valid_id(&format!("a{}", "b".repeat(63))));
        assert!(!is_valid_id(&format!("a{}", "b".repeat(64))));
        assert!(!is_valid_id("ab"));
        assert!(!is_valid_id("1abc"));
        assert!(!is_valid_id("Router"));
        assert!(!is_valid_id("my-router"));
    }

    #[test]
    fn web_paths() {
        for ok in ["/", "ws", "info", "A-b_9", "-"] {
            assert!(is_web_path(ok), "{ok}");
        }
        for bad in ["", "//", "/ws", "ws/", "a.b", "a b", "ü", "ws?x"] {
            assert!(!is_web_path(bad), "{bad}");
        }
    }

    #[test]
    fn uris() {
        assert!(is_loose_uri("realm1"));
        assert!(is_loose_uri("com.Example.Ünïcode"));
        assert!(!is_loose_uri(""));
        assert!(!is_loose_uri("com..x"));
        assert!(!is_loose_uri("com.x."));
        assert!(!is_loose_uri("com x"));
        assert!(!is_loose_uri("com#x"));
        assert!(is_loose_uri_pattern(""));
        assert!(is_loose_uri_pattern("com..x"));
        assert!(is_loose_uri_pattern("com.x."));
        assert!(is_loose_uri_pattern("com.x.*"));
        assert!(!is_loose_uri_pattern("com. x"));
        assert!(!is_loose_uri_pattern("com.#"));
    }

    #[test]
    fn starred_uris() {
        assert_eq!(
            convert_starred_uri("com.x"),
            ("com.x".into(), MatchPolicy::Exact)
        );
        assert_eq!(
            convert_starred_uri("com.x.*"),
            ("com.x.".into(), MatchPolicy::Prefix)
        );
        assert_eq!(
            convert_starred_uri("*"),
            (String::new(), MatchPolicy::Prefix)
        );
        assert_eq!(
            convert_starred_uri("com.*.y.*"),
            ("com..y.".into(), MatchPolicy::Wildcard)
        );
        assert_eq!(
            convert_starred_uri("com.*.y"),
            ("com..y".into(), MatchPolicy::Wildcard)
        );
    }

    #[test]
    fn env_references() {
        assert_eq!(env_reference("$PORT"), Some("PORT"));
        assert_eq!(env_reference("$_p0rt"), Some("_p0rt"));
        assert_eq!(env_reference("$"), None);
        assert_eq!(env_reference("$1PORT"), None);
        assert_eq!(env_reference("${PORT}"), None);
        assert_eq!(env_reference("PORT"), None);
    }

    #[test]
    fn env_secret_references() {
        assert_eq!(env_secret_reference("${JOE_TICKET}"), Some("JOE_TICKET"));
        assert_eq!(env_secret_reference("${a b}"), Some("a b"));
        assert_eq!(env_secret_reference("${A}B}"), Some("A}B"));
        assert_eq!(env_secret_reference("${}"), None);
        assert_eq!(env_secret_reference("$JOE"), None);
        assert_eq!(env_secret_reference("${JOE"), None);
        assert_eq!(env_secret_reference("x${JOE}"), None);
        assert_eq!(env_secret_reference("${A\nB}"), None);
    }

    #[test]
    fn websocket_urls() {
        assert_eq!(
            websocket_url_path("ws://127.0.0.1:8080/ws").as_deref(),
            Ok("/ws")
        );
        assert_eq!(websocket_url_path("wss://example.com").as_deref(), Ok("/"));
        assert_eq!(
            websocket_url_path("ws://[::1]:80/a/b?x=1").as_deref(),
            Ok("/a/b")
        );
        assert_eq!(websocket_url_path("ws://host?x").as_deref(), Ok("/"));
        assert!(websocket_url_path("http://host/ws").is_err());
        assert!(websocket_url_path("ws:///ws").is_err());
        assert!(websocket_url_path("ws://host:99999/").is_err());
        assert!(websocket_url_path("ws://host:x/").is_err());
        assert!(websocket_url_path("ws://host/ws#frag").is_err());
        assert!(websocket_url_path("ws://[::1/").is_err());
        assert!(websocket_url_path("ws://user@host/").is_err());
        assert!(websocket_url_path("host:8080/ws").is_err());
    }
}
