//! The topic index shared by every subscription kind (WAMP exact/prefix/wildcard, later MQTT
//! filters): one pattern maps to one entry (a subscription), and `matches` finds every entry
//! whose pattern matches a concrete topic, each at most once.
//!
//! Topics are keyed by WAMP URI (`a.b.c`). Level patterns live in a trie where `Any` matches one
//! level (WAMP's empty wildcard component, MQTT `+`) and `Rest` matches the level it sits at and
//! everything below, including nothing (MQTT `#`: `a/#` matches `a`). Topics whose first level
//! starts with `$` are not matched by `Any`/`Rest` at the first level (MQTT 4.7.2).

use std::collections::BTreeMap;

use super::StrMap;

/// The most levels a topic or pattern may have. The trie recurses once per level, so peers
/// must not choose the depth: protocol edges refuse deeper topics (WAMP `invalid_uri`, MQTT
/// SUBACK 0x80 / dropped publish) and matching returns nothing for them.
pub const MAX_TOPIC_LEVELS: usize = 64;

/// One level of a level pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Level {
    /// A literal level.
    Lit(String),
    /// Exactly one level of any content.
    Any,
    /// This level and all below, or none (must be last).
    Rest,
}

/// A subscription pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// The whole topic.
    Exact(String),
    /// Any topic whose string starts with this (Crossbar prefix semantics).
    Prefix(String),
    /// Level by level.
    Levels(Vec<Level>),
}

impl Pattern {
    /// A WAMP wildcard URI (`a..c`): empty components match any one level.
    pub fn wamp_wildcard(uri: &str) -> Self {
        Pattern::Levels(
            uri.split('.')
                .map(|c| {
                    if c.is_empty() {
                        Level::Any
                    } else {
                        Level::Lit(c.to_owned())
                    }
                })
                .collect(),
        )
    }
}

#[derive(Debug)]
struct Node<T> {
    lit: StrMap<String, Node<T>>,
    any: Option<Box<Node<T>>>,
    rest: Option<T>,
    here: Option<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            lit: StrMap::default(),
            any: None,
            rest: None,
            here: None,
        }
    }
}

impl<T: Copy> Node<T> {
    fn is_empty(&self) -> bool {
        self.lit.is_empty() && self.any.is_none() && self.rest.is_none() && self.here.is_none()
    }

    fn slot(&mut self, levels: &[Level]) -> &mut Option<T> {
        match levels.split_first() {
            None => &mut self.here,
            Some((Level::Rest, _)) => &mut self.rest,
            Some((Level::Any, tail)) => self.any.get_or_insert_with(Default::default).slot(tail),
            Some((Level::Lit(s), tail)) => self.lit.entry(s.clone()).or_default().slot(tail),
        }
    }

    fn get(&self, levels: &[Level]) -> Option<T> {
        match levels.split_first() {
            None => self.here,
            Some((Level::Rest, _)) => self.rest,
            Some((Level::Any, tail)) => self.any.as_ref()?.get(tail),
            Some((Level::Lit(s), tail)) => self.lit.get(s)?.get(tail),
        }
    }

    /// Removes the entry; returns it. Prunes empty children.
    fn remove(&mut self, levels: &[Level]) -> Option<T> {
        match levels.split_first() {
            None => self.here.take(),
            Some((Level::Rest, _)) => self.rest.take(),
            Some((Level::Any, tail)) => {
                let child = self.any.as_mut()?;
                let r = child.remove(tail);
                if child.is_empty() {
                    self.any = None;
                }
                r
            }
            Some((Level::Lit(s), tail)) => {
                let child = self.lit.get_mut(s)?;
                let r = child.remove(tail);
                if child.is_empty() {
                    self.lit.remove(s);
                }
                r
            }
        }
    }

    fn walk(&self, topic: &[&str], first: bool, out: &mut impl FnMut(T)) {
        let dollar = first && topic.first().is_some_and(|l| l.starts_with('$'));
        if let (Some(t), false) = (self.rest, dollar) {
            out(t);
        }
        let Some((level, tail)) = topic.split_first() else {
            if let Some(t) = self.here {
                out(t);
            }
            return;
        };
        if let Some(child) = self.lit.get(*level) {
            child.walk(tail, false, out);
        }
        if let (Some(child), false) = (&self.any, dollar) {
            child.walk(tail, false, out);
        }
    }
}

/// Pattern → entry index with matching against concrete topics.
#[derive(Debug)]
pub struct TopicIndex<T> {
    exact: StrMap<String, T>,
    prefix: StrMap<String, T>,
    /// Distinct prefix lengths in use (length → number of prefixes of that length), so a
    /// lookup probes only lengths that exist.
    prefix_lens: BTreeMap<usize, usize>,
    tree: Node<T>,
    len: usize,
}

impl<T> Default for TopicIndex<T> {
    fn default() -> Self {
        Self {
            exact: StrMap::default(),
            prefix: StrMap::default(),
            prefix_lens: BTreeMap::new(),
            tree: Node::default(),
            len: 0,
        }
    }
}

impl<T: Copy> TopicIndex<T> {
    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entry of a pattern, if present.
    pub fn get(&self, p: &Pattern) -> Option<T> {
        match p {
            Pattern::Exact(s) => self.exact.get(s).copied(),
            Pattern::Prefix(s) => self.prefix.get(s).copied(),
            Pattern::Levels(l) => self.tree.get(l),
        }
    }

    /// Sets the entry of a pattern; returns the previous one.
    pub fn insert(&mut self, p: &Pattern, t: T) -> Option<T> {
        let old = match p {
            Pattern::Exact(s) => self.exact.insert(s.clone(), t),
            Pattern::Prefix(s) => {
                let old = self.prefix.insert(s.clone(), t);
                if old.is_none() {
                    *self.prefix_lens.entry(s.len()).or_default() += 1;
                }
                old
            }
            Pattern::Levels(l) => self.tree.slot(l).replace(t),
        };
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes a pattern; returns its entry.
    pub fn remove(&mut self, p: &Pattern) -> Option<T> {
        let old = match p {
            Pattern::Exact(s) => self.exact.remove(s),
            Pattern::Prefix(s) => {
                let old = self.prefix.remove(s);
                if old.is_some() {
                    if let Some(n) = self.prefix_lens.get_mut(&s.len()) {
                        *n -= 1;
                        if *n == 0 {
                            self.prefix_lens.remove(&s.len());
                        }
                    }
                }
                old
            }
            Pattern::Levels(l) => self.tree.remove(l),
        };
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Calls `out` once for every level pattern (WAMP wildcard, MQTT filter) matching a topic
    /// given as levels (an MQTT topic split on `/`). Exact and prefix patterns are WAMP URI
    /// strings and are not consulted.
    pub fn matches_levels(&self, levels: &[&str], mut out: impl FnMut(T)) {
        if !self.tree.is_empty() && levels.len() <= MAX_TOPIC_LEVELS {
            self.tree.walk(levels, true, &mut out);
        }
    }

    /// Calls `out` once for every entry whose pattern matches `topic`.
    pub fn matches(&self, topic: &str, mut out: impl FnMut(T)) {
        if let Some(t) = self.exact.get(topic) {
            out(*t);
        }
        for &n in self.prefix_lens.keys() {
            if n > topic.len() {
                break;
            }
            if let Some(t) = topic.get(..n).and_then(|p| self.prefix.get(p)) {
                out(*t);
            }
        }
        if !self.tree.is_empty() {
            let mut levels: [&str; 16] = [""; 16];
            let n = topic.split('.').count();
            if n <= levels.len() {
                for (slot, l) in levels.iter_mut().zip(topic.split('.')) {
                    *slot = l;
                }
                self.tree.walk(&levels[..n], true, &mut out);
            } else if n <= MAX_TOPIC_LEVELS {
                let v: Vec<&str> = topic.split('.').collect();
                self.tree.walk(&v, true, &mut out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obviously correct matcher the index is checked against.
    fn naive(p: &Pattern, topic: &str) -> bool {
        match p {
            Pattern::Exact(s) => s == topic,
            Pattern::Prefix(s) => topic.starts_with(s.as_str()),
            Pattern::Levels(levels) => {
                let t: Vec<&str> = topic.split('.').collect();
                let dollar = t[0].starts_with('$');
                let mut i = 0;
                for (k, l) in levels.iter().enumerate() {
                    match l {
                        Level::Rest => return !(dollar && k == 0),
                        Level::Any => {
                            if i >= t.len() || (dollar && k == 0) {
                                return false;
                            }
                        }
                        Level::Lit(s) => {
                            if i >= t.len() || t[i] != s {
                                return false;
                            }
                        }
                    }
                    i += 1;
                }
                i == t.len()
            }
        }
    }

    fn collect(ix: &TopicIndex<usize>, topic: &str) -> Vec<usize> {
        let mut v = Vec::new();
        ix.matches(topic, |t| v.push(t));
        v.sort_unstable();
        v
    }

    #[test]
    fn basic_kinds() {
        let mut ix = TopicIndex::default();
        ix.insert(&Pattern::Exact("a.b".into()), 1);
        ix.insert(&Pattern::Prefix("a".into()), 2);
        ix.insert(&Pattern::wamp_wildcard("a..c"), 3);
        ix.insert(
            &Pattern::Levels(vec![Level::Lit("a".into()), Level::Rest]),
            4,
        );
        ix.insert(
            &Pattern::Levels(vec![Level::Any, Level::Lit("x".into()), Level::Rest]),
            5,
        );
        assert_eq!(collect(&ix, "a.b"), vec![1, 2, 4]);
        assert_eq!(collect(&ix, "a"), vec![2, 4]);
        assert_eq!(collect(&ix, "a.q.c"), vec![2, 3, 4]);
        assert_eq!(collect(&ix, "z.x"), vec![5]);
        assert_eq!(collect(&ix, "z.x.y.w"), vec![5]);
        assert_eq!(collect(&ix, "abc"), vec![2]);
        assert_eq!(collect(&ix, "$SYS.x"), Vec::<usize>::new());
        assert_eq!(ix.len(), 5);
        assert_eq!(ix.remove(&Pattern::wamp_wildcard("a..c")), Some(3));
        assert_eq!(ix.remove(&Pattern::wamp_wildcard("a..c")), None);
        assert_eq!(collect(&ix, "a.q.c"), vec![2, 4]);
        assert_eq!(ix.len(), 4);
    }

    fn arb_level() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("$s".to_owned()),
            Just("ab".to_owned())
        ]
    }

    fn arb_topic() -> impl Strategy<Value = String> {
        proptest::collection::vec(arb_level(), 1..5).prop_map(|v| v.join("."))
    }

    fn arb_pattern() -> impl Strategy<Value = Pattern> {
        let lvl = prop_oneof![arb_level().prop_map(Level::Lit), Just(Level::Any),];
        prop_oneof![
            arb_topic().prop_map(Pattern::Exact),
            "[ab.]{0,4}".prop_map(Pattern::Prefix),
            (proptest::collection::vec(lvl, 0..4), any::<bool>()).prop_map(|(mut v, rest)| {
                if rest || v.is_empty() {
                    v.push(Level::Rest);
                }
                Pattern::Levels(v)
            }),
        ]
    }

    proptest! {
        #[test]
        fn agrees_with_naive(pats in proptest::collection::vec(arb_pattern(), 0..12),
                             removals in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
                             topics in proptest::collection::vec(arb_topic(), 1..8)) {
            let mut ix = TopicIndex::default();
            let mut live: Vec<(Pattern, usize)> = Vec::new();
            for (i, p) in pats.into_iter().enumerate() {
                if ix.get(&p).is_none() {
                    ix.insert(&p, i);
                    live.push((p, i));
                }
            }
            for r in removals {
                if live.is_empty() { break; }
                let (p, id) = live.remove(r.index(live.len()));
                prop_assert_eq!(ix.remove(&p), Some(id));
            }
            prop_assert_eq!(ix.len(), live.len());
            for t in topics {
                let mut want: Vec<usize> = live.iter().filter(|(p, _)| naive(p, &t)).map(|(_, i)| *i).collect();
                want.sort_unstable();
                prop_assert_eq!(collect(&ix, &t), want, "topic {}", t);
            }
        }
    }
}
