//! mosquitto's `password_file` and `acl_file`, read (and the password file written) the way
//! mosquitto 2.0 does.
//!
//! # Password file
//!
//! One user a line, as `mosquitto_passwd` writes it (checked against mosquitto 2.0.11's
//! `mosquitto_passwd` and broker, see `tests/mosquitto_auth.rs`):
//!
//! ```text
//! user:$7$<iterations>$<base64 salt>$<base64 hash>   PBKDF2-HMAC-SHA512 (the 2.0 default, 101 iterations)
//! user:$6$<base64 salt>$<base64 hash>                SHA-512(password ‖ salt) (mosquitto ≤ 1.6)
//! ```
//!
//! The salt is 12 bytes, the hash 64 bytes, both in standard base64 with padding (16 and
//! 88 characters). `mosquitto_passwd -I N` writes other iteration counts; any count ≥ 1 is
//! read. Blank lines and lines starting with `#` are skipped. Unlike mosquitto, which logs
//! and drops a bad entry but starts anyway, [`PasswordFile::parse`] refuses the whole file
//! and names the line: an entry that silently stops working is worse than a refused start.
//!
//! # ACL file
//!
//! ```text
//! topic [read|write|readwrite|deny] <topic>     # before any `user` line: anonymous clients
//! user <name>
//! topic [read|write|readwrite|deny] <topic>     # for <name>
//! pattern [read|write|readwrite|deny] <pattern> # every client; %c = client id, %u = username
//! ```
//!
//! The access word is optional (default `readwrite`); the topic is the rest of the line, so it
//! may contain spaces. As in mosquitto, `topic read` (one word) is a `readwrite` entry for the
//! topic `read`. See [`AclFile::check`] for the decision procedure.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

/// PBKDF2 iterations `mosquitto_passwd` 2.0 uses (and [`hash_password_pbkdf2`] writes).
pub const PBKDF2_ITERATIONS: u32 = 101;
/// Salt length in bytes; mosquitto's broker drops entries with any other length.
pub const SALT_LEN: usize = 12;
/// Hash length in bytes (SHA-512 output; also the PBKDF2 output length).
pub const HASH_LEN: usize = 64;
/// Longest user name or password mosquitto accepts.
pub const MAX_FIELD_LEN: usize = 65535;

/// Decoding like OpenSSL's base64 BIO that mosquitto uses: padding optional.
const B64_DECODE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn at(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!("{}: ", p.display()),
        None => String::new(),
    }
}

/// A password file that cannot be read, parsed or changed.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line is malformed (`line` counts from 1).
    #[error("{}line {line}: {message}", at(.path))]
    Syntax {
        path: Option<PathBuf>,
        line: usize,
        message: String,
    },
    /// A request that cannot be carried out (bad user name or password, unknown user, ...).
    #[error("{0}")]
    Invalid(String),
}

impl PasswdError {
    fn with_path(self, path: &Path) -> Self {
        match self {
            PasswdError::Syntax { line, message, .. } => PasswdError::Syntax {
                path: Some(path.to_owned()),
                line,
                message,
            },
            other => other,
        }
    }
}

/// A stored password hash.
#[derive(Clone, PartialEq, Eq)]
enum Hash {
    /// `$6$`: SHA-512 over the password bytes followed by the salt bytes.
    Sha512 { salt: Vec<u8>, hash: Vec<u8> },
    /// `$7$`: PBKDF2-HMAC-SHA512 with the salt, 64 bytes of output.
    Pbkdf2 {
        iterations: NonZeroU32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print hashes or salts.
        match self {
            Hash::Sha512 { .. } => f.write_str("$6$…"),
            Hash::Pbkdf2 { iterations, .. } => write!(f, "$7${iterations}$…"),
        }
    }
}

impl Hash {
    fn parse(s: &str) -> Result<Self, String> {
        let Some(rest) = s.strip_prefix('$') else {
            return Err(
                "not a mosquitto password hash (expected $7$… or $6$…; a plain-text password \
                 file must be hashed first, e.g. with `mosquitto_passwd -U`)"
                    .into(),
            );
        };
        let fields: Vec<&str> = rest.split('$').collect();
        let decode = |what: &str, b64: &str, len: usize| -> Result<Vec<u8>, String> {
            let bytes = B64_DECODE
                .decode(b64)
                .map_err(|e| format!("{what} is not valid base64: {e}"))?;
            if bytes.len() != len {
                return Err(format!("{what} is {} bytes, expected {len}", bytes.len()));
            }
            Ok(bytes)
        };
        match fields.as_slice() {
            ["7", iterations, salt, hash] => {
                let iterations = iterations
                    .parse::<u32>()
                    .ok()
                    .and_then(NonZeroU32::new)
                    .ok_or_else(|| format!("bad iteration count {iterations:?}"))?;
                Ok(Hash::Pbkdf2 {
                    iterations,
                    salt: decode("salt", salt, SALT_LEN)?,
                    hash: decode("hash", hash, HASH_LEN)?,
                })
            }
            ["6", salt, hash] => Ok(Hash::Sha512 {
                salt: decode("salt", salt, SALT_LEN)?,
                hash: decode("hash", hash, HASH_LEN)?,
            }),
            ["7", ..] => Err("expected $7$<iterations>$<salt>$<hash>".into()),
            ["6", ..] => Err("expected $6$<salt>$<hash>".into()),
            [kind, ..] => Err(format!(
                "unsupported hash type ${kind}$ (mosquitto writes $7$ and $6$)"
            )),
            [] => unreachable!("split yields at least one field"),
        }
    }

    /// The hash of `password` under this entry's scheme, salt and iteration count.
    fn compute(&self, password: &[u8]) -> [u8; HASH_LEN] {
        let mut out = [0u8; HASH_LEN];
        match self {
            Hash::Sha512 { salt, .. } => {
                let mut ctx = ring::digest::Context::new(&ring::digest::SHA512);
                ctx.update(password);
                ctx.update(salt);
                out.copy_from_slice(ctx.finish().as_ref());
            }
            Hash::Pbkdf2 {
                iterations, salt, ..
            } => ring::pbkdf2::derive(
                ring::pbkdf2::PBKDF2_HMAC_SHA512,
                *iterations,
                salt,
                password,
                &mut out,
            ),
        }
        out
    }

    fn stored(&self) -> &[u8] {
        match self {
            Hash::Sha512 { hash, .. } | Hash::Pbkdf2 { hash, .. } => hash,
        }
    }

    /// Constant-time comparison of `password`'s hash with the stored one.
    fn matches(&self, password: &[u8]) -> bool {
        bool::from(self.compute(password).as_slice().ct_eq(self.stored()))
    }
}

/// A mosquitto `password_file`.
#[derive(Debug, Clone)]
pub struct PasswordFile {
    /// Users in file order.
    entries: Vec<(String, Hash)>,
    index: HashMap<String, usize>,
    /// Stands in for unknown users so that they cost as much as known ones.
    decoy: Hash,
}

impl PasswordFile {
    /// Parses the text of a password file. Blank lines and lines whose first non-blank
    /// character is `#` are skipped; every other line must be `user:hash` with a `$7$` or
    /// `$6$` hash (blanks around both are trimmed, as mosquitto does). Errors name the line.
    pub fn parse(text: &str) -> Result<Self, PasswdError> {
        let mut entries = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let syntax = |message: String| PasswdError::Syntax {
                path: None,
                line,
                message,
            };
            let Some((user, hash)) = split_user_line(raw) else {
                continue;
            };
            let Some(hash) = hash else {
                return Err(syntax("expected `user:hash`".into()));
            };
            if user.is_empty() {
                return Err(syntax("empty user name".into()));
            }
            if user.len() > MAX_FIELD_LEN {
                return Err(syntax("user name longer than 65535 bytes".into()));
            }
            if hash.contains(':') {
                return Err(syntax(format!(
                    "user {user:?}: more than one ':' (expected `user:hash`)"
                )));
            }
            let hash = Hash::parse(hash).map_err(|m| syntax(format!("user {user:?}: {m}")))?;
            if let Some(first) = first_line.get(user) {
                return Err(syntax(format!(
                    "user {user:?} already defined on line {first}"
                )));
            }
            first_line.insert(user.to_owned(), line);
            index.insert(user.to_owned(), entries.len());
            entries.push((user.to_owned(), hash));
        }
        let decoy = decoy_for(entries.first().map(|(_, h)| h));
        Ok(Self {
            entries,
            index,
            decoy,
        })
    }

    /// Reads and parses a password file; errors name the file.
    pub fn load(path: &Path) -> Result<Self, PasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| PasswdError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| e.with_path(path))
    }

    /// Whether `password` is `user`'s password. The hash comparison is constant-time
    /// (`subtle`); an unknown user costs one hash computation like a known one (with the
    /// scheme and iteration count of the file's first entry) and then yields `false`, so
    /// response times do not tell which users exist.
    ///
    /// The password is hashed byte for byte. (mosquitto hashes a C string, so it would
    /// accept `"abc\0xyz"` for `"abc"`; here that is a wrong password.)
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.index.get(user) {
            Some(&i) => self.entries[i].1.matches(password),
            None => {
                let _ = std::hint::black_box(self.decoy.matches(password));
                false
            }
        }
    }

    /// The user names, in file order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(u, _)| u.as_str())
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file has no users.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Default for PasswordFile {
    /// A file without users: every check fails (after the same work as a real one).
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            index: HashMap::new(),
            decoy: decoy_for(None),
        }
    }
}

/// A hash of the same scheme (and iteration count) as `like`, matching no password in
/// practice (random salt, all-zero hash).
fn decoy_for(like: Option<&Hash>) -> Hash {
    let salt = random_salt().to_vec();
    let hash = vec![0u8; HASH_LEN];
    match like {
        Some(Hash::Sha512 { .. }) => Hash::Sha512 { salt, hash },
        Some(Hash::Pbkdf2 { iterations, .. }) => Hash::Pbkdf2 {
            iterations: *iterations,
            salt,
            hash,
        },
        None => Hash::Pbkdf2 {
            iterations: NonZeroU32::new(PBKDF2_ITERATIONS).expect("non-zero"),
            salt,
            hash,
        },
    }
}

fn random_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    salt
}

/// Splits a password file line: `None` for a blank or comment line, else the trimmed user
/// and (after the first `:`) the trimmed rest, `None` when there is no `:`.
fn split_user_line(raw: &str) -> Option<(&str, Option<&str>)> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(match line.split_once(':') {
        Some((user, rest)) => (user.trim(), Some(rest.trim())),
        None => (line, None),
    })
}

/// Hashes `password` as `mosquitto_passwd` 2.0 does by default: PBKDF2-HMAC-SHA512, 101
/// iterations, a random 12-byte salt. Returns `$7$101$<base64 salt>$<base64 hash>`.
pub fn hash_password_pbkdf2(password: &[u8]) -> String {
    let iterations = NonZeroU32::new(PBKDF2_ITERATIONS).expect("non-zero");
    let salt = random_salt();
    let mut hash = [0u8; HASH_LEN];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA512,
        iterations,
        &salt,
        password,
        &mut hash,
    );
    format!(
        "$7${iterations}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    )
}

/// Checks a user name for a password file line: non-empty, at most 65535 bytes, no `:` and
/// no control characters (as `mosquitto_passwd` requires), and, since mosquitto would read
/// such a line differently, no leading `#` and no leading or trailing blanks.
pub fn validate_username(user: &str) -> Result<(), PasswdError> {
    let bad = |why: &str| Err(PasswdError::Invalid(format!("invalid user name: {why}")));
    if user.is_empty() {
        return bad("empty");
    }
    if user.len() > MAX_FIELD_LEN {
        return bad("longer than 65535 bytes");
    }
    if user.contains(':') {
        return bad("must not contain ':'");
    }
    if user.chars().any(char::is_control) {
        return bad("must not contain control characters");
    }
    if user.starts_with('#') {
        return bad("must not start with '#' (the line would be a comment)");
    }
    if user.trim() != user {
        return bad("must not start or end with blanks");
    }
    Ok(())
}

fn validate_password(password: &[u8]) -> Result<(), PasswdError> {
    let bad = |why: &str| Err(PasswdError::Invalid(format!("invalid password: {why}")));
    if password.is_empty() {
        return bad("empty");
    }
    if password.len() > MAX_FIELD_LEN {
        return bad("longer than 65535 bytes");
    }
    if password.contains(&0) {
        return bad("must not contain NUL bytes (mosquitto would cut it there)");
    }
    Ok(())
}

/// A change to a password file, as `junction passwd` makes it.
#[derive(Debug, Clone, Copy)]
pub enum PasswdChange<'a> {
    /// Create (or overwrite) the file with this single user (`-c`).
    Create { password: &'a [u8] },
    /// Add the user, or replace its password, in an existing file.
    Set { password: &'a [u8] },
    /// Remove the user from an existing file (`-D`).
    Delete,
}

/// What [`update_password_file`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswdOutcome {
    Created,
    Added,
    Updated,
    Deleted,
}

/// Applies `change` for `user` to the password file at `path`, like `mosquitto_passwd`:
/// other lines (comments included) are kept as they are; a new user is appended; the new
/// entry is a `$7$` PBKDF2 hash. An existing file must parse (else nothing is written).
/// The file is replaced atomically (a temporary file in the same directory, then rename)
/// and has mode 0600.
pub fn update_password_file(
    path: &Path,
    user: &str,
    change: PasswdChange<'_>,
) -> Result<PasswdOutcome, PasswdError> {
    validate_username(user)?;
    let entry = |password: &[u8]| -> Result<String, PasswdError> {
        validate_password(password)?;
        Ok(format!("{user}:{}\n", hash_password_pbkdf2(password)))
    };
    let (text, outcome) = match change {
        PasswdChange::Create { password } => (entry(password)?, PasswdOutcome::Created),
        PasswdChange::Set { .. } | PasswdChange::Delete => {
            let old = std::fs::read_to_string(path).map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    PasswdError::Invalid(format!(
                        "{}: no such file (use -c to create it)",
                        path.display()
                    ))
                } else {
                    PasswdError::Io {
                        path: path.to_owned(),
                        source,
                    }
                }
            })?;
            PasswordFile::parse(&old).map_err(|e| e.with_path(path))?;
            let new_entry = match change {
                PasswdChange::Set { password } => Some(entry(password)?),
                _ => None,
            };
            let mut out = String::with_capacity(old.len() + 128);
            let mut found = false;
            for raw in old.split_inclusive('\n') {
                let content = raw.strip_suffix('\n').unwrap_or(raw);
                let is_user = matches!(split_user_line(content), Some((u, Some(_))) if u == user);
                if !is_user {
                    out.push_str(raw);
                    if !raw.ends_with('\n') {
                        out.push('\n');
                    }
                } else if let Some(e) = &new_entry {
                    found = true;
                    out.push_str(e);
                } else {
                    found = true;
                }
            }
            let outcome = match (new_entry, found) {
                (Some(_), true) => PasswdOutcome::Updated,
                (Some(e), false) => {
                    out.push_str(&e);
                    PasswdOutcome::Added
                }
                (None, true) => PasswdOutcome::Deleted,
                (None, false) => {
                    return Err(PasswdError::Invalid(format!(
                        "user {user:?} not found in {}",
                        path.display()
                    )))
                }
            };
            (out, outcome)
        }
    };
    write_atomic(path, text.as_bytes()).map_err(|source| PasswdError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(outcome)
}

/// Writes `bytes` to a new mode-0600 file next to `path`, syncs it and renames it over
/// `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".{}.{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Make the rename durable; not every file system lets a directory be synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ACL file

/// An ACL file that cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// Reading the file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line is malformed (`line` counts from 1).
    #[error("{}line {line}: {message}", at(.path))]
    Syntax {
        path: Option<PathBuf>,
        line: usize,
        message: String,
    },
}

/// What a client wants to do with a topic or filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Receive a message published on a topic (checked per message at delivery).
    Read,
    /// Publish on a topic.
    Write,
    /// Subscribe with a topic filter.
    Subscribe,
}

/// The access word of an ACL line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Perm {
    Deny,
    Read,
    Write,
    ReadWrite,
}

impl Perm {
    fn grants(self, access: Access) -> bool {
        matches!(
            (self, access),
            (
                Perm::Read | Perm::ReadWrite,
                Access::Read | Access::Subscribe
            ) | (Perm::Write | Perm::ReadWrite, Access::Write)
        )
    }
}

#[derive(Clone, Debug)]
struct AclEntry {
    perm: Perm,
    /// The topic filter (for a pattern: before `%c`/`%u` substitution).
    topic: String,
}

/// A mosquitto `acl_file`.
#[derive(Clone, Debug, Default)]
pub struct AclFile {
    /// `topic` lines before the first `user` line.
    anonymous: Vec<AclEntry>,
    /// `topic` lines per user (sections of the same user are merged, as mosquitto does).
    users: HashMap<String, Vec<AclEntry>>,
    /// `pattern` lines, wherever they are.
    patterns: Vec<AclEntry>,
}

impl AclFile {
    /// Parses the text of an ACL file. Blank lines and lines whose first non-blank character
    /// is `#` are skipped. Errors name the line.
    pub fn parse(text: &str) -> Result<Self, AclError> {
        let mut acl = AclFile::default();
        let mut user: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let syntax = |message: String| AclError::Syntax {
                path: None,
                line,
                message,
            };
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let (keyword, rest) = split_word(content);
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(syntax("missing user name after `user`".into()));
                    }
                    user = Some(rest.to_owned());
                }
                "topic" | "pattern" => {
                    if rest.is_empty() {
                        return Err(syntax(format!("missing topic after `{keyword}`")));
                    }
                    let (word, topic) = split_word(rest);
                    // One word: it is the topic (mosquitto reads `topic read` that way too).
                    let (perm, topic) = if topic.is_empty() {
                        (Perm::ReadWrite, word)
                    } else {
                        let perm = match word {
                            "read" => Perm::Read,
                            "write" => Perm::Write,
                            "readwrite" => Perm::ReadWrite,
                            "deny" => Perm::Deny,
                            other => {
                                return Err(syntax(format!(
                                    "unknown access {other:?} (expected read, write, \
                                     readwrite or deny)"
                                )))
                            }
                        };
                        (perm, topic)
                    };
                    check_filter(topic)
                        .map_err(|m| syntax(format!("invalid topic filter {topic:?}: {m}")))?;
                    let entry = AclEntry {
                        perm,
                        topic: topic.to_owned(),
                    };
                    if keyword == "pattern" {
                        acl.patterns.push(entry);
                    } else {
                        match &user {
                            Some(u) => acl.users.entry(u.clone()).or_default().push(entry),
                            None => acl.anonymous.push(entry),
                        }
                    }
                }
                other => {
                    return Err(syntax(format!(
                        "unknown keyword {other:?} (expected user, topic or pattern)"
                    )))
                }
            }
        }
        Ok(acl)
    }

    /// Reads and parses an ACL file; errors name the file.
    pub fn load(path: &Path) -> Result<Self, AclError> {
        let text = std::fs::read_to_string(path).map_err(|source| AclError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            AclError::Syntax { line, message, .. } => AclError::Syntax {
                path: Some(path.to_owned()),
                line,
                message,
            },
            other => other,
        })
    }

    /// Whether the client (`username`, `None` for anonymous; `client_id`) may have `access`
    /// to `topic_or_filter`. The decision follows mosquitto 2.0's `acl_file` check
    /// (`mosquitto_acl_check_default` in `security_default.c`):
    ///
    /// 1. The client's `topic` entries: those of its `user` section, or for an anonymous
    ///    client those before the first `user` line (a user without a section has none).
    ///    If a matching entry is `deny`, the answer is no. Else if a matching entry grants
    ///    the access (`read`/`readwrite` for Read and Subscribe, `write`/`readwrite` for
    ///    Write), the answer is yes. Else go on.
    /// 2. If there are `pattern` lines: a username or client id containing `+` or `#` is
    ///    refused outright. Each pattern has every `%c` replaced by the client id and every
    ///    `%u` by the username (textually, anywhere in the pattern; a pattern with `%u` is
    ///    skipped for an anonymous client). Then as in step 1: a matching `deny` refuses,
    ///    else a matching granting pattern allows.
    /// 3. Otherwise no.
    ///
    /// So `deny` wins within the topic entries and within the patterns, but a user's
    /// granting `topic` entry is decided before any pattern is looked at: a `pattern deny`
    /// does not take away what a `topic` line of the user's section grants (mosquitto
    /// behaves the same; see `tests/mosquitto_auth.rs`).
    ///
    /// Matching is MQTT's, as `mosquitto_topic_matches_sub`: `+` is one level (possibly
    /// empty), `#` the rest including the parent (`a/#` matches `a`), and a topic starting
    /// with `$` only matches entries starting with `$`. Read and Write take a topic name;
    /// one that is empty or contains `+` or `#` is refused.
    ///
    /// **Subscribe** (an extension: mosquitto's `acl_file` never refuses a SUBSCRIBE, it
    /// only filters at delivery with the Read check): the filter is checked the same way,
    /// where an entry "matches" when it covers the whole filter, i.e. every topic the filter
    /// can match is matched by the entry, as mosquitto 2.1's `mosquitto_sub_matches_acl`
    /// (used by its dynamic-security plugin for subscriptions) decides: entry `a/#` covers
    /// `a/#`, `a/b/+` and `a`; entry `a/+` covers `a/b` and `a/+` but not `a/#`; entry
    /// `a/b` covers only `a/b`. A `deny` entry therefore refuses a subscription only when it
    /// covers the whole filter (`deny a/secret` does not refuse `a/#`; the Read check at
    /// delivery drops `a/secret` messages). For a filter without wildcards Subscribe gives
    /// the same answer as Read. A `$share/<group>/` prefix is removed first; an invalid
    /// filter is refused. A broker that wants mosquitto's exact behaviour grants every
    /// SUBSCRIBE and relies on Read.
    pub fn check(
        &self,
        username: Option<&str>,
        client_id: &str,
        topic_or_filter: &str,
        access: Access,
    ) -> bool {
        let target = match access {
            Access::Read | Access::Write => {
                if topic_or_filter.is_empty() || topic_or_filter.contains(['+', '#']) {
                    return false;
                }
                topic_or_filter
            }
            Access::Subscribe => {
                let filter = match topic_or_filter.strip_prefix("$share/") {
                    Some(rest) => match rest.split_once('/') {
                        Some((group, f)) if !group.is_empty() => f,
                        _ => return false,
                    },
                    None => topic_or_filter,
                };
                if filter.is_empty() || check_filter(filter).is_err() {
                    return false;
                }
                filter
            }
        };
        let matches = |entry: &str| match access {
            Access::Read | Access::Write => topic_matches(entry, target),
            Access::Subscribe => filter_covers(entry, target),
        };

        let own = match username {
            Some(u) => self.users.get(u).map(Vec::as_slice).unwrap_or(&[]),
            None => &self.anonymous,
        };
        if let Some(answer) = decide(
            own.iter().map(|e| (e.perm, e.topic.as_str())),
            access,
            &matches,
        ) {
            return answer;
        }

        if self.patterns.is_empty() {
            return false;
        }
        if username.is_some_and(|u| u.contains(['+', '#'])) || client_id.contains(['+', '#']) {
            return false;
        }
        let substituted: Vec<(Perm, String)> = self
            .patterns
            .iter()
            .filter(|p| username.is_some() || !p.topic.contains("%u"))
            .map(|p| (p.perm, substitute(&p.topic, client_id, username)))
            .collect();
        decide(
            substituted.iter().map(|(perm, t)| (*perm, t.as_str())),
            access,
            &matches,
        )
        .unwrap_or(false)
    }
}

/// One list's verdict: `Some(false)` if a matching entry denies, else `Some(true)` if a
/// matching entry grants `access`, else `None` (mosquitto puts deny entries first).
fn decide<'a>(
    entries: impl Iterator<Item = (Perm, &'a str)> + Clone,
    access: Access,
    matches: &dyn Fn(&str) -> bool,
) -> Option<bool> {
    if entries
        .clone()
        .any(|(perm, topic)| perm == Perm::Deny && matches(topic))
    {
        return Some(false);
    }
    if entries
        .into_iter()
        .any(|(perm, topic)| perm.grants(access) && matches(topic))
    {
        return Some(true);
    }
    None
}

/// mosquitto's pattern substitution: scanning left to right, `%c` becomes the client id
/// and (when there is a username) `%u` the username; everything else is copied.
fn substitute(pattern: &str, client_id: &str, username: Option<&str>) -> String {
    let mut out = String::with_capacity(pattern.len() + client_id.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match (chars.peek(), username) {
                (Some('c'), _) => {
                    chars.next();
                    out.push_str(client_id);
                    continue;
                }
                (Some('u'), Some(u)) => {
                    chars.next();
                    out.push_str(u);
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// Split off the first blank-separated word; the rest is trimmed.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

/// A valid MQTT topic filter (as `mosquitto_sub_topic_check`): `+` and `#` only as whole
/// levels, `#` only last, at most 65535 bytes.
fn check_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("empty");
    }
    if filter.len() > MAX_FIELD_LEN {
        return Err("longer than 65535 bytes");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('+') && *level != "+" {
            return Err("'+' must be a whole level");
        }
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("'#' must be the whole last level");
        }
    }
    Ok(())
}

/// Whether `filter` (an ACL entry) matches the topic name `topic` (no wildcards).
fn topic_matches(filter: &str, topic: &str) -> bool {
    if filter.is_empty() || topic.is_empty() || filter.starts_with('$') != topic.starts_with('$') {
        return false;
    }
    let mut t = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return true;
        }
        match t.next() {
            Some(level) if f == "+" || f == level => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

/// Whether the ACL entry `acl` matches every topic that the subscription `filter` matches.
fn filter_covers(acl: &str, filter: &str) -> bool {
    if acl.is_empty() || filter.is_empty() || acl.starts_with('$') != filter.starts_with('$') {
        return false;
    }
    let mut s = filter.split('/');
    for a in acl.split('/') {
        if a == "#" {
            return true;
        }
        match s.next() {
            None | Some("#") => return false,
            Some("+") if a != "+" => return false,
            Some(level) if a == "+" || a == level => {}
            Some(_) => return false,
        }
    }
    s.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with mosquitto 2.0.11: `mosquitto_passwd -c -b f alice secret`.
    const ALICE_PBKDF2: &str = "alice:$7$101$BqXwFqYF7QpfosVA$pBVt6kgO0U0rXnncUmHvtzJokeW/zLBjTijvFJZK3TIXC9EmmFzc4KDuHE3IU0nRj8NlN1RQ65M98mYb2/6GTQ==";
    /// `mosquitto_passwd -H sha512 -b f old oldpass`.
    const OLD_SHA512: &str = "old:$6$9Y0kBu5ANyex9f8W$UnDLfiVEp2mbhqC0uLvZaE8LDjpzCMqJd+gKmRURmpVA1jljILB1B8KhwBRW8d/rGYDcMXCEGGUpyF3lO9W3+w==";
    /// `mosquitto_passwd -I 1000 -b f iter iterpass`.
    const ITER_1000: &str = "iter:$7$1000$OA6iFyZLEZm4uYka$ICIJVzij3LTC0ckTts669/LpO2RlaVtgbUjdwcqGTvICOeP13flgNUvknL34hZK55rzxxFHP/LJ4vsWS3l3egw==";

    #[test]
    fn verifies_mosquitto_hashes() {
        let text = format!("# users\n\n{ALICE_PBKDF2}\n{OLD_SHA512}\r\n  {ITER_1000}  \n");
        let f = PasswordFile::parse(&text).unwrap();
        assert_eq!(f.users().collect::<Vec<_>>(), ["alice", "old", "iter"]);
        assert!(f.verify("alice", b"secret"));
        assert!(!f.verify("alice", b"secret "));
        assert!(!f.verify("alice", b"Secret"));
        assert!(!f.verify("alice", b""));
        assert!(f.verify("old", b"oldpass"));
        assert!(!f.verify("old", b"oldpas"));
        assert!(f.verify("iter", b"iterpass"));
        assert!(!f.verify("iter", b"secret"));
        assert!(!f.verify("nobody", b"secret"));
        assert!(!f.verify("Alice", b"secret"));
    }

    #[test]
    fn hash_roundtrip_and_format() {
        let h = hash_password_pbkdf2(b"p\xffw");
        let parts: Vec<&str> = h.split('$').collect();
        assert_eq!(parts[..3], ["", "7", "101"]);
        assert_eq!(parts[3].len(), 16);
        assert_eq!(parts[4].len(), 88);
        assert!(parts[4].ends_with("=="));
        let f = PasswordFile::parse(&format!("u:{h}")).unwrap();
        assert!(f.verify("u", b"p\xffw"));
        assert!(!f.verify("u", b"p\xff"));
        assert_ne!(h, hash_password_pbkdf2(b"p\xffw"), "salt is random");
    }

    #[test]
    fn nul_in_password_is_not_truncated() {
        let f = PasswordFile::parse(ALICE_PBKDF2).unwrap();
        assert!(!f.verify("alice", b"secret\0junk"));
    }

    fn syntax_line(text: &str) -> (usize, String) {
        match PasswordFile::parse(text) {
            Err(PasswdError::Syntax { line, message, .. }) => (line, message),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_password_lines() {
        let ok = ALICE_PBKDF2;
        let cases = [
            (format!("{ok}\nbob\n"), 2, "user:hash"),
            (format!("{ok}\n:$6$x$y\n"), 2, "empty user"),
            (format!("#c\n{ok}\nbob:plain\n"), 3, "plain-text"),
            (
                format!("bob:$5$abc$def\n{ok}"),
                1,
                "unsupported hash type $5$",
            ),
            (
                "\n\nbob:$7$0$AAAAAAAAAAAAAAAA$x\n".to_string(),
                3,
                "iteration",
            ),
            ("bob:$7$x$AAAAAAAAAAAAAAAA$x\n".to_string(), 1, "iteration"),
            ("bob:$7$101$AAAA$x\n".to_string(), 1, "salt is 3 bytes"),
            (
                "bob:$7$101$!!!!$x\n".to_string(),
                1,
                "salt is not valid base64",
            ),
            (
                "bob:$7$101$AAAAAAAAAAAAAAAA$AAAA\n".to_string(),
                1,
                "hash is 3 bytes",
            ),
            (
                "bob:$7$101$AAAAAAAAAAAAAAAA\n".to_string(),
                1,
                "expected $7$",
            ),
            ("bob:$6$AAAAAAAAAAAAAAAA\n".to_string(), 1, "expected $6$"),
            (format!("{ok}\n{ok}\n"), 2, "already defined on line 1"),
            (format!("{ok}:extra\n"), 1, "more than one ':'"),
        ];
        for (text, line, needle) in cases {
            let (l, m) = syntax_line(&text);
            assert_eq!(l, line, "{text:?}: {m}");
            assert!(m.contains(needle), "{text:?}: {m:?} lacks {needle:?}");
        }
        let e = PasswordFile::parse("x\n").unwrap_err().to_string();
        assert_eq!(e, "line 1: expected `user:hash`");
    }

    #[test]
    fn usernames() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("a b").is_ok());
        for bad in ["", "a:b", "a\tb", "#a", " a", "a "] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn update_file_keeps_other_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, format!("# head\n{OLD_SHA512}\n\n{ALICE_PBKDF2}")).unwrap();
        let r = update_password_file(&p, "alice", PasswdChange::Set { password: b"new" });
        assert_eq!(r.unwrap(), PasswdOutcome::Updated);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(&format!("# head\n{OLD_SHA512}\n\nalice:$7$101$")));
        let f = PasswordFile::parse(&text).unwrap();
        assert!(f.verify("alice", b"new") && f.verify("old", b"oldpass"));
        let r = update_password_file(&p, "carol", PasswdChange::Set { password: b"c" });
        assert_eq!(r.unwrap(), PasswdOutcome::Added);
        let r = update_password_file(&p, "old", PasswdChange::Delete);
        assert_eq!(r.unwrap(), PasswdOutcome::Deleted);
        let f = PasswordFile::load(&p).unwrap();
        assert_eq!(f.users().collect::<Vec<_>>(), ["alice", "carol"]);
        assert!(update_password_file(&p, "old", PasswdChange::Delete).is_err());
        assert!(update_password_file(&p, "x", PasswdChange::Set { password: b"" }).is_err());
        let none = dir.path().join("none");
        assert!(update_password_file(&none, "x", PasswdChange::Set { password: b"x" }).is_err());
        assert!(!none.exists());
        // A broken file is not rewritten.
        std::fs::write(&p, "junk\n").unwrap();
        let e = update_password_file(&p, "x", PasswdChange::Set { password: b"x" })
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("pw: line 1: expected `user:hash`"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "junk\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp files left"
        );
    }

    #[test]
    fn topic_matching() {
        let yes = [
            ("a/b", "a/b"),
            ("a/+", "a/b"),
            ("a/+", "a/"),
            ("+/+", "/b"),
            ("a/#", "a"),
            ("a/#", "a/b/c"),
            ("#", "a/b"),
            ("+/#", "a"),
            ("$SYS/#", "$SYS/x"),
            ("$SYS/+", "$SYS/x"),
        ];
        let no = [
            ("a/b", "a"),
            ("a", "a/b"),
            ("a/+", "a/b/c"),
            ("a/+", "a"),
            ("#", "$SYS/x"),
            ("+/x", "$SYS/x"),
            ("a/b", "A/b"),
        ];
        for (f, t) in yes {
            assert!(topic_matches(f, t), "{f} should match {t}");
        }
        for (f, t) in no {
            assert!(!topic_matches(f, t), "{f} should not match {t}");
        }
    }

    #[test]
    fn filter_coverage() {
        let yes = [
            ("a/#", "a/#"),
            ("a/#", "a/b/+"),
            ("a/#", "a"),
            ("a/+", "a/b"),
            ("a/+", "a/+"),
            ("#", "#"),
            ("#", "+/x/#"),
            ("+/+", "a/+"),
            ("a/+/#", "a/b"),
            ("a/b", "a/b"),
            ("$SYS/#", "$SYS/broker/#"),
        ];
        let no = [
            ("a/+", "a/#"),
            ("a/b", "a/+"),
            ("a/b", "a/#"),
            ("a/b", "a/b/#"),
            ("a/+", "a"),
            ("#", "$SYS/#"),
            ("$SYS/broker/uptime", "$SYS/broker/#"),
            ("a/#", "#"),
            ("+", "#"),
        ];
        for (a, s) in yes {
            assert!(filter_covers(a, s), "{a} should cover {s}");
        }
        for (a, s) in no {
            assert!(!filter_covers(a, s), "{a} should not cover {s}");
        }
    }

    #[test]
    fn substitution_like_mosquitto() {
        assert_eq!(substitute("c/%c/u/%u", "cid", Some("bob")), "c/cid/u/bob");
        assert_eq!(substitute("x%cy", "1", None), "x1y");
        assert_eq!(substitute("%u/%c", "1", None), "%u/1");
        assert_eq!(substitute("%%c%", "1", None), "%1%");
    }

    #[test]
    fn acl_syntax() {
        let err = |text: &str| match AclFile::parse(text) {
            Err(AclError::Syntax { line, message, .. }) => (line, message),
            other => panic!("expected an error for {text:?}, got {other:?}"),
        };
        assert_eq!(err("topic a\nuser\n").0, 2);
        assert!(err("topic a\n\nuser   \n").1.contains("missing user name"));
        assert!(err("topic\n").1.contains("missing topic"));
        assert!(err("topic rw a/b\n").1.contains("unknown access \"rw\""));
        let (line, m) = err("# c\ntopic read a/#/b\n");
        assert_eq!(line, 2);
        assert!(m.contains("invalid topic filter \"a/#/b\""), "{m}");
        assert!(err("pattern read a/b+\n").1.contains("'+'"));
        assert!(err("users bob\n").1.contains("unknown keyword \"users\""));
        assert_eq!(
            AclFile::parse("\n\nfoo\n").unwrap_err().to_string(),
            "line 3: unknown keyword \"foo\" (expected user, topic or pattern)"
        );
        // One word after `topic` is the topic, with readwrite access.
        let acl = AclFile::parse("topic read\n").unwrap();
        assert!(acl.check(None, "c", "read", Access::Write));
        // Topics may contain blanks; tabs separate words.
        let acl = AclFile::parse("user a b\ntopic\twrite  x y/z \n").unwrap();
        assert!(acl.check(Some("a b"), "c", "x y/z", Access::Write));
        assert!(!acl.check(Some("a b"), "c", "x y/z", Access::Read));
    }

    #[test]
    fn read_write_rules() {
        let acl = AclFile::parse(
            "topic read pub/#\n\
             user alice\n\
             topic write in/+\n\
             topic readwrite a/#\n\
             topic deny a/secret\n\
             user bob\n\
             topic read b/#\n\
             user alice\n\
             topic read more\n\
             pattern readwrite c/%c/#\n\
             pattern deny a/blocked\n\
             pattern deny c/%c/no\n\
             pattern read u/%u\n",
        )
        .unwrap();
        let alice = |t: &str, a: Access| acl.check(Some("alice"), "ca", t, a);
        assert!(alice("in/x", Access::Write) && !alice("in/x", Access::Read));
        assert!(alice("a/x", Access::Read) && alice("a/x", Access::Write));
        assert!(!alice("a/secret", Access::Read) && !alice("a/secret", Access::Write));
        assert!(alice("more", Access::Read), "sections of one user merge");
        // A user's topic grant is decided before pattern denies (as mosquitto).
        assert!(alice("a/blocked", Access::Write));
        assert!(!acl.check(Some("bob"), "cb", "a/blocked", Access::Read));
        // Anonymous entries are not for users, and user entries not for anonymous.
        assert!(!alice("pub/x", Access::Read));
        assert!(acl.check(None, "c0", "pub/x", Access::Read));
        assert!(!acl.check(None, "c0", "pub/x", Access::Write));
        assert!(!acl.check(None, "c0", "a/x", Access::Read));
        // Patterns: %c, %u, deny first, %u skipped for anonymous.
        assert!(alice("c/ca/x", Access::Write) && !alice("c/cb/x", Access::Write));
        assert!(!alice("c/ca/no", Access::Read));
        assert!(alice("u/alice", Access::Read) && !alice("u/alice", Access::Write));
        assert!(!alice("u/bob", Access::Read));
        assert!(acl.check(None, "c0", "c/c0/x", Access::Read));
        assert!(!acl.check(None, "c0", "u/%u", Access::Read));
        // Users without a section only get patterns.
        assert!(acl.check(Some("carol"), "cc", "c/cc/1", Access::Write));
        assert!(!acl.check(Some("carol"), "cc", "pub/x", Access::Read));
        // Dangerous ids lose the patterns but keep their topic entries.
        assert!(!acl.check(Some("alice"), "c+", "c/c+/x", Access::Read));
        assert!(!acl.check(Some("al#"), "ok", "c/ok/x", Access::Read));
        assert!(acl.check(Some("alice"), "c#", "a/x", Access::Read));
        // Topic names with wildcards are not topics.
        assert!(!alice("a/+", Access::Write) && !alice("a/#", Access::Read));
        assert!(!alice("", Access::Read));
    }

    #[test]
    fn no_patterns_no_access() {
        let acl = AclFile::parse("user alice\ntopic a\n").unwrap();
        assert!(!acl.check(Some("bob"), "c", "a", Access::Read));
        assert!(!acl.check(None, "c", "a", Access::Read));
        assert!(AclFile::parse("")
            .map(|a| !a.check(None, "c", "a", Access::Read))
            .unwrap());
    }

    #[test]
    fn subscribe_rules() {
        let acl = AclFile::parse(
            "user alice\n\
             topic read a/#\n\
             topic deny a/secret\n\
             topic deny a/hidden/#\n\
             topic write w/#\n\
             topic read s/+\n\
             topic read $SYS/broker/#\n\
             pattern read c/%c/#\n",
        )
        .unwrap();
        let sub = |f: &str| acl.check(Some("alice"), "ca", f, Access::Subscribe);
        assert!(sub("a/#") && sub("a/b/+") && sub("a") && sub("a/x"));
        assert!(
            sub("a/+"),
            "partly denied filters are allowed; delivery filters"
        );
        assert!(!sub("a/secret") && !sub("a/hidden/#") && !sub("a/hidden/x/+"));
        assert!(!sub("w/#"), "write-only does not allow subscribing");
        assert!(sub("s/x") && sub("s/+") && !sub("s/#") && !sub("s"));
        assert!(!sub("#") && !sub("+/x"));
        assert!(sub("$SYS/broker/load/#") && !sub("$SYS/#"));
        assert!(sub("c/ca/#") && !sub("c/+/#"));
        assert!(sub("$share/g/a/#") && !sub("$share/g/w/x") && !sub("$share//a/b"));
        assert!(!sub("a/#/x") && !sub(""));
    }
}
