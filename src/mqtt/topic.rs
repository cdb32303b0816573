//! MQTT topic names and topic filters (MQTT 3.1.1 section 4.7).
//!
//! A topic name is what a PUBLISH carries: at least one character, no wildcard, no U+0000. A
//! topic filter is what a SUBSCRIBE carries: levels separated by `/`, where `+` stands alone in
//! its level and matches exactly one level, and `#` stands alone in the last level and matches
//! its parent level and everything below. Empty levels are ordinary levels (`a//b`, `/a`).
//!
//! [`filter_matches`] is the plain level-by-level reference matcher; the routing core's topic
//! index is checked against it. Topics whose first level starts with `$` (`$SYS/...`) are not
//! matched by a wildcard in the filter's first level (MQTT-4.7.2-1).

use super::codec::MAX_STRING_LEN;

/// Whether `topic` is a valid topic name for PUBLISH (and for a will): non-empty, at most
/// 65535 bytes, no `+`, `#` or U+0000 (MQTT-3.3.2-2, MQTT-4.7.3-1, MQTT-1.5.3-2).
pub fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= MAX_STRING_LEN
        && !topic.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
}

/// Whether `filter` is a valid topic filter for SUBSCRIBE and UNSUBSCRIBE: non-empty, at most
/// 65535 bytes, no U+0000, `+` only as a whole level, `#` only as the whole last level
/// (MQTT-4.7.1-2, MQTT-4.7.1-3, MQTT-4.7.3-1).
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > MAX_STRING_LEN || filter.contains('\0') {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        if level.contains('#') && !(level == "#" && last) {
            return false;
        }
        if level.contains('+') && level != "+" {
            return false;
        }
    }
    true
}

/// Whether the topic filter `filter` matches the topic name `topic`.
///
/// `+` matches exactly one level (which may be empty), `#` matches its parent level and any
/// number of levels below (`a/#` matches `a`, `a/` and `a/b/c`). A topic starting with `$` is
/// not matched by `+` or `#` as the filter's first level (MQTT-4.7.2-1). Both arguments are
/// expected to be valid ([`valid_filter`], [`valid_topic_name`]); for other input the answer is
/// unspecified but the function does not panic.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut topic_levels = topic.split('/');
    for (i, f) in filter.split('/').enumerate() {
        if i == 0 && topic.starts_with('$') && (f == "+" || f == "#") {
            return false;
        }
        if f == "#" {
            return true;
        }
        match topic_levels.next() {
            Some(t) if f == "+" || f == t => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in [
            "a",
            "/",
            "a/b",
            "//",
            "$SYS/x",
            "a b/ü",
            "sport/tennis/player1",
        ] {
            assert!(valid_topic_name(ok), "{ok:?}");
        }
        for bad in ["", "+", "#", "a/+", "a/#", "a+", "a\0b"] {
            assert!(!valid_topic_name(bad), "{bad:?}");
        }
        assert!(valid_topic_name(&"a".repeat(MAX_STRING_LEN)));
        assert!(!valid_topic_name(&"a".repeat(MAX_STRING_LEN + 1)));
    }

    #[test]
    fn filters() {
        for ok in [
            "a", "#", "+", "+/+", "/", "/#", "a/#", "+/x/#", "a/+/c", "$SYS/#", "//", "a//#", "+/",
        ] {
            assert!(valid_filter(ok), "{ok:?}");
        }
        for bad in [
            "", "a#", "#/a", "a/#/b", "a/b#", "##", "a+", "+a/b", "a/++", "#+", "+#", "a\0",
        ] {
            assert!(!valid_filter(bad), "{bad:?}");
        }
        assert!(valid_filter(&"a".repeat(MAX_STRING_LEN)));
        assert!(!valid_filter(&"a".repeat(MAX_STRING_LEN + 1)));
    }

    #[test]
    fn matching_table() {
        let table: &[(&str, &str, bool)] = &[
            ("a", "a", true),
            ("a", "b", false),
            ("a", "a/b", false),
            ("a/b", "a", false),
            ("#", "a", true),
            ("#", "a/b/c", true),
            ("#", "/", true),
            ("#", "$SYS/x", false),
            ("#", "$SYS", false),
            ("+", "a", true),
            ("+", "a/b", false),
            ("+", "/", false),
            ("+/+", "/", true),
            ("/+", "/", true),
            ("/+", "/a", true),
            ("+", "$SYS", false),
            ("+/x", "$SYS/x", false),
            ("+/x", "a/x", true),
            ("$SYS/#", "$SYS/x", true),
            ("$SYS/#", "$SYS", true),
            ("$SYS/+", "$SYS/x", true),
            ("$SYS/x", "$SYS/x", true),
            ("a/#", "a", true),
            ("a/#", "a/", true),
            ("a/#", "a/b", true),
            ("a/#", "a/b/c", true),
            ("a/#", "ab", false),
            ("a/#", "b/a", false),
            ("a/+", "a", false),
            ("a/+", "a/", true),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/+/c", "a/b/c", true),
            ("a/+/c", "a//c", true),
            ("a/+/c", "a/b/d", false),
            ("+/x/#", "a/x", true),
            ("+/x/#", "a/x/y/z", true),
            ("+/x/#", "/x", true),
            ("+/x/#", "a/y/x", false),
            ("+/x/#", "x", false),
            ("+/x/#", "$SYS/x/y", false),
            ("+/+/#", "a/b", true),
            ("+/+/#", "a", false),
            ("/#", "/a", true),
            ("/#", "a", false),
            ("a//b", "a//b", true),
            ("a//b", "a/b", false),
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/ranking",
                true,
            ),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("$foo/bar", "$foo/bar", true),
            ("a/$b", "a/$b", true),
            ("a/+", "a/$b", true),
            ("a/#", "a/$b", true),
        ];
        for &(f, t, want) in table {
            assert!(valid_filter(f), "{f:?}");
            assert!(valid_topic_name(t), "{t:?}");
            assert_eq!(filter_matches(f, t), want, "filter {f:?} topic {t:?}");
        }
    }
}
