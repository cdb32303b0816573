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
    if uri.is_ascii() {
        // One pass over the bytes: this runs for every PUBLISH and CALL.
        is_valid_ascii(uri.as_bytes(), b'.', policy, check)
    } else {
        is_valid_chars(uri, policy, check)
    }
}

/// The WAMP URI of an MQTT topic (`a/b` → `a.b`), when it has one: no `$` topic, no empty
/// level, no `.` in a level, and valid under `check` as an exact URI.
pub fn from_mqtt_topic(topic: &str, check: UriCheck) -> Option<String> {
    if topic.is_empty() || topic.starts_with('$') {
        return None;
    }
    let ok = if topic.is_ascii() {
        !topic.contains('.') && is_valid_ascii(topic.as_bytes(), b'/', MatchPolicy::Exact, check)
    } else {
        !topic.split('/').any(|l| l.is_empty() || l.contains('.'))
            && is_valid_chars(&topic.replace('/', "."), MatchPolicy::Exact, check)
    };
    ok.then(|| topic.replace('/', "."))
}

/// Whether component `i` of `n` may be empty under `policy`.
fn empty_ok(policy: MatchPolicy, i: usize, n: usize) -> bool {
    match policy {
        MatchPolicy::Exact => false,
        MatchPolicy::Wildcard => true,
        MatchPolicy::Prefix => i == n - 1,
    }
}

/// `is_valid` for ASCII text whose components are separated by `sep`.
fn is_valid_ascii(s: &[u8], sep: u8, policy: MatchPolicy, check: UriCheck) -> bool {
    let n = s.iter().filter(|&&b| b == sep).count() + 1;
    if n > crate::router::index::MAX_TOPIC_LEVELS {
        return false;
    }
    let byte_ok = |b: u8| match check {
        UriCheck::Strict => b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_',
        // char::is_whitespace for ASCII: the ASCII whitespace set plus vertical tab (0x0B).
        UriCheck::Loose => !(b.is_ascii_whitespace() || b == 0x0B || b == b'#'),
    };
    s.split(|&b| b == sep).enumerate().all(|(i, c)| {
        if c.is_empty() {
            empty_ok(policy, i, n)
        } else {
            c.iter().all(|&b| byte_ok(b))
        }
    })
}

/// `is_valid` for any UTF-8 text (Unicode whitespace counts for loose URIs).
fn is_valid_chars(uri: &str, policy: MatchPolicy, check: UriCheck) -> bool {
    let n = uri.split('.').count();
    if n > crate::router::index::MAX_TOPIC_LEVELS {
        return false;
    }
    uri.split('.').enumerate().all(|(i, c)| {
        if c.is_empty() {
            empty_ok(policy, i, n)
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
    fn ascii_fast_path_agrees_with_the_char_rules() {
        let samples = [
            "a",
            "a.b",
            "a..b",
            ".a",
            "a.",
            "..",
            ".",
            "A.b",
            "a b.c",
            "a\u{b}b",
            "a\tb",
            "a#b",
            "com.x-y",
            "x_1.y_2",
            "a.\u{a0}",
            "é.b",
            "a.b\u{2003}",
            "a\u{85}",
        ];
        for s in samples {
            for policy in [Exact, Prefix, Wildcard] {
                for check in [Strict, Loose] {
                    let slow = is_valid_chars(s, policy, check) && !s.is_empty();
                    assert_eq!(
                        is_valid(s, policy, check),
                        slow || (s.is_empty() && policy == Prefix),
                        "{s:?} {policy:?} {check:?}"
                    );
                }
            }
        }
        let deep = vec!["a"; crate::router::index::MAX_TOPIC_LEVELS + 1].join(".");
        assert!(!is_valid(&deep, Exact, Loose));
    }

    #[test]
    fn mqtt_topics() {
        assert_eq!(from_mqtt_topic("a/b", Strict).as_deref(), Some("a.b"));
        assert_eq!(from_mqtt_topic("a/B c", Loose), None);
        assert_eq!(from_mqtt_topic("a/B-c", Loose).as_deref(), Some("a.B-c"));
        for bad in ["", "$SYS/x", "a//b", "/a", "a/", "a.b/c", "a/#", "é./x"] {
            assert_eq!(from_mqtt_topic(bad, Loose), None, "{bad:?}");
        }
        assert_eq!(from_mqtt_topic("é/x", Loose).as_deref(), Some("é.x"));
        assert_eq!(from_mqtt_topic("a/\u{a0}", Loose), None);
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
