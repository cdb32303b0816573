//! Static authorization: a realm's roles compiled for lookup by URI.
//!
//! Precedence follows Crossbar: an exact permission wins, then the longest matching prefix,
//! then wildcard permissions (the most specific one: fewest empty components, then config
//! order). No matching permission means deny.

use std::collections::HashMap;

use crate::config::{Allow, Disclose, MatchPolicy, Permission, RoleConfig};

/// What a session may do and disclose on one URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grant {
    /// Allowed actions.
    pub allow: Allow,
    /// Disclosure settings.
    pub disclose: Disclose,
}

/// An action checked against permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// All roles of a realm.
#[derive(Debug, Default)]
pub struct Authorizer {
    roles: HashMap<String, RolePermissions>,
}

impl Authorizer {
    /// Compiles a realm's roles.
    pub fn new(roles: &[RoleConfig]) -> Self {
        Self {
            roles: roles
                .iter()
                .map(|r| (r.name.clone(), RolePermissions::compile(&r.permissions)))
                .collect(),
        }
    }

    /// Whether the realm has this role.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    /// The grant for `role` on `uri` (deny-all when nothing matches).
    pub fn grant(&self, role: &str, uri: &str) -> Grant {
        self.roles
            .get(role)
            .and_then(|r| r.lookup(uri))
            .unwrap_or_default()
    }
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
}
