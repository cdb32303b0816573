//! WAMP URI validation (spec "URIs": strict and loose rules, with pattern variants).
//!
//! Strict components match `[0-9a-z_]+`, loose components `[^\s.#]+`. Exact URIs have no empty
//! component; wildcard patterns may have empty components anywhere; prefix patterns may be empty
//! or end with an empty component (a trailing dot).

use crate::config::{MatchPolicy, UriCheck};

fn component_ok(c: &str, check: UriCheck) -> bool {
    match check {
        UriCheck::Strict => c
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        UriCheck::Loose => !c.chars().any(|ch| ch.is_whitespace() || ch == '#'),
    }
}

/// Checks a URI used with the given match policy.
pub fn is_valid(uri: &str, policy: MatchPolicy, check: UriCheck) -> bool {
    if uri.is_empty() {
        return policy == MatchPolicy::Prefix;
    }
    let n = uri.split('.').count();
    if n > crate::router::index::MAX_TOPIC_LEVELS {
        return false;
    }
    uri.split('.').enumerate().all(|(i, c)| {
        if c.is_empty() {
            match policy {
                MatchPolicy::Exact => false,
                MatchPolicy::Wildcard => true,
                MatchPolicy::Prefix => i == n - 1,
            }
        } else {
            component_ok(c, check)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use MatchPolicy::*;
    use UriCheck::*;

    #[test]
    fn strict_and_loose() {
        assert!(is_valid("com.example.add2", Exact, Strict));
        assert!(!is_valid("com.Example.add2", Exact, Strict));
        assert!(is_valid("com.Example.add-2", Exact, Loose));
        assert!(!is_valid("com..bad", Exact, Loose));
        assert!(!is_valid("bad uri", Exact, Loose));
        assert!(!is_valid("com.#x", Exact, Loose));
        assert!(!is_valid("", Exact, Loose));
        assert!(!is_valid("a.", Exact, Loose));
    }

    #[test]
    fn patterns() {
        assert!(is_valid("com..temp", Wildcard, Strict));
        assert!(is_valid("..", Wildcard, Strict));
        assert!(is_valid("", Prefix, Strict));
        assert!(is_valid("com.example.", Prefix, Strict));
        assert!(!is_valid("com..x", Prefix, Strict));
        assert!(!is_valid("A..b", Wildcard, Strict));
    }
}
