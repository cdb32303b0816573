//! Authorization: a realm's roles compiled for lookup by URI, and the dynamic authorizer call.
//!
//! Static roles follow Crossbar's precedence: an exact permission wins, then the longest
//! matching prefix, then wildcard permissions (the most specific one: fewest empty components,
//! then config order). No matching permission means deny.
//!
//! A role with an `authorizer` is dynamic: the procedure (registered by some session of the
//! same realm) is called as `authorizer(session_details, uri, action, options)` and answers a
//! bool or `{"allow": bool, "disclose"?: bool, "cache"?: bool}`, as in Crossbar. A session keeps
//! the answers marked `cache` for its lifetime ([`DynamicCache`], bounded).

use std::collections::HashMap;
use std::time::Duration;

use super::realm::RealmHandle;
use crate::config::{Allow, Disclose, MatchPolicy, Permission, RoleConfig};
use crate::wire::{Dict, Value};

/// What a session may do and disclose on one URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grant {
    /// Allowed actions.
    pub allow: Allow,
    /// Disclosure settings.
    pub disclose: Disclose,
}

/// An action checked against permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// CALL.
    Call,
    /// REGISTER.
    Register,
    /// PUBLISH.
    Publish,
    /// SUBSCRIBE.
    Subscribe,
}

impl Action {
    /// 0..4, for tables per action.
    fn index(self) -> usize {
        self as usize
    }

    /// The action as Crossbar names it to an authorizer.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Call => "call",
            Action::Register => "register",
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
        }
    }
}

impl Grant {
    /// Whether the action is allowed.
    pub fn allows(&self, a: Action) -> bool {
        match a {
            Action::Call => self.allow.call,
            Action::Register => self.allow.register,
            Action::Publish => self.allow.publish,
            Action::Subscribe => self.allow.subscribe,
        }
    }
}

/// One role's permissions, compiled.
#[derive(Debug, Default)]
pub struct RolePermissions {
    exact: HashMap<String, Grant>,
    /// Sorted by prefix length, longest first.
    prefix: Vec<(String, Grant)>,
    /// (components, number of empty components, grant), sorted by specificity.
    wildcard: Vec<(Vec<String>, usize, Grant)>,
}

impl RolePermissions {
    /// Compiles a role's permission list.
    pub fn compile(perms: &[Permission]) -> Self {
        let mut r = RolePermissions::default();
        for p in perms {
            let g = Grant {
                allow: p.allow,
                disclose: p.disclose,
            };
            match p.match_policy {
                MatchPolicy::Exact => {
                    r.exact.entry(p.uri.clone()).or_insert(g);
                }
                MatchPolicy::Prefix => r.prefix.push((p.uri.clone(), g)),
                MatchPolicy::Wildcard => {
                    let comps: Vec<String> = p.uri.split('.').map(str::to_owned).collect();
                    let empties = comps.iter().filter(|c| c.is_empty()).count();
                    r.wildcard.push((comps, empties, g));
                }
            }
        }
        // Stable sorts keep config order among equals.
        r.prefix.sort_by_key(|(u, _)| std::cmp::Reverse(u.len()));
        r.wildcard.sort_by_key(|(_, e, _)| *e);
        r
    }

    /// The grant that applies to `uri`, if any permission matches.
    pub fn lookup(&self, uri: &str) -> Option<Grant> {
        if let Some(g) = self.exact.get(uri) {
            return Some(*g);
        }
        if let Some((_, g)) = self
            .prefix
            .iter()
            .find(|(p, _)| uri.starts_with(p.as_str()))
        {
            return Some(*g);
        }
        let n = uri.split('.').count();
        self.wildcard
            .iter()
            .find(|(comps, _, _)| {
                comps.len() == n
                    && comps
                        .iter()
                        .zip(uri.split('.'))
                        .all(|(c, u)| c.is_empty() || c == u)
            })
            .map(|(_, _, g)| *g)
    }
}

/// One role, compiled.
#[derive(Debug)]
enum Role {
    Static(RolePermissions),
    /// Asks this procedure.
    Dynamic(String),
}

/// How a role decides on one URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// The static answer (deny-all when nothing matches or the role is unknown).
    Static(Grant),
    /// Ask this dynamic authorizer procedure.
    Ask(&'a str),
}

/// All roles of a realm.
#[derive(Debug, Default)]
pub struct Authorizer {
    roles: HashMap<String, Role>,
}

impl Authorizer {
    /// Compiles a realm's roles.
    pub fn new(roles: &[RoleConfig]) -> Self {
        Self {
            roles: roles
                .iter()
                .map(|r| {
                    let role = match &r.authorizer {
                        Some(procedure) => Role::Dynamic(procedure.clone()),
                        None => Role::Static(RolePermissions::compile(&r.permissions)),
                    };
                    (r.name.clone(), role)
                })
                .collect(),
        }
    }

    /// Whether the realm has this role.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    /// Whether `role` asks a dynamic authorizer.
    pub fn is_dynamic(&self, role: &str) -> bool {
        matches!(self.roles.get(role), Some(Role::Dynamic(_)))
    }

    /// How `role` decides on `uri`.
    pub fn decide(&self, role: &str, uri: &str) -> Decision<'_> {
        match self.roles.get(role) {
            Some(Role::Static(r)) => Decision::Static(r.lookup(uri).unwrap_or_default()),
            Some(Role::Dynamic(procedure)) => Decision::Ask(procedure),
            None => Decision::Static(Grant::default()),
        }
    }
}

/// How long a dynamic authorizer may take before the action fails.
pub const AUTHORIZER_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers a session keeps per (action, URI), at most this many (then it starts over).
const CACHE_ENTRIES: usize = 1024;

/// Why a dynamic authorizer gave no answer (the action then fails with
/// `wamp.error.authorization_failed`; MQTT treats it as a denial).
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    /// The call failed: no such procedure, an error from it, a timeout, the realm stopping.
    #[error("the authorizer call failed: {0}")]
    Call(String),
    /// The answer is neither a bool nor a dict of bools with `allow`.
    #[error("the authorizer answered {0}")]
    Answer(String),
}

/// A session's view of a dynamic authorizer: who it is (the details the authorizer gets) and
/// the answers it may keep.
#[derive(Debug)]
pub struct DynamicCache {
    details: Value,
    /// Kept answers by URI, one map per action (`Action::index`), so a lookup borrows the URI.
    answers: [HashMap<String, Grant>; 4],
}

impl DynamicCache {
    /// For a session with these details (`session`, `authid`, `authrole`, `authmethod`,
    /// `authprovider`, `authextra`, `transport`).
    pub fn new(details: Dict) -> Self {
        Self {
            details: Value::Dict(details),
            answers: Default::default(),
        }
    }

    /// A kept answer.
    fn cached(&self, action: Action, uri: &str) -> Option<Grant> {
        self.answers[action.index()].get(uri).copied()
    }

    /// Asks `procedure` (unless a kept answer exists) whether this session may do `action` on
    /// `uri`; `options` are the request's options, passed to the authorizer.
    pub async fn authorize(
        &mut self,
        realm: &RealmHandle,
        procedure: &str,
        uri: &str,
        action: Action,
        options: &Dict,
    ) -> Result<Grant, AuthorizerError> {
        if let Some(g) = self.cached(action, uri) {
            return Ok(g);
        }
        let args = self.args(uri, action, options.clone());
        // Boxed: the call is rare next to the messages a session handles, so it must not grow
        // every session's future.
        let result = Box::pin(realm.internal_call(procedure, args, AUTHORIZER_TIMEOUT)).await;
        self.answer(action, uri, result)
    }

    /// Answers kept, all actions.
    fn len(&self) -> usize {
        self.answers.iter().map(HashMap::len).sum()
    }

    /// The arguments of the authorizer call for `action` on `uri`.
    fn args(&self, uri: &str, action: Action, options: Dict) -> Vec<Value> {
        vec![
            self.details.clone(),
            Value::from(uri),
            Value::from(action.as_str()),
            Value::Dict(options),
        ]
    }

    /// Interprets the authorizer's answer, keeping it when it says `cache`.
    pub fn answer(
        &mut self,
        action: Action,
        uri: &str,
        result: Result<Value, String>,
    ) -> Result<Grant, AuthorizerError> {
        let value = result.map_err(AuthorizerError::Call)?;
        let (allowed, disclose, cache) =
            parse_answer(&value).ok_or_else(|| AuthorizerError::Answer(describe(&value)))?;
        let mut grant = Grant::default();
        match action {
            Action::Call => {
                grant.allow.call = allowed;
                grant.disclose.caller = disclose;
            }
            Action::Register => grant.allow.register = allowed,
            Action::Publish => {
                grant.allow.publish = allowed;
                grant.disclose.publisher = disclose;
            }
            Action::Subscribe => grant.allow.subscribe = allowed,
        }
        if cache {
            if self.len() >= CACHE_ENTRIES {
                self.answers.iter_mut().for_each(HashMap::clear);
            }
            self.answers[action.index()].insert(uri.to_owned(), grant);
        }
        Ok(grant)
    }
}

/// (allow, disclose, cache) from a bool or a dict with only `allow`, `disclose`, `cache` (bools,
/// `allow` required), as Crossbar accepts.
fn parse_answer(v: &Value) -> Option<(bool, bool, bool)> {
    match v {
        Value::Bool(b) => Some((*b, false, false)),
        Value::Dict(d) => {
            let mut out = (None, false, false);
            for (k, v) in d {
                let b = v.as_bool()?;
                match k.as_str() {
                    "allow" => out.0 = Some(b),
                    "disclose" => out.1 = b,
                    "cache" => out.2 = b,
                    _ => return None,
                }
            }
            Some((out.0?, out.1, out.2))
        }
        _ => None,
    }
}

/// A short description of a bad answer (its JSON, cut), for the error message.
fn describe(v: &Value) -> String {
    let json = crate::wire::Serializer::Json.encode_to_bytes(v);
    let text = String::from_utf8_lossy(&json);
    let mut s: String = text.chars().take(120).collect();
    if text.chars().count() > 120 {
        s.push('…');
    }
    format!("{s}; expected a bool or {{\"allow\": bool, \"disclose\"?: bool, \"cache\"?: bool}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(uri: &str, m: MatchPolicy, publish: bool) -> Permission {
        Permission {
            uri: uri.into(),
            match_policy: m,
            allow: Allow {
                publish,
                ..Allow::default()
            },
            disclose: Disclose::default(),
            cache: true,
        }
    }

    #[test]
    fn precedence() {
        let r = RolePermissions::compile(&[
            perm("", MatchPolicy::Prefix, true),
            perm("com.secret", MatchPolicy::Prefix, false),
            perm("com.secret.open", MatchPolicy::Exact, true),
            perm("sensors..temp", MatchPolicy::Wildcard, true),
        ]);
        let p = |u: &str| r.lookup(u).is_some_and(|g| g.allows(Action::Publish));
        assert!(p("com.x"));
        assert!(!p("com.secret.x"));
        assert!(p("com.secret.open"));
        assert!(!p("com.secret.open.x"));
        let w = RolePermissions::compile(&[perm("sensors..temp", MatchPolicy::Wildcard, true)]);
        assert!(w.lookup("sensors.a.temp").is_some());
        assert!(w.lookup("sensors.a.b.temp").is_none());
        assert!(w.lookup("other").is_none());
    }

    #[test]
    fn dynamic_answers() {
        let mut c = DynamicCache::new(Dict::new());
        let allow = |d: Vec<(&str, Value)>| {
            Value::Dict(d.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        };
        // a bool
        let g = c
            .answer(Action::Publish, "a", Ok(Value::Bool(true)))
            .unwrap();
        assert!(g.allows(Action::Publish) && !g.allows(Action::Subscribe));
        assert!(!g.disclose.publisher);
        assert!(
            c.cached(Action::Publish, "a").is_none(),
            "a bool is not kept"
        );
        // a dict with disclose and cache
        let d = allow(vec![
            ("allow", Value::Bool(true)),
            ("disclose", Value::Bool(true)),
            ("cache", Value::Bool(true)),
        ]);
        let g = c.answer(Action::Call, "p", Ok(d)).unwrap();
        assert!(g.allows(Action::Call) && g.disclose.caller);
        assert_eq!(c.cached(Action::Call, "p"), Some(g));
        assert!(c.cached(Action::Register, "p").is_none());
        // a denial
        let g = c
            .answer(Action::Subscribe, "t", Ok(Value::Bool(false)))
            .unwrap();
        assert!(!g.allows(Action::Subscribe));
        // bad answers: no allow, unknown key, non-bool, wrong type, a call error
        for bad in [
            allow(vec![("cache", Value::Bool(true))]),
            allow(vec![("allow", Value::Bool(true)), ("x", Value::Bool(true))]),
            allow(vec![("allow", Value::from("yes"))]),
            Value::from("yes"),
            Value::Null,
        ] {
            let e = c.answer(Action::Publish, "b", Ok(bad)).unwrap_err();
            assert!(matches!(e, AuthorizerError::Answer(_)), "{e}");
        }
        let e = c
            .answer(Action::Publish, "b", Err("timeout".into()))
            .unwrap_err();
        assert!(matches!(e, AuthorizerError::Call(_)));
        // bounded
        for i in 0..CACHE_ENTRIES + 10 {
            let d = allow(vec![
                ("allow", Value::Bool(true)),
                ("cache", Value::Bool(true)),
            ]);
            c.answer(Action::Publish, &format!("u{i}"), Ok(d)).unwrap();
        }
        assert!(c.len() <= CACHE_ENTRIES);
    }

    #[test]
    fn dynamic_roles_decide_by_asking() {
        let roles = [
            RoleConfig {
                name: "s".into(),
                permissions: vec![perm("", MatchPolicy::Prefix, true)],
                authorizer: None,
            },
            RoleConfig {
                name: "d".into(),
                permissions: vec![],
                authorizer: Some("com.example.authorize".into()),
            },
        ];
        let a = Authorizer::new(&roles);
        assert!(a.has_role("d") && a.is_dynamic("d") && !a.is_dynamic("s"));
        assert_eq!(a.decide("d", "x"), Decision::Ask("com.example.authorize"));
        assert!(matches!(a.decide("s", "x"), Decision::Static(g) if g.allows(Action::Publish)));
        assert_eq!(a.decide("nobody", "x"), Decision::Static(Grant::default()));
    }
}
